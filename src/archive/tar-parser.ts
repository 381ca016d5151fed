/**
 * A streaming reader of the tar subset a dump uses: it turns chunks (of any size) into member events,
 * tracks byte offsets in the uncompressed stream, and hashes the stream so the trailer digest can be
 * checked: every byte, except that the data and padding of a member the consumer marks as content
 * (TarParseState.contentMember, format version 4) enter as the sha256 of the data. Every buffer is bounded: header blocks, pax headers (MAX_PAX_BYTES); data is passed on in
 * the chunks it arrived in.
 */
import { createHash, type Hash } from 'node:crypto';
import { ArchiveCorruptError, ArchiveTruncatedError } from '../core/errors.js';
import { ContentHash } from './content-hash.js';
import { BLOCK, MAX_MEMBER_BYTES, MAX_PAX_BYTES } from './limits.js';
import { decodePax, decodeUstar, HeaderFormatError, isZeroBlock, paddingLength, type UstarHeader } from './tar-header.js';

export type TarEvent =
  | {
      kind: 'member';
      name: string;
      size: number;
      mtime: number;
      /** Offset of the member's first header block (its pax header, if any). */
      offset: number;
      dataOffset: number;
      /**
       * sha256 state over every byte before `offset`: a new copy the consumer may finalise. Call it
       * while handling this event, before pulling the next one. (Made on demand: a copy per member
       * was a native Hash object per member, and their garbage a good part of a restore's GC time.)
       */
      digestBefore: () => Hash;
    }
  | { kind: 'data'; chunk: Buffer }
  /** `sha256`: of the data, for a content member (TarParseState.contentMember), which the parser hashed. */
  | { kind: 'memberEnd'; sha256?: string }
  /** End-of-archive marker at `offset`; only zero bytes follow it. */
  | { kind: 'end'; offset: number };

export const CUT_SHORT_HINT = 'the dump was cut short or damaged: check it with "mailvault verify"';

/** Parse state a caller may read for its messages. */
export class TarParseState {
  /** Bytes consumed so far. */
  offset = 0;
  /** Name of the last member whose data (and padding) was read completely. */
  lastComplete: string | null = null;
  /**
   * Set by the consumer while it handles a member event: the member is content (a body, stub or blob
   * of a version 4 dump), so its data and padding enter the digest as the 32-byte sha256 of the data,
   * and its padding must be zeros. Reset to false before each member event.
   */
  contentMember = false;
}

