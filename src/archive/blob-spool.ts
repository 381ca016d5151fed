/**
 * BlobSpool: the blobs a one-pass reader has seen, kept on disk for the messages that come after them
 * (a blob precedes every message that references it, possibly by gigabytes). Each verified blob is a
 * file `<sha256>` in one private temp directory (mode 0700, files 0600), created on the first blob and
 * deleted, with everything in it, by dispose().
 *
 * Disk cost: the sum of the distinct blob sizes of the dump read so far, at most the size of the
 * dump's uncompressed stream. Memory: one set entry (~120 bytes) per blob.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fromSystemError } from '../core/errors.js';

export class BlobSpool {
  private dir: string | null = null;
  private readonly known = new Set<string>();
  private readonly streams = new Set<Readable>();
  bytes = 0;

  constructor(private readonly parent: string = tmpdir()) {}

  has(sha256: string): boolean {
    return this.known.has(sha256);
  }

  /** Start spooling a blob; commit() it once its hash is verified, or discard(). */
  async begin(): Promise<BlobWriter> {
    try {
      this.dir ??= await mkdtemp(join(this.parent, 'mailvault-blobs-'));
    } catch (err) {
      throw fromSystemError(err, 'create the blob spool directory', { path: this.parent });
    }
    const dir = this.dir;
    const temp = join(dir, `incoming-${this.known.size}`);
    let file: FileHandle;
    try {
      file = await open(temp, 'w', 0o600);
    } catch (err) {
      throw fromSystemError(err, 'create a blob spool file', { path: temp });
    }
    let size = 0;
    return {
      write: async (chunk: Buffer): Promise<void> => {
        try {
          await file.write(chunk, 0, chunk.length, size);
        } catch (err) {
          throw fromSystemError(err, 'write a blob to the spool directory', { path: temp });
        }
        size += chunk.length;
      },
      commit: async (sha256: string): Promise<void> => {
        await file.close();
        try {
          await rename(temp, join(dir, sha256));
        } catch (err) {
          throw fromSystemError(err, 'keep a blob in the spool directory', { path: temp });
        }
        this.known.add(sha256);
        this.bytes += size;
      },
      discard: async (): Promise<void> => {
        await file.close().catch(() => undefined);
        await rm(temp, { force: true }).catch(() => undefined);
      },
    };
  }

  /** The content of a spooled blob; valid until dispose(). */
  open(sha256: string): Readable {
    const stream = createReadStream(join(this.dir!, sha256), { highWaterMark: 256 * 1024 });
    this.streams.add(stream);
    stream.once('close', () => this.streams.delete(stream));
    return stream;
  }

  async dispose(): Promise<void> {
    for (const s of this.streams) s.destroy();
    this.streams.clear();
    this.known.clear();
    if (this.dir !== null) {
      const dir = this.dir;
      this.dir = null;
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }
}

export interface BlobWriter {
  write(chunk: Buffer): Promise<void>;
  commit(sha256: string): Promise<void>;
  discard(): Promise<void>;
}
