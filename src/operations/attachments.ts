/**
 * Attachments stored once per dump (issue 4), on the operations side:
 * - writerParts: a SIS message (storage MessagePart[]) as the writer's parts;
 * - splitMessage: for sources without SIS (Maildir, IMAP; `--dedup-attachments[=MIN_SIZE]`), find the
 *   base64 leaf parts of a message that are worth storing once, decode them into blobs, and check that
 *   re-encoding reproduces the original bytes exactly before offering them (a part that does not is
 *   left inline). The message itself is never altered: the writer also checks that the parts rebuild
 *   the message's sha256, and the caller stores it whole otherwise.
 *
 * Memory is bounded: the message is spooled to a temp file and scanned line by line (a line is never
 * held whole; header blocks up to MAX_HEADER_BLOCK), blobs are decoded to temp files; only the inline
 * pieces (the stub) are held, and a message whose stub would exceed MAX_STUB_BYTES is stored whole.
 * Disk: one message plus its decoded attachments, deleted by dispose().
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { WriterPart } from '../archive/writer.js';
import { encodedLength } from '../archive/parts.js';
import { encodeBase64Lines } from '../core/base64-lines.js';
import { IntegrityError, fromSystemError, isMailvaultError } from '../core/errors.js';
import type { MessageInfo, MessagePart } from '../storage/types.js';
import { MAX_HEADER_BYTES, parseSummary, type EnvelopeSummary } from './message-summary.js';

/** Dovecot's mail_attachment_min_size default. */
export const DEFAULT_DEDUP_MIN_SIZE = 128 * 1024;
/** A header block (of the message or a MIME part) longer than this stops the scan: the message is stored whole. */
export const MAX_HEADER_BLOCK = 64 * 1024;
/** Stubs (the inline bytes) above this are not built: the message is stored whole. */
export const MAX_STUB_BYTES = 16 * 1024 * 1024;

export interface SplitOptions {
  /** Smallest base64 text (bytes in the message) worth storing as a blob. */
  readonly minSize: number;
  /** Where temp files go (default os.tmpdir()). */
  readonly tempDir?: string;
}

function summaryOf(inline: readonly Buffer[]): EnvelopeSummary {
  const head: Buffer[] = [];
  let n = 0;
  for (const b of inline) {
    if (n >= MAX_HEADER_BYTES) break;
    head.push(b);
    n += b.length;
  }
  return parseSummary(Buffer.concat(head).subarray(0, MAX_HEADER_BYTES));
}

/** A SIS message's parts as the writer takes them, and its envelope summary (headers are always inline). */
export function writerParts(parts: readonly MessagePart[]): { parts: WriterPart[]; summary: EnvelopeSummary } {
  const out: WriterPart[] = [];
  const leading: Buffer[] = [];
  let seenAttachment = false;
  for (const p of parts) {
    if (p.kind === 'inline') {
      out.push({ kind: 'inline', data: p.data });
      if (!seenAttachment) leading.push(p.data);
    } else {
      seenAttachment = true;
      const openChunks = p.openChunks;
      out.push({
        kind: 'attachment',
        size: p.size,
        encoding: p.encoding,
        contentSize: p.contentSize,
        ...(p.contentKey !== undefined ? { contentKey: p.contentKey } : {}),
        open: () => p.open(),
        ...(openChunks !== undefined ? { openChunks: (scratch: Buffer) => openChunks.call(p, scratch) } : {}),
      });
    }
  }
  return { parts: out, summary: summaryOf(leading) };
}

// ---- MIME scan ----

interface Line {
  /** Offset of the first byte. */
  readonly offset: number;
  /** Bytes without the line end. */
  readonly length: number;
  readonly eol: 'lf' | 'crlf' | 'none';
  /** The first bytes of the line (up to PREFIX). */
  readonly prefix: Buffer;
  /** Only base64 alphabet characters, with '=' only at the end (at most two). */
  readonly base64: boolean;
  readonly padded: boolean;
}

const PREFIX = 1024;

function isB64(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2f;
}

