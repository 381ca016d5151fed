/**
 * The Maildir read-ahead: whole message files read, timestamped and hashed in a worker thread while
 * the caller (a backup) frames and writes the previous ones, so that a second core does the per-file
 * system calls and the sha256 of every body. One worker per process, started at the first read.
 *
 * A worker takes about 0.1 s to boot; until it runs, batches are read here, on the calling thread, the
 * same way (read-files.ts), so a short run never waits for it. If the worker fails, its pending batches
 * reject (the reader then reads those messages the ordinary way) and later batches are read here.
 *
 * Buffers go back and forth by transfer, never copied: a batch's buffer is handed back with release()
 * once its bytes are no longer used, and goes to the worker with the next request.
 */
import { Worker } from 'node:worker_threads';
import { readFiles, type ReadBatch, type ReadRequest } from './read-files.js';
import type { ReadAheadReply, ReadAheadRequest } from './read-ahead-worker.js';

/** Buffers kept for reuse; the reader keeps at most a few batches in flight. */
const SPARE_BUFFERS = 4;

export class ReadAheadPool {
  /** `workerUrl`: the worker's module; only tests give another. */
  constructor(private readonly workerUrl: URL = new URL('./read-ahead-worker.js', import.meta.url)) {}

  private worker: Worker | null = null;
  private online = false;
  private broken = false;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (batch: ReadBatch) => void; reject: (err: Error) => void }>();
  private readonly spare: ArrayBuffer[] = [];
  /** Batches read by the worker and on the calling thread so far (tests, diagnostics). */
  readonly batches = { worker: 0, here: 0 };

  /** Read the files (see readFiles); rejects only if the worker failed. */
  read(files: ReadRequest): Promise<ReadBatch> {
    const spare = this.spare.pop() ?? null;
    const worker = this.start();
    if (worker === null || !this.online) {
      this.batches.here++;
      try {
        return Promise.resolve(readFiles(files, spare));
      } catch (e) {
        // readFiles reports per file; what it throws (memory for the buffer, say) fails the batch.
        return Promise.reject(e instanceof Error ? e : new Error(String(e)));
      }
    }
    this.batches.worker++;
    const id = this.nextId++;
    return new Promise<ReadBatch>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) worker.ref();
      const request: ReadAheadRequest = { id, paths: files.paths, sizes: files.sizes, capacity: files.capacity, spare };
      try {
        worker.postMessage(request, spare !== null ? [spare, files.sizes.buffer as ArrayBuffer] : [files.sizes.buffer as ArrayBuffer]);
      } catch (e) {
        this.pending.delete(id);
        if (this.pending.size === 0) worker.unref();
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  /** Give back a batch's buffer: its bytes must not be used any more. */
  release(buffer: ArrayBuffer): void {
    if (this.spare.length < SPARE_BUFFERS && buffer.byteLength > 0) this.spare.push(buffer);
  }

  /** Resolves once the worker runs (tests: to exercise the worker, not the start-up path); false if it cannot. */
  async whenOnline(): Promise<boolean> {
    const worker = this.start();
    if (worker === null) return false;
    if (this.online) return true;
    // Kept alive while waited for; idle again after.
    worker.ref();
    const online = await new Promise<boolean>((resolve) => {
      worker.once('online', () => resolve(true));
      worker.once('exit', () => resolve(false));
    });
    if (this.pending.size === 0) worker.unref();
    return online;
  }

  private start(): Worker | null {
    if (this.broken) return null;
    if (this.worker !== null) return this.worker;
    let worker: Worker;
    try {
      worker = new Worker(this.workerUrl, { resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 32 } });
    } catch {
      this.broken = true;
      return null;
    }
    this.worker = worker;
    worker.once('online', () => {
      this.online = true;
    });
    worker.on('message', (reply: ReadAheadReply) => {
      const waiter = this.pending.get(reply.id);
      if (waiter === undefined) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      waiter.resolve({ buffer: reply.buffer, meta: reply.meta, digests: reply.digests });
    });
    const fail = (why: string): void => {
      this.broken = true;
      this.online = false;
      this.worker = null;
      const err = new Error(`the Maildir read-ahead worker ${why}`);
      for (const waiter of this.pending.values()) waiter.reject(err);
      this.pending.clear();
    };
    worker.on('error', (err: Error) => fail(`failed: ${err.message}`));
    worker.on('exit', (code) => {
      if (!this.broken) fail(`exited with code ${code}`);
    });
    // After the listeners: adding a 'message' listener refs the worker again, and an idle read-ahead
    // must not keep the process alive.
    worker.unref();
    return worker;
  }
}

let pool: ReadAheadPool | null = null;

/** The process's read-ahead pool. */
export function readAheadPool(): ReadAheadPool {
  return (pool ??= new ReadAheadPool());
}
