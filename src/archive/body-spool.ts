/**
 * Holds one message body while the reader verifies it: in memory up to MAX_MEMORY_SPOOL_BYTES, in a temp
 * file (os.tmpdir()) beyond. The reader hands out the bytes only after the hash matched, and disposes
 * the spool when the consumer moves on.
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
  private dir: string | null = null;
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
        this.dir = await mkdtemp(join(tmpdir(), 'mailvault-body-'));
        this.file = await open(join(this.dir, 'body.eml'), 'w', 0o600);
        const held = Buffer.concat(this.chunks);
        this.chunks = [];
        if (held.length > 0) await this.file.write(held, 0, held.length, 0);
      }
      await this.file.write(chunk, 0, chunk.length, this.size);
    } catch (err) {
      throw fromSystemError(err, 'spool a message body to a temp file', { path: this.dir ?? tmpdir() });
    }
    this.size += chunk.length;
  }

  /** Call after the last write. */
  async seal(): Promise<void> {
    if (this.file !== null) {
      const file = this.file;
      this.file = null;
      await file.close();
    }
  }

  /** A stream of the spooled bytes; valid until dispose(). */
  open(): Readable {
    const stream = this.dir === null ? Readable.from(this.chunks.length === 0 ? [] : this.chunks, { objectMode: false }) : createReadStream(join(this.dir, 'body.eml'));
    this.streams.push(stream);
    return stream;
  }

  async dispose(): Promise<void> {
    for (const s of this.streams) s.destroy();
    this.streams.length = 0;
    this.chunks = [];
    await this.file?.close().catch(() => undefined);
    this.file = null;
    if (this.dir !== null) {
      const dir = this.dir;
      this.dir = null;
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }
}
