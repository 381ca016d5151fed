/**
 * Messages stored as parts (format version 2, formats/dump-v1.md section 5.8): the rules a parts list
 * must follow, the encoder that turns blob content back into message bytes (raw, or base64 in lines),
 * and the assembler that rebuilds a full message from the stub and the blobs while checking every
 * blob's size and sha256. Writer, one-pass reader and random-access reader all use this one assembler,
 * so what the writer hashed is what the readers rebuild.
 */
import { createHash } from 'node:crypto';
import { encodeBase64Lines } from '../core/base64-lines.js';
import { ArchiveCorruptError } from '../core/errors.js';
import type { MessageRecord, PartEncoding, PartRecord } from './records.js';

/** Longest base64 line a part may declare (RFC 2045 says 76; real mail has more, rarely this much). */
export const MAX_BASE64_LINE = 1024 * 1024;

/**
 * Whether a dump can hold a part of this encoding: readers reject a base64 line length outside 1 to
 * MAX_BASE64_LINE, so the writer refuses it and a backup stores such a message whole (a single-line
 * base64 attachment of over 768 KiB, which Dovecot's SIS and --dedup-attachments both take apart).
 */
export function encodingFitsDump(encoding: PartEncoding): boolean {
  if (encoding.type !== 'base64') return true;
  const n = encoding.lineLength;
  return Number.isInteger(n) && n >= 1 && n <= MAX_BASE64_LINE;
}

export function partEncoding(part: Extract<PartRecord, { type: 'blob' }>): PartEncoding {
  return part.encoding === 'raw' ? { type: 'raw' } : { type: 'base64', lineLength: part.lineLength!, crlf: part.crlf! };
}

/** Bytes that `contentSize` bytes of content become under `encoding` (before the cut to a part's size). */
export function encodedLength(contentSize: number, encoding: PartEncoding): number {
  if (encoding.type === 'raw') return contentSize;
  const chars = 4 * Math.ceil(contentSize / 3);
  if (chars === 0) return 0;
  const lines = Math.ceil(chars / encoding.lineLength);
  return chars + (lines - 1) * (encoding.crlf ? 2 : 1);
}

/**
 * Check a version 2 record's `stub` and `parts` (shape and arithmetic): inline ranges are consecutive
 * from 0 and cover the stub exactly; blob pieces name a sha256, fit their encoded content, and all
 * pieces add up to the record's `size`. Throws ArchiveCorruptError naming the member.
 */
