/**
 * The "served form" of a message: the bytes an IMAP server hands out for it, as far as mailvault can
 * predict them from the stored bytes. Used to decide whether a message is already in a mailbox
 * (countExisting) when the dump holds the stored form and the server the served form.
 *
 * Rule (applied to both sides before comparing): every LF not preceded by CR becomes CRLF (Dovecot
 * stores LF and serves CRLF; a message stored with CRLF is served unchanged). `servedSize` is the
 * length after that, which is what RFC822.SIZE reports. (NUL bytes are kept: the reader recovers
 * them, see reader.ts restoreNuls.)
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';

const CR = 0x0d;
const LF = 0x0a;

const HEADER_END = [CR, LF, CR, LF];

/**
 * Streams bytes through the served-form rule, in any chunking. Also hashes the header section of the
 * served form (up to and including the first empty line; the whole message when it has none).
 */
export class ServedFormHasher {
  private readonly hash = createHash('sha256');
  private readonly headerHash = createHash('sha256');
  private headerDone = false;
  /** How many bytes of HEADER_END the served form ended with so far. */
  private matched = 0;
  private lastWasCr = false;
  /** RFC822.SIZE of the served form (NULs counted). */
  servedSize = 0;

  private header(part: Buffer): void {
    if (this.headerDone) return;
    for (let i = 0; i < part.length; i++) {
      const b = part[i]!;
      if (b === HEADER_END[this.matched]) {
        if (++this.matched === HEADER_END.length) {
          this.headerHash.update(part.subarray(0, i + 1));
          this.headerDone = true;
          return;
        }
      } else {
        this.matched = b === CR ? 1 : 0;
      }
    }
    this.headerHash.update(part);
  }

  update(chunk: Buffer): void {
    let start = 0;
    const out: Buffer[] = [];
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (b === LF && !this.lastWasCr) {
        out.push(chunk.subarray(start, i), CRLF);
        this.servedSize += 2;
        start = i + 1;
      } else {
        this.servedSize += 1;
      }
      this.lastWasCr = b === CR;
    }
    out.push(chunk.subarray(start));
    for (const part of out) {
      if (part.length === 0) continue;
      this.hash.update(part);
      this.header(part);
    }
  }

  /** sha256 (hex) of the served form. */
  digest(): string {
    return this.hash.digest('hex');
  }

  /** sha256 (hex) of the served form's header section. */
  headerDigest(): string {
    return this.headerHash.digest('hex');
  }
}

const CRLF = Buffer.from('\r\n');

/** Hashes a whole stream in served form. */
export async function hashServedForm(stream: Readable): Promise<{ sha256: string; headerSha256: string; servedSize: number }> {
  const h = new ServedFormHasher();
  for await (const chunk of stream) h.update(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return { sha256: h.digest(), headerSha256: h.headerDigest(), servedSize: h.servedSize };
}

/** The served form of a whole message in memory. */
export function toServedForm(stored: Buffer): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = stored.indexOf(LF); i >= 0; i = stored.indexOf(LF, i + 1)) {
    if (i > 0 && stored[i - 1] === CR) continue;
    parts.push(stored.subarray(start, i), CRLF);
    start = i + 1;
  }
  if (start === 0) return stored;
  parts.push(stored.subarray(start));
  return Buffer.concat(parts);
}

const BASE64_LINE = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Whether two messages in served form (same length) differ only where a server that stores base64
 * attachments decoded and serves them encoded again would make them differ: every line that differs is
 * a base64 line of the same length in both, and both decode to the same bytes (Dovecot's single-instance
 * attachment storage re-encodes the last characters of a body whose padding bits are not zero).
 */
export function sameUpToBase64Encoding(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) return false;
  let i = 0;
  while (i < a.length) {
    if (a[i] === b[i]) {
      i++;
      continue;
    }
    const lineStart = i === 0 ? 0 : a.lastIndexOf(LF, i - 1) + 1;
    const endA = a.indexOf(CR, i);
    const endB = b.indexOf(CR, i);
    const lineEnd = endA < 0 ? a.length : endA;
    if (endA !== endB) return false;
    const la = a.toString('latin1', lineStart, lineEnd);
    const lb = b.toString('latin1', lineStart, lineEnd);
    if (la.length % 4 !== 0 || !BASE64_LINE.test(la) || !BASE64_LINE.test(lb)) return false;
    if (!Buffer.from(la, 'base64').equals(Buffer.from(lb, 'base64'))) return false;
    i = lineEnd;
  }
  return true;
}
