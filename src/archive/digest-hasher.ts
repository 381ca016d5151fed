/**
 * The archive digest of an uncompressed dump, computed in a worker thread: the main thread only copies
 * each output chunk into a pooled buffer (a memcpy, a tenth of the cost of hashing it) and transfers
 * it. With --compress zstd the compression worker computes the digest instead (compress-stream.ts).
 */
import { Worker } from 'node:worker_threads';
import { UnexpectedError } from '../core/errors.js';
import type { DigestReply, DigestRequest } from './digest-worker.js';

/** Buffers in flight to the worker; when all are out, update() waits for one (backpressure). */
const POOL = 4;

export class DigestHasher {
  private readonly worker: Worker;
  private readonly free: ArrayBuffer[] = [];
  private allocated = 0;
  private outstanding = 0;
  private waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private digestWaiter: { resolve: (value: string) => void; reject: (err: Error) => void } | null = null;
  private failure: Error | null = null;

  constructor(private readonly bufferSize: number) {
    this.worker = new Worker(new URL('./digest-worker.js', import.meta.url));
    this.worker.unref();
    this.worker.on('message', (reply: DigestReply) => this.onReply(reply));
    this.worker.on('error', (err: Error) => this.fail(new UnexpectedError(`the digest worker failed: ${err.message}`, { cause: err })));
    this.worker.on('exit', (code) => {
      if (this.outstanding > 0 || this.digestWaiter !== null) this.fail(new UnexpectedError(`the digest worker exited with code ${code}`));
    });
  }

  /** Hash `data` (at most bufferSize bytes) after everything given before; `data` may be reused once this resolves. */
  async update(data: Buffer): Promise<void> {
    if (data.length > this.bufferSize) throw new UnexpectedError(`internal: digest update of ${data.length} bytes, over ${this.bufferSize}`);
    let target = this.free.pop();
    while (target === undefined) {
      if (this.failure !== null) throw this.failure;
      if (this.allocated < POOL) {
        this.allocated++;
        target = new ArrayBuffer(this.bufferSize);
        break;
      }
      await new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
      target = this.free.pop();
    }
    if (this.failure !== null) throw this.failure;
    data.copy(Buffer.from(target, 0, data.length));
    this.send({ kind: 'update', data: target, length: data.length }, [target]);
  }

  /** sha256 (hex) of everything given to update() so far. */
  digest(): Promise<string> {
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise<string>((resolve, reject) => {
      this.digestWaiter = { resolve, reject };
      this.send({ kind: 'digest' });
    });
  }

  close(): void {
    void this.worker.terminate();
  }

  private send(request: DigestRequest, transfer: ArrayBuffer[] = []): void {
    if (this.outstanding++ === 0) this.worker.ref(); // pending answers keep the process alive
    this.worker.postMessage(request, transfer);
  }

  private onReply(reply: DigestReply): void {
    if (--this.outstanding === 0) this.worker.unref();
    if (reply.kind === 'digest') {
      const waiter = this.digestWaiter;
      this.digestWaiter = null;
      waiter?.resolve(reply.value);
      return;
    }
    this.free.push(reply.data);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve();
  }

  private fail(err: Error): void {
    if (this.failure !== null) return;
    this.failure = err;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(err);
    const digestWaiter = this.digestWaiter;
    this.digestWaiter = null;
    digestWaiter?.reject(err);
  }
}
