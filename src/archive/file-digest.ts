/**
 * FileDigest: the archive digest (spec section 5.6) of an uncompressed dump read from a regular file,
 * computed by a worker thread that reads the file itself (file-digest-worker.ts). The reading thread
 * then hashes nothing but bodies and records: no copies, no message per chunk.
 *
 * Why: a 10k-message restore spent 0.37 s of its 4.5 s main thread hashing the tar stream for the
 * digest (CPU profile), while the second core idled. Handing the stream's chunks to a worker was
 * tried before and gained nothing (copying and posting them cost as much as the hashing); a worker
 * that reads the file from the page cache costs the main thread nothing.
 *
 * Used only for an fs.ReadStream over a whole regular file of at least FILE_DIGEST_MIN_BYTES that
 * does not start with zstd's magic; everything else (stdin, pipes, zstd dumps, small files) is
 * hashed inline by the tar parser as before. The worker hashes up to TAIL_BYTES before the end of the
 * file, then waits for the cut: the trailer's member offset, known once the reader reaches it.
 */
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { ArchiveCorruptError, UnexpectedError } from '../core/errors.js';
import { isZstdMagic } from './compression/index.js';
import type { FileDigestData, FileDigestReply, FileDigestRequest } from './file-digest-worker.js';

/** Below this the parser hashes inline: starting a worker costs about as much as hashing 64 MiB. */
export const FILE_DIGEST_MIN_BYTES = 64 * 1024 * 1024;
/** The worker hashes ahead to this many bytes before the end of the file (the trailer is in the last few KiB). */
const TAIL_BYTES = 8 * 1024 * 1024;

export interface FileDigestTuning {
  /** Files below this are hashed inline (default FILE_DIGEST_MIN_BYTES). */
  readonly minBytes?: number;
  /** How far before the end of the file the worker stops to wait for the cut (default 8 MiB). */
  readonly tailBytes?: number;
}

export class FileDigest {
  private settled = false;

  private constructor(
    private readonly path: string,
    private readonly worker: Worker,
    private readonly reply: Promise<FileDigestReply>,
  ) {}

  /**
   * A FileDigest for `input`, or null when the parser should hash inline (see the file comment).
   * `tuning` is for tests: a lower size threshold, another look-ahead margin.
   */
  static forInput(input: Readable, tuning: FileDigestTuning = {}): FileDigest | null {
    const minBytes = tuning.minBytes ?? FILE_DIGEST_MIN_BYTES;
    if (!(input instanceof fs.ReadStream)) return null;
    const { start, end } = input as unknown as { start?: number; end?: number };
    const path = input.path;
    if (typeof path !== 'string' || (start !== undefined && start !== 0) || (end !== undefined && end !== Infinity)) return null;
    let data: FileDigestData;
    let fd: number | null = null;
    try {
      fd = fs.openSync(path, 'r');
      const st = fs.fstatSync(fd);
      if (!st.isFile() || st.size < minBytes) return null;
      const magic = Buffer.alloc(4);
      if (fs.readSync(fd, magic, 0, 4, 0) < 4 || isZstdMagic(magic)) return null;
      data = { path, dev: st.dev, ino: st.ino, tail: tuning.tailBytes ?? TAIL_BYTES };
    } catch {
      return null; // the stream itself reports what is wrong with the file
    } finally {
      if (fd !== null) fs.closeSync(fd);
    }
    const worker = new Worker(new URL('./file-digest-worker.js', import.meta.url), { workerData: data });
    const reply = new Promise<FileDigestReply>((resolve) => {
      worker.once('message', resolve);
      worker.once('error', (err: Error) => resolve({ kind: 'error', message: err.message }));
      worker.once('exit', (code) => resolve({ kind: 'error', message: `the digest worker exited with code ${code}` }));
    });
    return new FileDigest(path, worker, reply);
  }

  /** sha256 (hex) of the file's bytes 0 up to `offset`; `member` names the trailer in errors. */
  async digestBefore(offset: number, member: string): Promise<string> {
    this.worker.postMessage({ kind: 'cut', offset } satisfies FileDigestRequest);
    const reply = await this.reply;
    this.settled = true;
    if (reply.kind === 'error') {
      throw new UnexpectedError(`cannot check the dump's digest: ${reply.message}`, { path: this.path, hint: 'run the command again; if it fails the same way, check the file system' });
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

  /** Stop the worker (it may still be reading ahead when the reader stops early). */
  async dispose(): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    await this.worker.terminate().catch(() => undefined);
  }
}
