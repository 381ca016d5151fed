/**
 * FileDigest: the archive digest (spec section 5.6) of an uncompressed dump read from a regular file,
 * computed by a worker thread that reads the same file through its own descriptor
 * (file-digest-worker.ts). The reading thread then hashes nothing but bodies and records: no
 * copies, no message per chunk.
 *
 * Why: a 10k-message restore spent 0.37 s of its 4.5 s main thread hashing the tar stream for the
 * digest (CPU profile), while the second core idled. Handing the stream's chunks to a worker was
 * tried before and gained nothing (copying and posting them cost as much as the hashing); a worker
 * that reads the file from the page cache costs the main thread nothing.
 *
 * Used only for an fs.ReadStream opened by path over a whole regular file of at least
 * FILE_DIGEST_MIN_BYTES that does not start with zstd's magic, on Linux: the worker's descriptor is
 * opened through /proc/self/fd/<the stream's descriptor>, so it reads the very file the stream reads
 * even if the path is renamed or replaced meanwhile. Everything else (stdin, pipes, zstd dumps, small
 * files, other systems) is hashed inline by the tar parser as before. The worker hashes up to
 * TAIL_BYTES before the end of the file, at most LEAD_BYTES ahead of the reader, then waits for the
 * cut: the trailer's member offset, known once the reader reaches it.
 *
 * A ReadStream made from an already open descriptor without `start` reads from that descriptor's
 * position, which this cannot see: it assumes the stream reads the file from byte 0, as the streams
 * mailvault opens by path do.
 */
import { once } from 'node:events';
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { ArchiveCorruptError, fromSystemError, UnexpectedError } from '../core/errors.js';
import { isZstdMagic } from './compression/index.js';
import type { FileDigestData, FileDigestReply, FileDigestRequest } from './file-digest-worker.js';

/** Below this the parser hashes inline: starting a worker costs about as much as hashing 64 MiB. */
export const FILE_DIGEST_MIN_BYTES = 64 * 1024 * 1024;
/** The worker hashes ahead to this many bytes before the end of the file (the trailer is in the last few KiB). */
const TAIL_BYTES = 8 * 1024 * 1024;
/** How far the worker may read ahead of the reader. */
const LEAD_BYTES = 256 * 1024 * 1024;
const MIB = 1024 * 1024;

export interface FileDigestTuning {
  /** Files below this are hashed inline (default FILE_DIGEST_MIN_BYTES). */
  readonly minBytes?: number;
  /** How far before the end of the file the worker stops to wait for the cut (default 8 MiB). */
  readonly tailBytes?: number;
  /** How far the worker may read ahead of the reader (default 256 MiB). */
  readonly leadBytes?: number;
}

export class FileDigest {
  private settled = false;
  private parsedMiB = 0;

  private constructor(
    private readonly path: string,
    private readonly fd: number,
    private readonly progressCell: Int32Array,
    private readonly worker: Worker,
    private readonly reply: Promise<FileDigestReply>,
  ) {}

  /**
   * A FileDigest for `input`, or null when the parser should hash inline (see the file comment).
   * Waits for the stream to open its file. `tuning` is for tests.
   */
  static async forInput(input: Readable, tuning: FileDigestTuning = {}): Promise<FileDigest | null> {
    if (process.platform !== 'linux' || !(input instanceof fs.ReadStream)) return null;
    const { start, end, flags } = input as unknown as { start?: number; end?: number; flags?: string };
    const path = input.path;
    if (typeof path !== 'string' || (start !== undefined && start !== 0) || (end !== undefined && end !== Infinity) || (flags !== undefined && flags !== 'r')) return null;
    try {
      if (input.pending) await once(input, 'ready');
    } catch {
      return null; // the stream reports its own error to the parser
    }
    const streamFd = (input as unknown as { fd?: unknown }).fd;
    if (typeof streamFd !== 'number' || input.bytesRead !== 0) return null;
    let fd: number | null = null;
    try {
      const st = fs.fstatSync(streamFd);
      const minBytes = tuning.minBytes ?? FILE_DIGEST_MIN_BYTES;
      if (!st.isFile() || st.size < minBytes) return null;
      const magic = Buffer.alloc(4);
      // Positional reads: the stream's own file position is not moved.
      if (fs.readSync(streamFd, magic, 0, 4, 0) < 4 || isZstdMagic(magic)) return null;
      fd = fs.openSync(`/proc/self/fd/${streamFd}`, 'r');
      const mine = fs.fstatSync(fd);
      if (mine.dev !== st.dev || mine.ino !== st.ino) throw new Error('not the same file');
      const progress = new SharedArrayBuffer(4);
      const data: FileDigestData = { fd, size: st.size, tail: tuning.tailBytes ?? TAIL_BYTES, lead: tuning.leadBytes ?? LEAD_BYTES, progress };
      const worker = new Worker(new URL('./file-digest-worker.js', import.meta.url), { workerData: data });
      const reply = new Promise<FileDigestReply>((resolve) => {
        worker.once('message', resolve);
        worker.once('error', (err: Error) => resolve({ kind: 'error', message: err.message }));
        worker.once('exit', (code) => resolve({ kind: 'error', message: `the digest worker exited with code ${code}` }));
      });
      const digest = new FileDigest(path, fd, new Int32Array(progress), worker, reply);
      fd = null; // the FileDigest owns it now
      return digest;
    } catch {
      return null; // hashed inline instead
    } finally {
      if (fd !== null) fs.closeSync(fd);
    }
  }

  /** The reader has parsed the stream up to `offset` (the worker stays within LEAD_BYTES of it). */
  progress(offset: number): void {
    const mib = Math.floor(offset / MIB);
    if (mib === this.parsedMiB || this.settled) return;
    this.parsedMiB = mib;
    Atomics.store(this.progressCell, 0, mib);
    Atomics.notify(this.progressCell, 0);
  }

  /** sha256 (hex) of the file's bytes 0 up to `offset`; `member` names the trailer in errors. */
  async digestBefore(offset: number, member: string): Promise<string> {
    Atomics.store(this.progressCell, 0, -1);
    Atomics.notify(this.progressCell, 0);
    this.worker.postMessage({ kind: 'cut', offset } satisfies FileDigestRequest);
    const reply = await this.reply;
    this.settle();
    if (reply.kind === 'error') {
      const cause = Object.assign(new Error(reply.message), reply.code ? { code: reply.code } : {});
      if (reply.code) throw fromSystemError(cause, 'read the dump to check its digest', { path: this.path });
      throw new UnexpectedError(`cannot check the dump's digest: ${reply.message}`, { path: this.path, hint: 'run the command again' });
    }
    if (reply.bytes !== offset) {
      throw new ArchiveCorruptError(`archive corrupt: member "${member}" at offset ${offset}: the file ${this.path} holds only ${reply.bytes} bytes before it: it changed while it was read`, {
        member,
        offset,
        hint: 'read the dump again once nothing writes to it',
      });
    }
    return reply.hex;
  }

  /** Stop the worker if it still runs (the reader stopped early) and close the descriptor. */
  async dispose(): Promise<void> {
    if (this.settled) return;
    Atomics.store(this.progressCell, 0, -1);
    Atomics.notify(this.progressCell, 0);
    await this.worker.terminate().catch(() => undefined);
    this.settle();
  }

  private settle(): void {
    if (this.settled) return;
    this.settled = true;
    try {
      fs.closeSync(this.fd);
    } catch {
      /* already closed */
    }
  }
}
