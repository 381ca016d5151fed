/**
 * Single-instance attachment storage (SIS) for dbox (reference section 3): parsing the `X` metadata,
 * and rebuilding the full message from the stub in the dbox file plus the external attachment files,
 * streamed (base64 is re-encoded chunk by chunk, never an attachment held whole).
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { base64LinesLength, encodeBase64Lines } from '../../../core/base64-lines.js';
import { IntegrityError, StorageCorruptError, StorageNotFoundError, fromSystemError } from '../../../core/errors.js';
import type { MessagePart } from '../../types.js';
import { compressionOf, MAGIC_BYTES } from '../../compression.js';

export interface ExtRef {
  /** Offset in the full (reassembled) message. */
  readonly start: number;
  /** Bytes the attachment occupies in the full message. */
  readonly size: number;
  /** Base64 characters per line, or null when stored raw. */
  readonly base64LineLength: number | null;
  readonly crlf: boolean;
  /** Path relative to mail_attachment_dir, as written in X (without the sdbox suffix). */
  readonly relPath: string;
}

/** Parse an `X` value: groups of 4 space-separated tokens `start size options relpath`. */
export function parseExtRefs(value: string, where: string): ExtRef[] {
  const tokens = value.split(' ').filter((t) => t !== '');
  const bad = (why: string): StorageCorruptError =>
    new StorageCorruptError(`bad external attachment reference (X metadata) in ${where}: ${why}`, {
      path: where,
      hint: 'the dbox metadata is damaged; check it with "doveadm dump" and "doveadm fetch text"',
    });
  if (tokens.length % 4 !== 0) throw bad(`${tokens.length} tokens is not a multiple of 4`);
  const refs: ExtRef[] = [];
  let prevEnd = 0;
  for (let i = 0; i < tokens.length; i += 4) {
    const [startS, sizeS, opts, relPath] = tokens.slice(i, i + 4) as [string, string, string, string];
    if (!/^\d+$/.test(startS) || !/^\d+$/.test(sizeS)) throw bad(`offset "${startS}" or size "${sizeS}" is not a number`);
    const start = Number(startS);
    const size = Number(sizeS);
    if (start < prevEnd) throw bad(`references overlap or are out of order at offset ${start}`);
    prevEnd = start + size;
    let base64LineLength: number | null = null;
    let crlf = false;
    if (opts !== '-') {
      const m = /^(C?)(?:B(\d+))?$/.exec(opts);
      if (!m || opts === '') throw bad(`unknown options "${opts}"`);
      crlf = m[1] === 'C';
      if (m[2] !== undefined) {
        base64LineLength = Number(m[2]);
        if (base64LineLength <= 0 || base64LineLength % 4 !== 0) throw bad(`base64 line length ${base64LineLength} is not a positive multiple of 4`);
      }
    }
    if (relPath.startsWith('/') || relPath.split('/').includes('..')) throw bad(`path "${relPath}" leaves the attachment directory`);
    refs.push({ start, size, base64LineLength, crlf, relPath });
  }
  return refs;
}

/** Everything needed to rebuild one SIS message. */
export interface SisMessage {
  readonly mailbox: string;
  readonly uid: number;
  /** dbox file holding the stub, and where the stub starts and how long it is. */
  readonly file: string;
  readonly stubOffset: number;
  readonly stubSize: number;
  /** Full message size (Z, else the stub size). */
  readonly fullSize: number;
  readonly refs: readonly ExtRef[];
  /** Candidate absolute paths of a reference's file, most likely first. */
  readonly attachmentPaths: (ref: ExtRef) => readonly string[];
  /**
   * The stub's bytes (stubSize of them), where the reader had the dbox file in memory (read whole with
   * its header): the stub is then taken from here instead of opening the file again for each range.
   * The caller's own copy.
   */
  readonly stub?: Buffer;
}

/** Stub bytes [from, from + length): from `msg.stub` (copied) when held, else read from the file. */
async function stubRange(msg: SisMessage, from: number, length: number): Promise<Buffer> {
  if (msg.stub !== undefined && from + length <= msg.stub.length) return msg.stub.subarray(from, from + length);
  return await readRange(msg.file, msg.stubOffset + from, length);
}

