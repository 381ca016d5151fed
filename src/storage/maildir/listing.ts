/**
 * MaildirListing: the messages of one Maildir mailbox, the uidlist joined with the files in new/ and
 * cur/ (maildir-sync.c, maildir-uidlist.c), held compactly so that a mailbox of a million messages
 * costs tens of megabytes, not hundreds.
 *
 * - The uidlist is kept as read, as bytes (decoding 4.7 MB of uidlist to a string cost more than
 *   parsing it); per record only typed-array columns: UID, where its line and base name start and end,
 *   where its file is (new/ or cur/) and the file name's suffix after the base (":2,S" and the like,
 *   interned: a mailbox has few distinct ones). Extension fields (GUID, sizes) are parsed again from
 *   the line when a record is asked for.
 * - The join uses an open-addressing hash table over the records' base names (typed arrays too),
 *   hashed and compared as UTF-8 bytes. The directories are read entry by entry (opendir), never as
 *   one array of names.
 * - Order: the uidlist is read first, then new/, then cur/. A record appended after the read refers to a
 *   file seen or not: either way the message is left for the next run (it is above UIDNEXT). A file
 *   moved new/ -> cur/ meanwhile is found in cur/. A directory that changed while it was read (its
 *   mtime moved: a flag change renames a file, and readdir may then return neither name) is read
 *   again for the records still without a file, up to three times, so a concurrent flag change does not
 *   make a message look expunged.
 * - Duplicate base names in the uidlist: the later record wins, as in Dovecot.
 * - Files the uidlist does not list are collected (`unlisted`), not made messages: they have no UID yet
 *   (store.ts has them given one, as Dovecot's sync would).
 */
import { isUtf8 } from 'node:buffer';
import fs from 'node:fs';
import path from 'node:path';
import { fromSystemError } from '../../core/errors.js';
import { hashAsciiBase, hashBaseBytes } from './base-hash.js';
import { isMessageFileName } from './filename.js';
import { parseRecordSpan, parseUidlistHeader, type RecordSpan, type UidlistContext, type UidlistHeader, type UidlistRecord } from './uidlist.js';

/** Test hooks: called after each directory pass. */
export interface ListingHooks {
  afterDirectory?(sub: 'new' | 'cur', attempt: number): void;
}

/** Where a record's file is. */
const NONE = 0;
const IN_NEW = 1;
const IN_CUR = 2;
/** A record replaced by a later one with the same base name. */
const DEAD = 3;

function sameBytes(a: Uint8Array, aStart: number, b: Uint8Array, bStart: number, length: number): boolean {
  for (let k = 0; k < length; k++) if (a[aStart + k] !== b[bStart + k]) return false;
  return true;
}

/** True if the ASCII string name[0, length) equals the bytes data[start, start + length). */
function sameAscii(data: Uint8Array, start: number, name: string, length: number): boolean {
  for (let k = 0; k < length; k++) if (data[start + k] !== name.charCodeAt(k)) return false;
  return true;
}

export class MaildirListing {
  /** Records in the uidlist, including dead ones. */
  readonly recordCount: number;
  /** Records with a file (the mailbox's messages). */
  private present = 0;
  /** Records replaced by a later record with the same base name. */
  private dead = 0;
  private readonly uids: Uint32Array;
  private readonly lineStart: Uint32Array;
  private readonly lineEnd: Uint32Array;
  private readonly baseStart: Uint32Array;
  private readonly baseEnd: Uint32Array;
  private readonly where: Uint8Array;
  private readonly suffixId: Uint32Array;
  private readonly suffixes: string[] = [''];
  private readonly suffixIds = new Map<string, number>([['', 0]]);
  private readonly table: Int32Array;
  private readonly mask: number;

  private constructor(
    private readonly data: Buffer,
    readonly header: UidlistHeader | null,
    readonly nextUid: number,
    private readonly path: string,
    private readonly ctx: UidlistContext,
    lines: { uids: Uint32Array; lineStart: Uint32Array; lineEnd: Uint32Array; baseStart: Uint32Array; baseEnd: Uint32Array; count: number },
  ) {
    this.recordCount = lines.count;
    this.uids = lines.uids;
    this.lineStart = lines.lineStart;
    this.lineEnd = lines.lineEnd;
    this.baseStart = lines.baseStart;
    this.baseEnd = lines.baseEnd;
    this.where = new Uint8Array(lines.count);
    this.suffixId = new Uint32Array(lines.count);
    let size = 16;
    while (size < lines.count * 2) size *= 2;
    this.table = new Int32Array(size).fill(-1);
    this.mask = size - 1;
    for (let i = 0; i < lines.count; i++) {
      const slot = this.findSlot(data, this.baseStart[i]!, this.baseEnd[i]!);
      const old = this.table[slot]!;
      if (old >= 0) {
        this.where[old] = DEAD;
        this.dead++;
      }
      this.table[slot] = i;
    }
  }