/** Split a byte stream into lines with offsets, never holding more than PREFIX bytes of a line. */
async function* lines(source: AsyncIterable<Buffer>): AsyncGenerator<Line> {
  let offset = 0;
  let start = 0;
  let length = 0;
  let prefix: Buffer[] = [];
  let prefixLen = 0;
  let bad = 0;
  let eqs = 0;
  let lastCR = false;
  const finish = (eol: 'lf' | 'none'): Line => {
    const crlf = eol === 'lf' && lastCR;
    const len = crlf ? length - 1 : length;
    const effectiveBad = crlf ? bad - 1 : bad; // the CR of a CRLF was counted as a non-base64 byte
    return { offset: start, length: len, eol: crlf ? 'crlf' : eol, prefix: Buffer.concat(prefix).subarray(0, Math.min(len, PREFIX)), base64: effectiveBad === 0 && eqs <= 2, padded: eqs > 0 };
  };
  for await (const raw of source) {
    const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw as Uint8Array);
    let i = 0;
    while (i < chunk.length) {
      const nl = chunk.indexOf(0x0a, i);
      const end = nl === -1 ? chunk.length : nl;
      for (let j = i; j < end; j++) {
        const c = chunk[j]!;
        if (c === 0x3d) eqs++;
        else if (!isB64(c) || eqs > 0) bad++;
        lastCR = c === 0x0d;
      }
      if (prefixLen < PREFIX + 2 && end > i) {
        const take = chunk.subarray(i, Math.min(end, i + PREFIX + 2 - prefixLen));
        prefix.push(take);
        prefixLen += take.length;
      }
      length += end - i;
      offset += end - i;
      if (nl === -1) break;
      yield finish('lf');
      offset += 1;
      start = offset;
      length = 0;
      prefix = [];
      prefixLen = 0;
      bad = 0;
      eqs = 0;
      lastCR = false;
      i = nl + 1;
    }
  }
  if (length > 0) {
    lastCR = false;
    yield finish('none');
  }
}

interface HeaderInfo {
  readonly type: string;
  readonly boundary: string | null;
  readonly cte: string;
}

function parseHeaderBlock(block: Buffer): HeaderInfo {
  const text = block.toString('latin1').replace(/\r?\n[ \t]+/g, ' ');
  let type = 'text/plain';
  let boundary: string | null = null;
  let cte = '7bit';
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-type') {
      type = (value.split(';')[0] ?? '').trim().toLowerCase();
      const m = /;\s*boundary\s*=\s*(?:"([^"]*)"|([^;\s]+))/i.exec(value);
      boundary = m ? (m[1] ?? m[2] ?? null) : null;
    } else if (name === 'content-transfer-encoding') {
      cte = value.toLowerCase();
    }
  }
  return { type, boundary, cte };
}

/** A base64 text range worth storing once. `end` excludes the last line's line end. */
export interface Candidate {
  readonly start: number;
  readonly end: number;
  readonly lineLength: number;
  readonly crlf: boolean;
}

/**
 * Find base64 leaf parts (not text/*, not multipart or message/*) whose base64 text is "regular" (all
 * lines of one length and one line end, the last shorter or equal, padding only at the very end, only
 * blank lines after it) and at least `minSize` bytes. Returns [] when the structure is beyond the
 * scanner's bounds (a header block over MAX_HEADER_BLOCK).
 */