export function validateParts(record: MessageRecord, member: string, offset: number): { stub: { size: number; sha256: string }; parts: readonly PartRecord[] } {
  const fail = (why: string): ArchiveCorruptError =>
    new ArchiveCorruptError(`archive corrupt: record "${member}" at offset ${offset}: ${why}`, {
      member,
      offset,
      user: record.user,
      mailbox: record.mailbox,
      uid: record.uid,
      hint: 'the dump was damaged or written by a broken writer: check it with "mailvault verify"',
    });
  const count = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  const stub = record.stub as unknown;
  if (stub === null || typeof stub !== 'object' || !count((stub as Record<string, unknown>)['size']) || !/^[0-9a-f]{64}$/.test(String((stub as Record<string, unknown>)['sha256']))) {
    throw fail('field "stub" ({size, sha256}) is missing or of the wrong type');
  }
  const parts = record.parts as unknown;
  if (!Array.isArray(parts) || parts.length === 0) throw fail('field "parts" is missing, empty or not an array');
  let stubPos = 0;
  let total = 0;
  const out: PartRecord[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i] as Record<string, unknown> | null;
    if (p === null || typeof p !== 'object') throw fail(`part ${i} is not an object`);
    if (p['type'] === 'inline') {
      if (!count(p['offset']) || !count(p['size'])) throw fail(`inline part ${i}: offset or size missing or of the wrong type`);
      if (p['offset'] !== stubPos) throw fail(`inline part ${i} starts at stub offset ${p['offset']}, expected ${stubPos} (inline parts are consecutive)`);
      stubPos += p['size'];
      total += p['size'];
      out.push({ type: 'inline', offset: p['offset'], size: p['size'] });
    } else if (p['type'] === 'blob') {
      const sha256 = p['sha256'];
      if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) throw fail(`blob part ${i}: sha256 is not 64 lowercase hex digits`);
      if (!count(p['contentSize']) || !count(p['size'])) throw fail(`blob part ${i}: contentSize or size missing or of the wrong type`);
      let encoding: PartEncoding;
      if (p['encoding'] === 'raw') encoding = { type: 'raw' };
      else if (p['encoding'] === 'base64') {
        const lineLength = p['lineLength'];
        if (typeof lineLength !== 'number' || !encodingFitsDump({ type: 'base64', lineLength, crlf: false })) throw fail(`blob part ${i}: lineLength must be an integer from 1 to ${MAX_BASE64_LINE}`);
        if (typeof p['crlf'] !== 'boolean') throw fail(`blob part ${i}: crlf missing or not a boolean`);
        encoding = { type: 'base64', lineLength, crlf: p['crlf'] };
      } else throw fail(`blob part ${i}: unknown encoding ${JSON.stringify(p['encoding'])}`);
      const encoded = encodedLength(p['contentSize'], encoding);
      if (p['size'] > encoded) throw fail(`blob part ${i}: size ${p['size']} exceeds the ${encoded} bytes its content encodes to`);
      total += p['size'];
      out.push(
        encoding.type === 'raw'
          ? { type: 'blob', sha256, contentSize: p['contentSize'], size: p['size'], encoding: 'raw' }
          : { type: 'blob', sha256, contentSize: p['contentSize'], size: p['size'], encoding: 'base64', lineLength: encoding.lineLength, crlf: encoding.crlf },
      );
    } else throw fail(`part ${i}: unknown type ${JSON.stringify(p['type'])}`);
  }
  const s = stub as { size: number; sha256: string };
  if (stubPos !== s.size) throw fail(`the inline parts cover ${stubPos} stub bytes, the stub has ${s.size}`);
  if (total !== record.size) throw fail(`the parts add up to ${total} bytes, the message has ${record.size}`);
  return { stub: { size: s.size, sha256: s.sha256 }, parts: out };
}

/** A piece as the assembler sees it. */
export type AssemblyPiece =
  | { readonly type: 'inline'; readonly size: number }
  | {
      readonly type: 'blob';
      readonly size: number;
      readonly contentSize: number;
      readonly encoding: PartEncoding;
      /** Expected sha256 of the content; null when the caller wants it computed (writer). */
      readonly sha256: string | null;
      open(): Promise<AsyncIterable<Buffer>>;
      /**
       * The content already encoded (all of its encoding, before the cut to `size`), with the content's
       * sha256, from an earlier assembly of the same content (see `capture`): used as is, and the
       * content is not opened.
       */
      readonly encoded?: { readonly bytes: Buffer; readonly contentSha256: string };
      /** Keep a copy of this piece's whole encoding in AssemblyResult.encoded. */
      readonly capture?: boolean;
      /**
       * Copy this piece's content (the bytes read, before encoding) into this buffer (`contentSize`
       * bytes, not memory the content is read into) and hand it back in AssemblyResult.content, so that
       * a writer can store the blob from the very bytes it hashed instead of reading it again.
       */
      readonly keepInto?: Buffer;
    };

export interface AssemblyResult {
  /** sha256 of each piece's content, by piece index (blob pieces only). */
  readonly contentSha256: Map<number, string>;
  /** The whole encoding of each piece asked for with `capture`, by piece index. */
  readonly encoded: Map<number, Buffer>;
  /** Each piece's `keepInto`, holding its whole content, by piece index. */
  readonly content: Map<number, Buffer>;
}

/**
 * Rebuild a message: inline pieces are taken in order from `stub` (one sequential stream), blob pieces
 * from their content, encoded and cut to size. Each blob is read to its end so that its size and sha256
 * are checked (`fail(index, why)` makes the error). `result` is complete once the generator is done.
 */
export interface AssemblyOptions {
  /**
   * The consumer is done with each chunk of `stream` before it asks for the next (it hashes or copies
   * it): base64 text is then written into reused memory instead of a new buffer per step.
   */
  readonly transient?: boolean;
}