  /**
   * Read the uidlist at `uidlistPath` (a last line without LF is skipped: Dovecot may be appending it)
   * and join it with the files of `mailDir`. A missing or empty uidlist gives an empty listing.
   */
  static load(uidlistPath: string, mailDir: string, ctx: UidlistContext, hooks: ListingHooks = {}): MaildirListing {
    let data: Buffer;
    try {
      data = fs.readFileSync(uidlistPath);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fromSystemError(e, 'read the uidlist', { path: uidlistPath, ...ctx });
      data = Buffer.alloc(0);
    }
    const listing = MaildirListing.parse(data, uidlistPath, ctx);
    listing.scan(mailDir, hooks);
    return listing;
  }

  /** Parse a uidlist's bytes (no directory scan yet). The listing keeps `data`: do not change it. */
  static parse(data: Buffer, uidlistPath: string, ctx: UidlistContext): MaildirListing {
    const empty = { uids: new Uint32Array(0), lineStart: new Uint32Array(0), lineEnd: new Uint32Array(0), baseStart: new Uint32Array(0), baseEnd: new Uint32Array(0), count: 0 };
    if (data.length === 0) return new MaildirListing(data, null, 1, uidlistPath, ctx, empty);
    const stripCr = (s: number, e: number): number => (e > s && data[e - 1] === 0x0d ? e - 1 : e);
    let nl = data.indexOf(0x0a);
    const header = parseUidlistHeader(data.toString('utf8', 0, stripCr(0, nl < 0 ? data.length : nl)), uidlistPath, ctx);
    // Upper bound of records: the number of LFs.
    let lfs = 0;
    for (let p = nl; p >= 0; p = data.indexOf(0x0a, p + 1)) lfs++;
    const cap = Math.max(lfs, 1);
    const cols = { uids: new Uint32Array(cap), lineStart: new Uint32Array(cap), lineEnd: new Uint32Array(cap), baseStart: new Uint32Array(cap), baseEnd: new Uint32Array(cap), count: 0 };
    let prevUid = 0;
    let lineNo = 1;
    let start = nl < 0 ? data.length : nl + 1;
    const r: RecordSpan = { uid: 0, baseStart: 0, baseEnd: 0 };
    while (start < data.length) {
      nl = data.indexOf(0x0a, start);
      if (nl < 0) break; // a partial last line: Dovecot may be writing it
      lineNo++;
      const end = stripCr(start, nl);
      parseRecordSpan(data, start, end, header, prevUid, lineNo, uidlistPath, ctx, null, r);
      prevUid = r.uid;
      const n = cols.count++;
      cols.uids[n] = r.uid;
      cols.lineStart[n] = start;
      cols.lineEnd[n] = end;
      cols.baseStart[n] = r.baseStart;
      cols.baseEnd[n] = r.baseEnd;
      start = nl + 1;
    }
    const nextUid = Math.max(header.headerNextUid, prevUid + 1);
    return new MaildirListing(data, header, nextUid, uidlistPath, ctx, cols);
  }

  /** The hash-table slot of the base name b[start, end) (UTF-8): where it is, or the empty slot it would take. */
  private findSlot(b: Uint8Array, start: number, end: number): number {
    const length = end - start;
    let slot = hashBaseBytes(b, start, end) & this.mask;
    for (;;) {
      const i = this.table[slot]!;
      if (i < 0) return slot;
      const bs = this.baseStart[i]!;
      if (this.baseEnd[i]! - bs === length && sameBytes(this.data, bs, b, start, length)) return slot;
      slot = (slot + 1) & this.mask;
    }
  }