export async function findCandidates(source: AsyncIterable<Buffer>, minSize: number): Promise<Candidate[]> {
  const found: Candidate[] = [];
  const boundaries: string[] = [];
  let mode: 'header' | 'body' = 'header';
  let header: Buffer[] = [];
  let headerBytes = 0;
  type Cand = { start: number; end: number; lineLength: number; eol: 'lf' | 'crlf' | null; lines: number; done: boolean; ok: boolean };
  let cand: Cand | null = null;
  const close = (): void => {
    if (cand && cand.ok && cand.lines > 0 && cand.end - cand.start >= minSize) {
      found.push({ start: cand.start, end: cand.end, lineLength: cand.lineLength, crlf: cand.eol === 'crlf' });
    }
    cand = null;
  };
  const delimiter = (line: Line): { index: number; final: boolean } | null => {
    if (line.length < 3 || line.prefix[0] !== 0x2d || line.prefix[1] !== 0x2d || line.length > PREFIX) return null;
    const text = line.prefix.toString('latin1');
    for (let i = boundaries.length - 1; i >= 0; i--) {
      const b = boundaries[i]!;
      if (!text.startsWith(`--${b}`)) continue;
      const rest = text.slice(2 + b.length);
      if (/^[ \t]*$/.test(rest)) return { index: i, final: false };
      if (/^--[ \t]*$/.test(rest)) return { index: i, final: true };
    }
    return null;
  };
  for await (const line of lines(source)) {
    if (mode === 'header') {
      if (line.length === 0) {
        const info = parseHeaderBlock(Buffer.concat(header));
        header = [];
        headerBytes = 0;
        mode = 'body';
        const bodyStart = line.offset + (line.eol === 'crlf' ? 2 : line.eol === 'lf' ? 1 : 0);
        if (info.type.startsWith('multipart/') && info.boundary !== null && info.boundary.length > 0 && info.boundary.length <= 200) boundaries.push(info.boundary);
        else if (info.cte === 'base64' && !info.type.startsWith('text/') && !info.type.startsWith('message/') && !info.type.startsWith('multipart/')) {
          cand = { start: bodyStart, end: bodyStart, lineLength: 0, eol: null, lines: 0, done: false, ok: true };
        }
        continue;
      }
      headerBytes += line.length + 2;
      if (headerBytes > MAX_HEADER_BLOCK || line.length > PREFIX) return found.length > 0 ? found : [];
      header.push(line.prefix, Buffer.from('\n'));
      continue;
    }
    const d = boundaries.length > 0 ? delimiter(line) : null;
    if (d !== null) {
      close();
      if (d.final) {
        boundaries.length = d.index;
        mode = 'body';
      } else {
        boundaries.length = d.index + 1;
        mode = 'header';
      }
      continue;
    }
    const c = cand as Cand | null;
    if (c === null || !c.ok) continue;
    if (c.done) {
      if (line.length !== 0) c.ok = false;
      continue;
    }
    if (line.length === 0) {
      c.done = true;
      continue;
    }
    if (!line.base64) {
      c.ok = false;
      continue;
    }
    const eol = line.eol === 'none' ? c.eol : line.eol;
    if (c.lines === 0) {
      c.lineLength = line.length;
      c.eol = eol;
    } else if (eol !== c.eol || line.length > c.lineLength) {
      c.ok = false;
      continue;
    }
    if (line.length < c.lineLength || line.padded) c.done = true;
    c.lines++;
    c.end = line.offset + line.length;
  }
  close();
  return found;
}

// ---- splitting ----

export interface SplitMessage {
  readonly parts: WriterPart[];
  /** sha256 of the message as read: the parts must rebuild exactly this. */
  readonly sha256: string;
  readonly summary: EnvelopeSummary;
  /** Delete the temp files (after the parts were written). */
  dispose(): Promise<void>;
}

async function* fileRange(path: string, start: number, end: number): AsyncGenerator<Buffer> {
  if (end <= start) return;
  for await (const c of createReadStream(path, { start, end: end - 1, highWaterMark: 256 * 1024 })) yield c as Buffer;
}

async function readRange(path: string, start: number, end: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of fileRange(path, start, end)) parts.push(c);
  return Buffer.concat(parts);
}

/** Decode the base64 text of [start, end) into `out`; returns the content size. */
async function decodeRange(path: string, start: number, end: number, out: FileHandle): Promise<number> {
  let carry = '';
  let size = 0;
  const write = async (b: Buffer): Promise<void> => {
    if (b.length === 0) return;
    await out.write(b, 0, b.length, size);
    size += b.length;
  };
  for await (const chunk of fileRange(path, start, end)) {
    const text = carry + chunk.toString('latin1').replace(/[\r\n]/g, '');
    const whole = text.length - (text.length % 4);
    carry = text.slice(whole);
    await write(Buffer.from(text.slice(0, whole), 'base64'));
  }
  await write(Buffer.from(carry, 'base64'));
  return size;
}

