/**
 * Holds one message body while the reader verifies it: in memory up to MAX_MEMORY_SPOOL_BYTES, in a temp
 * file (os.tmpdir()) beyond. The reader hands out the bytes only after the hash matched, and disposes
 * the spool when the consumer moves on. The temp file loses its name as soon as it is open (only the
 * handle is kept), so a reader that is killed leaves no copy of the message behind.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fromSystemError } from '../core/errors.js';
import { MAX_MEMORY_SPOOL_BYTES } from './limits.js';

export class BodySpool {
  private chunks: Buffer[] = [];
  private size = 0;
  private file: FileHandle | null = null;
  private readonly streams: Readable[] = [];

  constructor(private readonly memoryLimit: number = MAX_MEMORY_SPOOL_BYTES) {}

  async write(chunk: Buffer): Promise<void> {
    if (this.file === null && this.size + chunk.length <= this.memoryLimit) {
      this.chunks.push(chunk);
      this.size += chunk.length;
      return;
    }
    try {
      if (this.file === null) {
        this.file = await openUnnamed();
        const held = Buffer.concat(this.chunks);
        this.chunks = [];
        if (held.length > 0) await this.file.write(held, 0, held.length, 0);
      }
      await this.file.write(chunk, 0, chunk.length, this.size);
    } catch (err) {
      throw fromSystemError(err, 'spool a message body to a temp file', { path: tmpdir() });
    }
    this.size += chunk.length;
  }

  /** The spooled bytes as one buffer if they are held in memory (else null); valid until dispose(). */
  bytes(): Buffer | null {
    if (this.file !== null) return null;
    if (this.chunks.length !== 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!;
  }

  /** A stream of the spooled bytes; valid until dispose(). */
  open(): Readable {
    const stream = this.file === null
      ? Readable.from(this.chunks.length === 0 ? [] : this.chunks, { objectMode: false })
      : createReadStream('', { fd: this.file, start: 0, end: this.size - 1, autoClose: false, highWaterMark: 1024 * 1024 });
    this.streams.push(stream);
    return stream;
  }

  async dispose(): Promise<void> {
    for (const s of this.streams) s.destroy();
    this.streams.length = 0;
    this.chunks = [];
    const file = this.file;
    this.file = null;
    await file?.close().catch(() => undefined);
  }
}

/** A temp file with no name: created in a private directory that is removed at once. */
async function openUnnamed(): Promise<FileHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'mailvault-body-'));
  try {
    return await open(join(dir, 'body.eml'), 'wx+', 0o600);
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