  /**
   * Index of the live record whose base name is name[0, end), or -1. An ASCII name (any Dovecot
   * wrote) is hashed and compared as it is, char codes being its bytes; another is encoded first.
   */
  private indexOfBase(name: string, end: number): number {
    if (this.recordCount === 0) return -1;
    const h = hashAsciiBase(name, end);
    if (h < 0) {
      const bytes = Buffer.from(name.slice(0, end), 'utf8');
      return this.table[this.findSlot(bytes, 0, bytes.length)]!;
    }
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      const i = this.table[slot]!;
      if (i < 0) return -1;
      const bs = this.baseStart[i]!;
      if (this.baseEnd[i]! - bs === end && sameAscii(this.data, bs, name, end)) return i;
    }
  }

  private intern(suffix: string): number {
    let id = this.suffixIds.get(suffix);
    if (id === undefined) {
      id = this.suffixes.length;
      this.suffixes.push(suffix);
      this.suffixIds.set(suffix, id);
    }
    return id;
  }

  /**
   * File names that are not valid UTF-8 (a host name in Latin-1 in the base name), by record: their
   * bytes. Node gives such names as strings with U+FFFD, which neither match the uidlist's bytes nor
   * name the file; the listing matches them by their bytes, and readers open them by these bytes.
   */
  private readonly rawNames = new Map<number, Buffer>();

  /** The suffix interned last: most files of a mailbox share it, so no slice and no Map lookup then. */
  private lastSuffix = '';
  private lastSuffixId = 0;

  private place(i: number, where: number, name: string, baseLength: number): void {
    if (this.where[i] === NONE) this.present++;
    this.where[i] = where;
    const last = this.lastSuffix;
    if (name.length - baseLength === last.length && name.endsWith(last)) {
      this.suffixId[i] = this.lastSuffixId;
      return;
    }
    const suffix = name.slice(baseLength);
    this.suffixId[i] = this.intern(suffix);
    this.lastSuffix = suffix;
    this.lastSuffixId = this.suffixId[i]!;
  }

  /**
   * Message files whose base name the uidlist does not list ("new/<name>" or "cur/<name>"): delivered
   * by something other than Dovecot (Postfix, procmail...), or by Dovecot without getting the uidlist
   * lock, or in a folder Dovecot never opened (no uidlist at all). Dovecot gives them UIDs at its next
   * sync of the mailbox; until then they have none.
   */
  private readonly unlistedFiles = new Set<string>();

  get unlisted(): readonly string[] {
    return [...this.unlistedFiles];
  }

  /** Read new/ then cur/ and note each record's file; read again what changed meanwhile. */
  private scan(mailDir: string, hooks: ListingHooks): void {
    let onlyMissing = false;
    let recentChecked = false;
    const started = Date.now();
    for (let attempt = 0; attempt < 4; attempt++) {
      const before = [dirStamp(path.join(mailDir, 'new')), dirStamp(path.join(mailDir, 'cur'))];
      for (const [sub, where] of [['new', IN_NEW], ['cur', IN_CUR]] as const) {
        const dir = path.join(mailDir, sub);
        let handle: fs.Dir;
        let lossy = false;
        try {
          handle = fs.opendirSync(dir, { bufferSize: 1024 });
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'ENOENT' || code === 'ENOTDIR') continue;
          throw fromSystemError(e, 'list the messages', { path: dir, ...this.ctx });
        }
        try {
          for (let entry = handle.readSync(); entry !== null; entry = handle.readSync()) {
            const name = entry.name;
            if (!isMessageFileName(name)) continue;
            const colon = name.indexOf(':');
            const baseLength = colon < 0 ? name.length : colon;
            const i = this.indexOfBase(name, baseLength);
            if (i < 0) {
              // U+FFFD: perhaps a name that is not UTF-8, matched by its bytes below.
              if (name.includes('\uFFFD')) lossy = true;
              this.unlistedFiles.add(`${sub}/${name}`);
              continue;
            }
            if (onlyMissing && this.where[i] !== NONE) continue;
            this.place(i, where, name, baseLength);
          }
        } catch (e) {
          throw fromSystemError(e, 'list the messages', { path: dir, ...this.ctx });
        } finally {
          handle.closeSync();
        }
        if (lossy) this.matchRawNames(dir, sub, where, onlyMissing);
        hooks.afterDirectory?.(sub, attempt);
      }
      const after = [dirStamp(path.join(mailDir, 'new')), dirStamp(path.join(mailDir, 'cur'))];
      if (before[0] === after[0] && before[1] === after[1]) {
        // Directory timestamps come from a coarse clock (a few ms): a rename in the same tick as the
        // change before it leaves the mtime as it was. So, like Dovecot's maildir sync, a directory
        // changed within the last seconds is not trusted to be unchanged: when records are still
        // without a file, read once more.
        if (recentChecked || this.present + this.dead === this.recordCount || !after.some((st) => stampRecent(st, started))) return;
        recentChecked = true;
      }
      onlyMissing = true;
    }
  }

  /**
   * Reads `dir` again with names as bytes and gives the records whose file name is not valid UTF-8
   * their files (a Node string cannot spell such a name: it reads U+FFFD). Files no record lists stay
   * unlisted (store.ts reports them: they cannot be given a record a string could name).
   */
  private matchRawNames(dir: string, sub: 'new' | 'cur', where: number, onlyMissing: boolean): void {
    let names: Buffer[];
    try {
      names = fs.readdirSync(dir, { encoding: 'buffer' });
    } catch (e) {
      throw fromSystemError(e, 'list the messages', { path: dir, ...this.ctx });
    }
    // Two names may read the same with U+FFFD: the key of one without a record stays reported.
    const stillUnlisted: string[] = [];
    for (const raw of names) {
      if (isUtf8(raw) || raw[0] === 0x2e || raw[0] === 0x3a) continue;
      const colon = raw.indexOf(0x3a);
      const baseEnd = colon < 0 ? raw.length : colon;
      const name = raw.toString('utf8');
      const i = this.recordCount === 0 ? -1 : this.table[this.findSlot(raw, 0, baseEnd)]!;
      if (i < 0) {
        stillUnlisted.push(`${sub}/${name}`);
        continue;
      }
      this.unlistedFiles.delete(`${sub}/${name}`);
      if (onlyMissing && this.where[i] !== NONE) continue;
      const lossyColon = name.indexOf(':');
      this.place(i, where, name, lossyColon < 0 ? name.length : lossyColon);
      this.rawNames.set(i, raw);
    }
    for (const key of stillUnlisted) this.unlistedFiles.add(key);
  }

  /** Number of messages (records with a file). */
  get messageCount(): number {
    return this.present;
  }

  uid(i: number): number {
    return this.uids[i]!;
  }

  base(i: number): string {
    return this.data.toString('utf8', this.baseStart[i]!, this.baseEnd[i]!);
  }

  /** The base name's bytes where they are not valid UTF-8 (base() then reads U+FFFD), else null. */
  rawBase(i: number): Buffer | null {
    const bytes = this.data.subarray(this.baseStart[i]!, this.baseEnd[i]!);
    return isUtf8(bytes) ? null : Buffer.from(bytes);
  }

  /** True if record i is a message: a live record with a file. */
  hasFile(i: number): boolean {
    const w = this.where[i]!;
    return w === IN_NEW || w === IN_CUR;
  }

  /** "new" or "cur" and the file name of record i (which must have a file). */
  file(i: number): { sub: 'new' | 'cur'; name: string; raw?: Buffer } {
    const sub = this.where[i] === IN_NEW ? 'new' : 'cur';
    const raw = this.rawNames.get(i);
    if (raw !== undefined) return { sub, name: raw.toString('utf8'), raw };
    return { sub, name: this.base(i) + this.suffixes[this.suffixId[i]!]! };
  }

  /** The distinct file-name suffixes seen (":2,S", ":2,Sab", ...; "" for none). */
  get distinctSuffixes(): readonly string[] {
    return this.suffixes;
  }

  /** Id of record i's file-name suffix (the part after the base name): equal ids, equal suffixes. */
  suffixIdOf(i: number): number {
    return this.suffixId[i]!;
  }

  /** The uidlist record of i (extension fields parsed from its line). */
  record(i: number): UidlistRecord {
    const ext: Record<string, string> = {};
    const span: RecordSpan = { uid: 0, baseStart: 0, baseEnd: 0 };
    parseRecordSpan(this.data, this.lineStart[i]!, this.lineEnd[i]!, this.header!, 0, 0, this.path, this.ctx, ext, span);
    return { uid: span.uid, base: this.data.toString('utf8', span.baseStart, span.baseEnd), ext };
  }

  /** Index of the first record with UID >= uid (records.length if none). */
  lowerBound(uid: number): number {
    let lo = 0;
    let hi = this.recordCount;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.uids[mid]! < uid) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Index of the message with this UID, or -1. */
  indexOfUid(uid: number): number {
    const i = this.lowerBound(uid);
    return i < this.recordCount && this.uids[i] === uid && this.hasFile(i) ? i : -1;
  }

  /** Record i's file was found again under another name (after a rename by Dovecot), or is gone (null). */
  relocate(i: number, found: { sub: 'new' | 'cur'; name: string; raw?: Buffer } | null): void {
    this.rawNames.delete(i);
    if (found === null) {
      if (this.hasFile(i)) this.present--;
      this.where[i] = NONE;
      return;
    }
    const colon = found.name.indexOf(':');
    this.place(i, found.sub === 'new' ? IN_NEW : IN_CUR, found.name, colon < 0 ? found.name.length : colon);
    if (found.raw !== undefined) this.rawNames.set(i, found.raw);
  }
}

/** True if the stamp's mtime is within 2 s before `since` (ms) or later. */
function stampRecent(stamp: string, since: number): boolean {
  if (stamp === '') return false;
  const mtimeMs = Number(BigInt(stamp.slice(0, stamp.indexOf(':'))) / 1_000_000n);
  return mtimeMs >= since - 2000;
}

/** mtime (ns) and size of a directory, or "" if it is missing: what changes when a file is added, removed or renamed in it. */
function dirStamp(dir: string): string {
  try {
    const st = fs.statSync(dir, { bigint: true });
    return `${st.mtimeNs}:${st.ctimeNs}:${st.size}`;
  } catch {
    return '';
  }
}
