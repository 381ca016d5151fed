/**
 * Flag digests: what a run saw of its mailboxes' flags, in a few bytes per block of UIDs, so that the
 * next incremental of a source without modseq (Maildir, an IMAP server without CONDSTORE) carries the
 * flags of the messages in blocks that changed instead of a table of every message (formats/state-file.md,
 * "flagDigest").
 *
 * A block is the UIDs b*128 .. b*128+127. Its digest covers, in ascending UID order, each message the
 * dump chain holds after the run: the UID (4 bytes, big-endian) and 8 bytes naming its flags and
 * keywords (the first 8 bytes of the sha256 of the JSON text of [sorted flags, sorted keywords]); the
 * block's digest is the first 16 hex digits of the sha256 of those bytes. Equal digests mean, but for
 * a chance of 2^-64, the same messages with the same flags; anything else (a flag change, an expunge, a
 * new message) gives another digest, and the next run carries the block's flags again.
 *
 * The digests must describe what the dump chain holds, not only what the store showed: a message whose
 * body a run wrote carries the flags of that read (written()), and a message a run left out makes its
 * block undigested (dropped()), so the next run compares nothing there and carries the block.
 */
import { createHash } from 'node:crypto';

export const FLAG_DIGEST_SCHEME = 'fd1';
/** UIDs per block. */
export const FLAG_DIGEST_BLOCK = 128;
const ENTRY_BYTES = 12;

/** Block number -> digest (16 lowercase hex digits), as recorded. */
export type BlockDigests = ReadonlyMap<number, string>;

const BLOCK_ENTRY = /^(0|[1-9][0-9]{0,9}):([0-9a-f]{16})$/;

/**
 * Parses a recorded flagDigest: the digests, null when it is of a scheme or block size this release
 * does not use (the next run then carries whole flag tables, as without one), or a string saying what
 * is wrong with a digest of this scheme.
 */
export function parseFlagDigest(text: string): BlockDigests | null | string {
  const parts = text.split(' ');
  if (parts[0] !== FLAG_DIGEST_SCHEME) return null;
  if (parts[1] === undefined || !/^[1-9][0-9]{0,9}$/.test(parts[1])) return `the block size "${(parts[1] ?? '').slice(0, 20)}" is not a decimal number`;
  if (parts[1] !== String(FLAG_DIGEST_BLOCK)) return null;
  const out = new Map<number, string>();
  let last = -1;
  for (let i = 2; i < parts.length; i++) {
    const m = BLOCK_ENTRY.exec(parts[i]!);
    if (m === null) return `block entry "${parts[i]!.slice(0, 40)}" is not <block>:<16 hex digits>`;
    const block = Number(m[1]);
    if (block <= last) return `blocks are not in ascending order (${block} after ${last})`;
    last = block;
    out.set(block, m[2]!);
  }
  return out;
}

/** The block of a UID. */
export function blockOf(uid: number): number {
  return Math.floor(uid / FLAG_DIGEST_BLOCK);
}

/** Collects (UID, flags) of a mailbox's messages in ascending UID order and gives their block digests. */
export class FlagDigestBuilder {
  private uids = new Uint32Array(1024);
  private combs = new Uint32Array(1024);
  private count = 0;
  /** 8 bytes per distinct flags + keywords combination. */
  private combBytes = Buffer.alloc(8 * 16);
  private combCount = 0;
  private readonly byText = new Map<string, number>();
  /** Combination by the identity of the arrays (drivers share them per distinct combination). */
  private readonly byArrays = new WeakMap<readonly string[], WeakMap<readonly string[], number>>();
  private readonly digests = new Map<number, string>();
  /** Blocks whose digest must be computed again (a body was written with other flags). */
  private readonly dirty = new Set<number>();
  /** Blocks with a message the run did not carry: no digest recorded. */
  private readonly undigested = new Set<number>();
  private openBlock = -1;
  private openStart = 0;
  private lastUid = 0;
  private writtenAt = 0;
  private readonly scratch = Buffer.alloc(FLAG_DIGEST_BLOCK * ENTRY_BYTES);

  /** `onBlock` is called with each block's digest as soon as its last message has been added. */
  constructor(private readonly onBlock: ((block: number, digest: string) => void) | null = null) {}