/** Does encoding `blob` as `candidate` give exactly the bytes of [start, end)? Streamed compare. */
async function reencodesExactly(messagePath: string, blobPath: string, c: Candidate): Promise<boolean> {
  const original = fileRange(messagePath, c.start, c.end)[Symbol.asyncIterator]();
  let held: Buffer = Buffer.alloc(0);
  let total = 0;
  try {
    for await (const enc of encodeBase64Lines(fileRange(blobPath, 0, Number.MAX_SAFE_INTEGER), c.lineLength, c.crlf)) {
      let pos = 0;
      while (pos < enc.length) {
        if (held.length === 0) {
          const r = await original.next();
          if (r.done) return false;
          held = r.value;
        }
        const n = Math.min(held.length, enc.length - pos);
        if (!held.subarray(0, n).equals(enc.subarray(pos, pos + n))) return false;
        held = held.subarray(n);
        pos += n;
        total += n;
      }
    }
    if (held.length > 0) return false;
    return (await original.next()).done === true && total === c.end - c.start;
  } finally {
    await original.return?.(undefined);
  }
}

/**
 * Split one message for --dedup-attachments: null when it has nothing worth splitting (or is too odd to
 * split safely); the caller then stores it whole. Errors opening or reading the message are thrown
 * (the caller skips the message); a message that reads to another size is an IntegrityError.
 */
export async function splitMessage(openMessage: () => Promise<Readable>, message: MessageInfo, options: SplitOptions): Promise<SplitMessage | null> {
  if (message.size < options.minSize) return null;
  const parent = options.tempDir ?? tmpdir();
  let dir: string;
  try {
    dir = await mkdtemp(join(parent, 'mailvault-split-'));
  } catch (err) {
    throw fromSystemError(err, 'create a temp directory to split attachments', { path: parent });
  }
  const dispose = (): Promise<void> => rm(dir, { recursive: true, force: true }).catch(() => undefined);
  try {
    const messagePath = join(dir, 'message.eml');
    const hash = createHash('sha256');
    let size = 0;
    const file = await open(messagePath, 'w', 0o600);
    try {
      const body = await openMessage();
      for await (const raw of body) {
        const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw as Uint8Array);
        hash.update(chunk);
        await file.write(chunk, 0, chunk.length, size);
        size += chunk.length;
      }
    } finally {
      await file.close();
    }
    if (size !== message.size) {
      throw new IntegrityError(`message UID ${message.uid} is ${size} bytes, ${message.size} were listed`, { uid: message.uid, hint: 'the message changed while it was read; run the backup again' });
    }
    const sha256 = hash.digest('hex');
    const candidates = await findCandidates(fileRange(messagePath, 0, size), options.minSize);
    const parts: WriterPart[] = [];
    const inline: Buffer[] = [];
    let inlineBytes = 0;
    let pos = 0;
    let n = 0;
    for (const c of candidates) {
      const blobPath = join(dir, `blob-${n++}`);
      const out = await open(blobPath, 'w', 0o600);
      let contentSize: number;
      try {
        contentSize = await decodeRange(messagePath, c.start, c.end, out);
      } finally {
        await out.close();
      }
      const encoding = { type: 'base64' as const, lineLength: c.lineLength, crlf: c.crlf };
      if (encodedLength(contentSize, encoding) !== c.end - c.start || !(await reencodesExactly(messagePath, blobPath, c))) continue;
      if (c.start > pos) {
        const data = await readRange(messagePath, pos, c.start);
        inline.push(data);
        inlineBytes += data.length;
        parts.push({ kind: 'inline', data });
      }
      parts.push({ kind: 'attachment', size: c.end - c.start, encoding, contentSize, open: async () => createReadStream(blobPath, { highWaterMark: 256 * 1024 }) });
      pos = c.end;
      if (inlineBytes > MAX_STUB_BYTES) break;
    }
    if (!parts.some((p) => p.kind === 'attachment') || inlineBytes + (size - pos) > MAX_STUB_BYTES) {
      await dispose();
      return null;
    }
    if (pos < size) {
      const data = await readRange(messagePath, pos, size);
      inline.push(data);
      parts.push({ kind: 'inline', data });
    }
    return { parts, sha256, summary: summaryOf(inline.slice(0, 1)), dispose };
  } catch (err) {
    await dispose();
    if (isMailvaultError(err)) throw err;
    throw fromSystemError(err, 'split the attachments of a message', { uid: message.uid, path: dir });
  }
}