type Segment = { readonly kind: 'stub'; readonly from: number; readonly length: number } | { readonly kind: 'ref'; readonly ref: ExtRef };

/** The message as stub ranges and references, checked against the stub and full sizes. */
export function planSegments(msg: SisMessage): Segment[] {
  const segs: Segment[] = [];
  let stubPos = 0;
  let fullPos = 0;
  const bad = (why: string): StorageCorruptError =>
    new StorageCorruptError(`message UID ${msg.uid} in mailbox "${msg.mailbox}": external attachment references do not fit the stub in ${msg.file}: ${why}`, {
      mailbox: msg.mailbox,
      uid: msg.uid,
      path: msg.file,
      offset: msg.stubOffset,
      hint: 'the dbox metadata is damaged; check it with "doveadm dump"',
    });
  for (const ref of msg.refs) {
    const gap = ref.start - fullPos;
    if (gap < 0 || stubPos + gap > msg.stubSize) throw bad(`reference at ${ref.start} needs stub bytes ${stubPos}..${stubPos + gap} of ${msg.stubSize}`);
    if (gap > 0) segs.push({ kind: 'stub', from: stubPos, length: gap });
    stubPos += gap;
    fullPos += gap;
    segs.push({ kind: 'ref', ref });
    fullPos += ref.size;
  }
  const trailer = msg.fullSize - fullPos;
  if (trailer < 0 || stubPos + trailer > msg.stubSize) throw bad(`full size ${msg.fullSize} leaves ${trailer} trailer bytes, the stub has ${msg.stubSize - stubPos}`);
  if (trailer > 0) segs.push({ kind: 'stub', from: stubPos, length: trailer });
  return segs;
}

/** Bytes an attachment file of `contentSize` bytes gives in the message, encoded as `ref` says. */
export function encodedAttachmentSize(contentSize: number, ref: ExtRef): number {
  return ref.base64LineLength === null ? contentSize : base64LinesLength(contentSize, ref.base64LineLength, ref.crlf);
}

/**
 * The attachment file must give exactly the bytes X records, no fewer and no more: Dovecot reads it
 * through i_stream_create_sized() (istream_attachment_connector_add), which fails with "Stream is larger
 * than expected" or "smaller". Cutting a longer file to size would put wrong bytes into the backup.
 */
function sizeMismatch(msg: SisMessage, ref: ExtRef, file: string, contentSize: number, encodedSize: number): IntegrityError {
  const encoded = ref.base64LineLength === null ? '' : `, which encode to ${encodedSize} bytes of base64 (${ref.base64LineLength}-character lines)`;
  return new IntegrityError(
    `message UID ${msg.uid} in mailbox "${msg.mailbox}": external attachment ${file} has ${contentSize} bytes${encoded}, but the message needs exactly ${ref.size} (X metadata in ${msg.file})`,
    {
      mailbox: msg.mailbox,
      uid: msg.uid,
      path: file,
      hint: 'the attachment file was replaced or changed, or is stored compressed (mail_attachment_fs with the compress wrapper, which mailvault does not read); Dovecot cannot serve this message either. The message is skipped: check it with "doveadm fetch -u <user> text mailbox <mailbox> uid <uid>"',
    },
  );
}

/**
 * Refuse a compressed stub (zlib plugin with SIS): X offsets count bytes of the uncompressed message, so
 * slicing the compressed bytes by them gives garbage, or a misleading "references do not fit" error.
 */
export function assertStubNotCompressed(msg: SisMessage): void {
  const head = Buffer.alloc(Math.min(MAGIC_BYTES, msg.stubSize));
  let n = 0;
  if (msg.stub !== undefined && msg.stub.length >= head.length) n = msg.stub.copy(head, 0, 0, head.length);
  else if (head.length > 0) {
    const fd = openSync(msg.file, 'r');
    try {
      n = readSync(fd, head, 0, head.length, msg.stubOffset);
    } finally {
      closeSync(fd);
    }
  }
  const format = compressionOf(head.subarray(0, n));
  if (format === null) return;
  throw new StorageCorruptError(
    `message UID ${msg.uid} in mailbox "${msg.mailbox}": the body in ${msg.file} is ${format}-compressed (Dovecot zlib plugin, zlib_save) and has external attachments: mailvault does not read compressed dbox mail`,
    {
      mailbox: msg.mailbox,
      uid: msg.uid,
      path: msg.file,
      offset: msg.stubOffset,
      hint: 'the message is skipped; back this user up through Dovecot instead (mailvault backup --imap with a master user), which serves the mail uncompressed',
    },
  );
}