export async function* parseTar(source: AsyncIterable<Buffer>, state: TarParseState = new TarParseState()): AsyncGenerator<TarEvent> {
  const it = source[Symbol.asyncIterator]();
  const queue: Buffer[] = [];
  let buffered = 0;
  let eof = false;
  const hash = createHash('sha256');
  /** Where taken bytes are hashed: `hash`, a content member's own hash, or nowhere (its padding). */
  let target: { update(data: Buffer): unknown } | null = hash;
  /** While a member's header blocks are read, their bytes wait here to be hashed (see digestBefore). */
  let deferred: Buffer[] | null = null;
  const hashDeferred = (): void => {
    if (deferred !== null) for (const b of deferred) hash.update(b);
    deferred = null;
  };

  const fill = async (n: number): Promise<boolean> => {
    while (buffered < n && !eof) {
      const r = await it.next();
      if (r.done) {
        eof = true;
        break;
      }
      const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
      if (chunk.length === 0) continue;
      queue.push(chunk);
      buffered += chunk.length;
    }
    return buffered >= n;
  };
  /** Take up to n bytes from the first queued chunk (n > 0, buffered > 0). */
  const takeSome = (n: number): Buffer => {
    const first = queue[0]!;
    let out: Buffer;
    if (first.length <= n) {
      queue.shift();
      out = first;
    } else {
      out = first.subarray(0, n);
      queue[0] = first.subarray(n);
    }
    buffered -= out.length;
    state.offset += out.length;
    if (deferred !== null) deferred.push(out);
    else target?.update(out);
    return out;
  };
  const take = (n: number): Buffer => {
    if (n === 0) return Buffer.alloc(0);
    const first = takeSome(n);
    if (first.length === n) return first;
    const parts = [first];
    let got = first.length;
    while (got < n) {
      const part = takeSome(n - got);
      parts.push(part);
      got += part.length;
    }
    return Buffer.concat(parts, n);
  };
  const last = (): string => (state.lastComplete === null ? 'none' : `"${state.lastComplete}"`);
  const truncated = (where: string): ArchiveTruncatedError =>
    new ArchiveTruncatedError(
      `archive truncated: the stream ends at offset ${state.offset + buffered} ${where}; the last complete member is ${last()}`,
      { offset: state.offset + buffered, ...(state.lastComplete === null ? {} : { member: state.lastComplete }), hint: CUT_SHORT_HINT },
    );
  const corrupt = (offset: number, why: string, member?: string): ArchiveCorruptError =>
    new ArchiveCorruptError(
      `archive corrupt: ${member === undefined ? 'tar header' : `member "${member}"`} at offset ${offset}: ${why}; the last complete member is ${last()}`,
      { offset, ...(member === undefined ? {} : { member }), hint: CUT_SHORT_HINT },
    );
  const decode = (block: Buffer, at: number): UstarHeader => {
    try {
      return decodeUstar(block);
    } catch (err) {
      if (err instanceof HeaderFormatError) throw corrupt(at, err.message);
      throw err;
    }
  };

  try {
    yield* parseMembers();
  } finally {
    await it.return?.(undefined);
  }

  async function* parseMembers(): AsyncGenerator<TarEvent> {
    for (;;) {
      const memberStart = state.offset;
      deferred = [];
      if (!(await fill(BLOCK))) {
        throw truncated(buffered === 0 ? 'before the end-of-archive marker' : 'inside a tar header');
      }
      let block = take(BLOCK);
      if (isZeroBlock(block)) {
        hashDeferred();
        if (!(await fill(BLOCK))) throw truncated('inside the end-of-archive marker');
        const second = take(BLOCK);
        if (!isZeroBlock(second)) throw corrupt(memberStart + BLOCK, 'a lone zero block inside the archive (expected a second zero block: end-of-archive)');
        // Anything after end-of-archive must be zero padding (tar pads to its record size).
        while (await fill(1)) {
          const at = state.offset;
          const rest = takeSome(buffered);
          if (!isZeroBlock(rest)) throw corrupt(at, 'data after the end-of-archive marker');
        }
        yield { kind: 'end', offset: memberStart };
        return;
      }
      let header = decode(block, memberStart);
      let pax: Map<string, string> | null = null;
      if (header.typeflag === 'x') {
        if (header.size > MAX_PAX_BYTES) throw corrupt(memberStart, `pax header of ${header.size} bytes is over the ${MAX_PAX_BYTES}-byte limit`);
        const padded = header.size + paddingLength(header.size);
        if (!(await fill(padded))) throw truncated('inside a pax header');
        const data = take(header.size);
        take(padded - header.size);
        try {
          pax = decodePax(data);
        } catch (err) {
          if (err instanceof HeaderFormatError) throw corrupt(memberStart, err.message);
          throw err;
        }
        const at = state.offset;
        if (!(await fill(BLOCK))) throw truncated('inside a tar header');
        block = take(BLOCK);
        if (isZeroBlock(block)) throw corrupt(at, 'a pax header is followed by no member');
        header = decode(block, at);
        if (header.typeflag === 'x') throw corrupt(at, 'two pax headers in a row');
      }
      const name = pax?.get('path') ?? header.name;
      if (header.typeflag !== '0' && header.typeflag !== '\u0000') {
        throw corrupt(memberStart, `member type "${header.typeflag}" (only regular files belong in a dump)`, name);
      }
      let size = header.size;
      const paxSize = pax?.get('size');
      if (paxSize !== undefined) {
        if (!/^[0-9]{1,16}$/.test(paxSize)) throw corrupt(memberStart, 'pax size is not a decimal number', name);
        size = Number(paxSize);
      }
      if (size > MAX_MEMBER_BYTES) throw corrupt(memberStart, `declared size ${size} is absurd (over 2^40 bytes)`, name);
      const dataOffset = state.offset;
      let handled = false;
      const digestBefore = (): Hash => {
        if (handled) throw new Error('internal: digestBefore() called after the next event was pulled');
        return hash.copy();
      };
      state.contentMember = false;
      yield { kind: 'member', name, size, mtime: header.mtime, offset: memberStart, dataOffset, digestBefore };
      handled = true;
      hashDeferred();
      const contentHash = state.contentMember ? new ContentHash() : null;
      if (contentHash !== null) target = contentHash;
      let remaining = size;
      while (remaining > 0) {
        if (buffered === 0 && !(await fill(1))) throw truncated(`inside the data of member "${name}" (${remaining} of ${size} bytes missing)`);
        const chunk = takeSome(remaining);
        remaining -= chunk.length;
        yield { kind: 'data', chunk };
      }
      const pad = paddingLength(size);
      if (!(await fill(pad))) throw truncated(`inside the padding of member "${name}"`);
      if (contentHash !== null) {
        // The padding is not in the digest: it must be zeros, so that no byte goes unchecked.
        target = null;
        const padAt = state.offset;
        if (!isZeroBlock(take(pad))) throw corrupt(padAt, 'the padding after the data is not zero bytes', name);
        target = hash;
        const sha256 = contentHash.hex();
        hash.update(Buffer.from(sha256, 'hex'));
        state.lastComplete = name;
        yield { kind: 'memberEnd', sha256 };
        continue;
      }
      take(pad);
      state.lastComplete = name;
      yield { kind: 'memberEnd' };
    }
  }
}