  private combOf(flags: readonly string[], keywords: readonly string[]): number {
    let inner = this.byArrays.get(flags);
    const hit = inner?.get(keywords);
    if (hit !== undefined) return hit;
    const text = JSON.stringify([[...flags].sort(), [...keywords].sort()]);
    let id = this.byText.get(text);
    if (id === undefined) {
      id = this.combCount++;
      if (this.combBytes.length < this.combCount * 8) {
        const bigger = Buffer.alloc(this.combBytes.length * 2);
        this.combBytes.copy(bigger);
        this.combBytes = bigger;
      }
      createHash('sha256').update(text).digest().copy(this.combBytes, id * 8, 0, 8);
      this.byText.set(text, id);
    }
    if (inner === undefined) this.byArrays.set(flags, (inner = new WeakMap()));
    inner.set(keywords, id);
    return id;
  }

  /** Adds a message (UIDs ascending; the same UID again is ignored, as the UID set ignores it). */
  add(uid: number, flags: readonly string[], keywords: readonly string[]): void {
    if (uid === this.lastUid && this.count > 0) return;
    if (uid < this.lastUid) throw new Error(`internal: flag digest UIDs not ascending (${uid} after ${this.lastUid})`);
    const block = blockOf(uid);
    if (block !== this.openBlock) this.closeOpenBlock(block);
    if (this.count === this.uids.length) {
      const uids = new Uint32Array(this.count * 2);
      uids.set(this.uids);
      this.uids = uids;
      const combs = new Uint32Array(this.count * 2);
      combs.set(this.combs);
      this.combs = combs;
    }
    this.uids[this.count] = uid;
    this.combs[this.count] = this.combOf(flags, keywords);
    this.count++;
    this.lastUid = uid;
  }

  /** Every message has been added: the last block's digest is given too. */
  finish(): void {
    this.closeOpenBlock(-1);
  }

  private closeOpenBlock(next: number): void {
    if (this.openBlock >= 0) {
      const digest = this.digestOf(this.openStart, this.count);
      this.digests.set(this.openBlock, digest);
      this.onBlock?.(this.openBlock, digest);
    }
    this.openBlock = next;
    this.openStart = this.count;
  }

  private digestOf(from: number, to: number): string {
    const buf = this.scratch;
    let at = 0;
    for (let i = from; i < to; i++) {
      buf.writeUInt32BE(this.uids[i]!, at);
      this.combBytes.copy(buf, at + 4, this.combs[i]! * 8, this.combs[i]! * 8 + 8);
      at += ENTRY_BYTES;
    }
    return createHash('sha256').update(buf.subarray(0, at)).digest('hex').slice(0, 16);
  }

  /** Index of `uid`, or -1; calls come in ascending UID order (the body pass), so a cursor is kept. */
  private indexOf(uid: number): number {
    if (this.count === 0 || uid > this.lastUid) return -1;
    let i = this.writtenAt;
    if (i >= this.count || this.uids[i]! > uid) i = 0;
    while (i < this.count && this.uids[i]! < uid) i++;
    this.writtenAt = i;
    return i < this.count && this.uids[i] === uid ? i : -1;
  }

  /** A message's body was written with these flags (they may differ from what add() was given). */
  written(uid: number, flags: readonly string[], keywords: readonly string[]): void {
    const i = this.indexOf(uid);
    if (i < 0) return;
    const comb = this.combOf(flags, keywords);
    if (comb === this.combs[i]) return;
    this.combs[i] = comb;
    this.dirty.add(blockOf(uid));
  }

  /** The run did not carry this message: its block gets no digest. */
  dropped(uid: number): void {
    this.undigested.add(blockOf(uid));
  }

  /** Number of messages added. */
  get size(): number {
    return this.count;
  }

  /** The flagDigest text for the state file: "fd1 128 <block>:<hex> ...", blocks ascending. */
  toString(): string {
    if (this.openBlock >= 0) this.finish();
    if (this.dirty.size > 0) {
      let i = 0;
      while (i < this.count) {
        const block = blockOf(this.uids[i]!);
        let j = i;
        while (j < this.count && blockOf(this.uids[j]!) === block) j++;
        if (this.dirty.has(block)) this.digests.set(block, this.digestOf(i, j));
        i = j;
      }
      this.dirty.clear();
    }
    const parts = [FLAG_DIGEST_SCHEME, String(FLAG_DIGEST_BLOCK)];
    for (const [block, digest] of this.digests) if (!this.undigested.has(block)) parts.push(`${block}:${digest}`);
    return parts.join(' ');
  }
}
