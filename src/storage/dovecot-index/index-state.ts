/**
 * The in-memory state of a Dovecot index while `dovecot.index` is loaded and the transaction log is
 * replayed over it: base header bytes, the ordered extension list (its position is the ext_id the log
 * uses), the keyword names, and the messages in UID order. Records are kept per extension *name*, not in
 * Dovecot's byte layout (reference section 4.4 step 4).
 */

/** Base header offsets (reference 4.2). */
export const HDR_UID_VALIDITY = 24;
export const HDR_NEXT_UID = 28;
export const BASE_HEADER_SIZE_2_3 = 120;

export interface IndexExtension {
  readonly name: string;
  resetId: number;
  recordSize: number;
  recordAlign: number;
  header: Buffer;
}

export interface IndexMessage {
  readonly uid: number;
  /** The flags byte (mask 0x1f for IMAP flags). */
  flags: number;
  /** Keyword numbers (positions in IndexState.keywords); null for none (most messages: no Set each). */
  keywords: Set<number> | null;
  /** Extension record data by extension name; null for none. */
  ext: Map<string, Buffer> | null;
  /** 0n = not set (means "current highest", as Dovecot reads a zero modseq record). */
  modseq: bigint;
  expunged: boolean;
}

/**
 * Extensions whose per-message records no reader here uses: Dovecot's cache file offsets. Their
 * records are not kept (one Buffer per message and extension otherwise).
 */
export const UNUSED_RECORD_EXTS: ReadonlySet<string> = new Set(['cache']);

export class IndexState {
  baseHeader: Buffer;
  readonly exts: IndexExtension[] = [];
  readonly keywords: string[] = [];
  /** Sorted by UID; expunged entries are marked and dropped by compact(). */
  messages: IndexMessage[] = [];
  /** The modseq counter (HIGHESTMODSEQ once replay is done). */
  modseqCounter = 0n;
  /** Per-message modseqs exist (the `modseq` extension has been introduced). */
  modseqEnabled = false;
  /** The extension EXT_* records apply to, or null before an intro; `ignore` after a reset_id mismatch. */
  current: { ext: IndexExtension; ignore: boolean; recordSize: number } | null = null;

  constructor(baseHeader?: Buffer) {
    this.baseHeader = baseHeader ?? Buffer.alloc(BASE_HEADER_SIZE_2_3);
  }

  get uidValidity(): number {
    return this.baseHeader.readUInt32LE(HDR_UID_VALIDITY);
  }

  get nextUid(): number {
    return this.baseHeader.readUInt32LE(HDR_NEXT_UID);
  }

  set nextUid(v: number) {
    this.baseHeader.writeUInt32LE(v >>> 0, HDR_NEXT_UID);
  }

  findExt(name: string): IndexExtension | undefined {
    return this.exts.find((e) => e.name === name);
  }

  lastUid(): number {
    for (let i = this.messages.length - 1; i >= 0; i--) if (!this.messages[i]!.expunged) return this.messages[i]!.uid;
    return 0;
  }

  /** Index of the first message with uid >= `uid`. */
  lowerBound(uid: number): number {
    let lo = 0;
    let hi = this.messages.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.messages[mid]!.uid < uid) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Live messages with uid1 <= uid <= uid2. */
  *range(uid1: number, uid2: number): Generator<IndexMessage> {
    for (let i = this.lowerBound(uid1); i < this.messages.length; i++) {
      const m = this.messages[i]!;
      if (m.uid > uid2) break;
      if (!m.expunged) yield m;
    }
  }

  lookup(uid: number): IndexMessage | undefined {
    const i = this.lowerBound(uid);
    const m = this.messages[i];
    return m && m.uid === uid && !m.expunged ? m : undefined;
  }

  compact(): void {
    if (this.messages.some((m) => m.expunged)) this.messages = this.messages.filter((m) => !m.expunged);
  }

  /** The record of `ext` for message `m`, sized to the extension's current record size. */
  record(m: IndexMessage, ext: IndexExtension): Buffer {
    let rec = m.ext?.get(ext.name);
    if (!rec || rec.length !== ext.recordSize) {
      const sized = Buffer.alloc(ext.recordSize);
      if (rec) rec.copy(sized, 0, 0, Math.min(rec.length, sized.length));
      rec = sized;
      (m.ext ??= new Map()).set(ext.name, rec);
    }
    return rec;
  }
}