/**
 * Find the file of a reference; StorageNotFoundError naming mailbox, UID and path when none exists,
 * IntegrityError when its size does not give the reference's size.
 */
export async function resolveAttachment(msg: SisMessage, ref: ExtRef): Promise<{ path: string; size: number; key: string }> {
  const candidates = msg.attachmentPaths(ref);
  for (const p of candidates) {
    let st;
    try {
      // Synchronous: a stat through the thread pool costs a round trip per attachment (the backup
      // waits for each), far more than the stat itself.
      st = statSync(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fromSystemError(e, 'read an external attachment', { path: p, mailbox: msg.mailbox, uid: msg.uid });
      continue;
    }
    const encodedSize = encodedAttachmentSize(st.size, ref);
    if (encodedSize !== ref.size) throw sizeMismatch(msg, ref, p, st.size, encodedSize);
    // Dovecot names the file <content hash>-<GUID> and hard-links one per message: the hash part
    // and the inode together name the content, even where an inode is reused within a second.
    const hashPart = path.basename(p).split('-')[0]!;
    return { path: p, size: st.size, key: `${hashPart}:${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}` };
  }
  throw new StorageNotFoundError(`message UID ${msg.uid} in mailbox "${msg.mailbox}": external attachment ${candidates[0]} is missing`, {
    path: candidates[0]!,
    mailbox: msg.mailbox,
    uid: msg.uid,
    hint: 'check --attachment-dir (Dovecot mail_attachment_dir of this user); the message is skipped',
  });
}


/**
 * Yield exactly `size` bytes of `source`; the error from `short` if it is shorter. Without `long`, stops
 * reading once done; with it, reads on to the end and throws `long(bytes seen)` if there is more,
 * before yielding any of the chunk that overruns.
 */
export async function* takeExactly(source: AsyncIterable<Buffer>, size: number, short: (got: number) => Error, long?: (got: number) => Error): AsyncGenerator<Buffer> {
  let got = 0;
  if (size === 0 && long === undefined) return;
  for await (const chunk of source) {
    if (chunk.length === 0) continue;
    const need = size - got;
    if (chunk.length > need && long !== undefined) throw long(got + chunk.length);
    if (chunk.length >= need) {
      yield chunk.subarray(0, need);
      got = size;
      if (long === undefined) return;
      continue;
    }
    got += chunk.length;
    yield chunk;
  }
  if (got < size) throw short(got);
}

/**
 * Attachment files and stub ranges are read with synchronous reads of up to 256 KiB: through libuv's
 * thread pool, a 64 KiB stream read was a round trip that showed as idle time in profiles (a backup
 * of 10k sdbox messages with SIS spent a seventh of its time waiting on them).
 */
const READ_CHUNK_BYTES = 256 * 1024;

/**
 * `length` bytes of `file` from `start` (fewer if the file is shorter), in chunks; the file is open only
 * while iterated. With `scratch`, every chunk is read into it (a view of it, valid until the next chunk
 * is requested): a 256 KiB Buffer per read is external memory to V8, and 660 SIS messages of a 10k sdbox
 * backup made it collect garbage for 0.57 s of 4.1 s.
 */
export async function* fileChunks(file: string, start = 0, length = Number.MAX_SAFE_INTEGER, scratch?: Buffer): AsyncGenerator<Buffer> {
  if (length <= 0) return;
  yield* fdChunks(openSync(file, 'r'), start, length, scratch);
}

/** As fileChunks, from a file already open as `fd`, which is closed when the iteration ends. */
export async function* fdChunks(fd: number, start = 0, length = Number.MAX_SAFE_INTEGER, scratch?: Buffer): AsyncGenerator<Buffer> {
  try {
    let position = start;
    let left = length;
    const into = scratch !== undefined && scratch.length > 0 ? scratch : null;
    while (left > 0) {
      const want = Math.min(into?.length ?? READ_CHUNK_BYTES, left);
      const buf = into !== null ? into.subarray(0, want) : Buffer.allocUnsafe(want);
      const n = readSync(fd, buf, 0, want, position);
      if (n === 0) return;
      position += n;
      left -= n;
      yield n === want ? buf : buf.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}

function openRef(msg: SisMessage, file: { path: string }, ref: ExtRef): AsyncIterable<Buffer> {
  const raw = fileChunks(file.path);
  const content = ref.base64LineLength === null ? raw : encodeBase64Lines(raw, ref.base64LineLength, ref.crlf);
  const changed = (got: number, what: string): IntegrityError =>
    new IntegrityError(`message UID ${msg.uid} in mailbox "${msg.mailbox}": external attachment ${file.path} gives ${what} ${got} bytes while it is read, the message needs exactly ${ref.size}`, {
      mailbox: msg.mailbox,
      uid: msg.uid,
      path: file.path,
      hint: 'the attachment file changed while it was read; the message is skipped: run the backup again',
    });
  // The size was checked when the file was resolved; this catches a file that changes after that.
  return takeExactly(content, ref.size, (got) => changed(got, 'only'), (got) => changed(got, 'at least'));
}

/**
 * Open the reassembled message. Resolves every attachment file first, so a missing one fails here
 * (StorageNotFoundError) rather than mid-stream.
 */
export async function openSisMessage(msg: SisMessage): Promise<Readable> {
  assertStubNotCompressed(msg);
  const segs = planSegments(msg);
  const files = new Map<ExtRef, { path: string; size: number }>();
  for (const s of segs) if (s.kind === 'ref') files.set(s.ref, await resolveAttachment(msg, s.ref));
  const stub = msg.stub !== undefined && msg.stub.length >= msg.stubSize ? msg.stub : undefined;
  async function* generate(): AsyncGenerator<Buffer> {
    for (const s of segs) {
      if (s.kind === 'stub') {
        if (stub !== undefined) yield stub.subarray(s.from, s.from + s.length);
        else yield* takeExactly(fileChunks(msg.file, msg.stubOffset + s.from, s.length), s.length, (got) => truncated(msg, got, s.length));
      } else {
        yield* openRef(msg, files.get(s.ref)!, s.ref);
      }
    }
  }
  return Readable.from(generate(), { objectMode: false });
}

function truncated(msg: SisMessage, got: number, want: number): IntegrityError {
  return new IntegrityError(`message UID ${msg.uid} in mailbox "${msg.mailbox}": ${msg.file} gave ${got} of ${want} stub bytes`, { mailbox: msg.mailbox, uid: msg.uid, path: msg.file, hint: 'the dbox file changed while it was read; run the backup again' });
}

async function readRange(file: string, start: number, length: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  if (length === 0) return Buffer.alloc(0);
  for await (const c of fileChunks(file, start, length)) chunks.push(c);
  return Buffer.concat(chunks);
}

/** The message as inline stub pieces and attachment references (MessagePart), for storing each attachment once. */
export async function sisMessageParts(msg: SisMessage): Promise<MessagePart[]> {
  const parts: MessagePart[] = [];
  assertStubNotCompressed(msg);
  for (const s of planSegments(msg)) {
    if (s.kind === 'stub') {
      const data = await stubRange(msg, s.from, s.length);
      if (data.length !== s.length) throw truncated(msg, data.length, s.length);
      parts.push({ kind: 'inline', data });
    } else {
      const ref = s.ref;
      const file = await resolveAttachment(msg, ref);
      parts.push({
        kind: 'attachment',
        size: ref.size,
        encoding: ref.base64LineLength === null ? { type: 'raw' } : { type: 'base64', lineLength: ref.base64LineLength, crlf: ref.crlf },
        contentSize: file.size,
        contentKey: file.key,
        open: async () => Readable.from(fileChunks(file.path), { objectMode: false }),
        openChunks: (scratch) => fileChunks(file.path, 0, Number.MAX_SAFE_INTEGER, scratch),
      });
    }
  }
  return parts;
}

/** Join a relative X path to the attachment directory. */
export function attachmentPath(attachmentDir: string, relPath: string, suffix = ''): string {
  return path.join(attachmentDir, relPath + suffix);
}