export function assembleParts(
  pieces: readonly AssemblyPiece[],
  stub: AsyncIterable<Buffer>,
  fail: (index: number, why: string) => Error,
  options: AssemblyOptions = {},
): { stream: AsyncGenerator<Buffer>; result: AssemblyResult } {
  const result: AssemblyResult = { contentSha256: new Map(), encoded: new Map(), content: new Map() };
  async function* generate(): AsyncGenerator<Buffer> {
    const stubIt = stub[Symbol.asyncIterator]();
    let held: Buffer = Buffer.alloc(0);
    try {
      for (let i = 0; i < pieces.length; i++) {
        const piece = pieces[i]!;
        if (piece.type === 'inline') {
          let need = piece.size;
          while (need > 0) {
            if (held.length === 0) {
              const r = await stubIt.next();
              if (r.done) throw fail(i, `the stub ends ${need} bytes short of this inline part`);
              held = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
              continue;
            }
            const take = Math.min(need, held.length);
            yield held.subarray(0, take);
            held = held.subarray(take);
            need -= take;
          }
          continue;
        }
        if (piece.encoded !== undefined) {
          const bytes = piece.encoded.bytes;
          if (bytes.length < piece.size) throw fail(i, `the blob content encodes to ${bytes.length} bytes, the part needs ${piece.size}`);
          yield bytes.subarray(0, piece.size);
          if (piece.sha256 !== null && piece.encoded.contentSha256 !== piece.sha256) throw fail(i, `the blob content hashes to ${piece.encoded.contentSha256}, not ${piece.sha256}`);
          result.contentSha256.set(i, piece.encoded.contentSha256);
          continue;
        }
        const hash = createHash('sha256');
        let contentBytes = 0;
        const captured: Buffer[] | null = piece.capture === true ? [] : null;
        const kept = piece.keepInto !== undefined && piece.keepInto.length === piece.contentSize ? piece.keepInto : null;
        const source = await piece.open();
        const hashed = (async function* (): AsyncGenerator<Buffer> {
          for await (const raw of source) {
            const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw as Uint8Array);
            hash.update(chunk);
            if (kept !== null && contentBytes + chunk.length <= kept.length) chunk.copy(kept, contentBytes);
            contentBytes += chunk.length;
            yield chunk;
          }
        })();
        const encoded = piece.encoding.type === 'raw' ? hashed : encodeBase64Lines(hashed, piece.encoding.lineLength, piece.encoding.crlf, { reuseOutput: options.transient === true });
        let got = 0;
        for await (const chunk of encoded) {
          if (captured !== null) captured.push(options.transient === true ? Buffer.from(chunk) : chunk); // a copy only where chunks are reused memory
          if (got >= piece.size) continue; // keep reading: the whole content is hashed
          const take = Math.min(chunk.length, piece.size - got);
          got += take;
          yield take === chunk.length ? chunk : chunk.subarray(0, take);
        }
        if (contentBytes !== piece.contentSize) throw fail(i, `the blob content has ${contentBytes} bytes, ${piece.contentSize} were expected`);
        if (got !== piece.size) throw fail(i, `the blob content encodes to ${got} bytes, the part needs ${piece.size}`);
        const sha256 = hash.digest('hex');
        if (piece.sha256 !== null && sha256 !== piece.sha256) throw fail(i, `the blob content hashes to ${sha256}, not ${piece.sha256}`);
        result.contentSha256.set(i, sha256);
        if (captured !== null) result.encoded.set(i, captured.length === 1 ? captured[0]! : Buffer.concat(captured));
        if (kept !== null) result.content.set(i, kept); // contentBytes === contentSize: checked above
      }
      if (held.length > 0) throw fail(pieces.length - 1, 'the stub is longer than its inline parts');
      const r = await stubIt.next();
      if (!r.done && (r.value as Buffer).length > 0) throw fail(pieces.length - 1, 'the stub is longer than its inline parts');
    } finally {
      await stubIt.return?.(undefined);
    }
  }
  return { stream: generate(), result };
}

/** Record pieces as assembler pieces, with `open` supplying each blob's content. */
export function recordPieces(parts: readonly PartRecord[], open: (sha256: string) => Promise<AsyncIterable<Buffer>>): AssemblyPiece[] {
  return parts.map((p) =>
    p.type === 'inline'
      ? { type: 'inline', size: p.size }
      : { type: 'blob', size: p.size, contentSize: p.contentSize, encoding: partEncoding(p), sha256: p.sha256, open: () => open(p.sha256) },
  );
}
