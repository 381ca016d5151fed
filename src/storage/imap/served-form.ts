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

/** Streams bytes through the served-form rule, in any chunking. */
export class ServedFormHasher {
  private readonly hash = createHash('sha256');
  private lastWasCr = false;
  /** RFC822.SIZE of the served form (NULs counted). */
  servedSize = 0;

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
    for (const part of out) if (part.length > 0) this.hash.update(part);
  }

  /** sha256 (hex) of the served form. */
  digest(): string {
    return this.hash.digest('hex');
  }
}

const CRLF = Buffer.from('\r\n');

/** Hashes a whole stream in served form. */
export async function hashServedForm(stream: Readable): Promise<{ sha256: string; servedSize: number }> {
  const h = new ServedFormHasher();
  for await (const chunk of stream) h.update(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return { sha256: h.digest(), servedSize: h.servedSize };
}
