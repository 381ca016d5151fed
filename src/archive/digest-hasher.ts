/**
 * The archive digest of an uncompressed dump, computed in a worker thread: the main thread only copies
 * each output chunk into a pooled buffer (a memcpy, a tenth of the cost of hashing it) and transfers
 * it. With --compress zstd the compression worker computes the digest instead (compress-stream.ts).
 *
 * A worker takes about 0.1 s to boot. Until it runs, pieces wait here (in the pool's buffers); if the
 * digest is asked for before it ran (a small dump, such as an incremental with little to carry), the
 * pieces are hashed here and the worker is not used at all.
 */
import { createHash, type Hash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { UnexpectedError } from '../core/errors.js';
import type { DigestReply, DigestRequest } from './digest-worker.js';

/** Buffers in flight to the worker; when all are out, update() waits for one (backpressure). */
const POOL = 4;

export class DigestHasher {
  private readonly worker: Worker;
  private readonly free: ArrayBuffer[] = [];
  private allocated = 0;
  /**
   * Pieces given and not yet returned (queued ones included) plus a pending digest request: while
   * non-zero the worker is ref'd, so a caller waiting for a buffer keeps the process alive even while
   * the worker is still booting.
   */
  private outstanding = 0;
  private waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private digestWaiter: { resolve: (value: string) => void; reject: (err: Error) => void } | null = null;
  private failure: Error | null = null;
  /** True once the worker runs JavaScript; until then pieces wait in `queued`. */
  private online = false;
  private queued: Array<{ data: ArrayBuffer; length: number }> = [];
  /** Set when the digest was needed before the worker ran: everything is hashed here from then on. */
  private inline: Hash | null = null;

  constructor(private readonly bufferSize: number) {
    this.worker = new Worker(new URL('./digest-worker.js', import.meta.url));
    this.worker.unref();
    this.worker.once('online', () => {
      if (this.inline !== null) return;
      this.online = true;
      const queued = this.queued;
      this.queued = [];
      // Already counted in `outstanding` when they were queued.
      for (const q of queued) this.worker.postMessage({ kind: 'update', data: q.data, length: q.length } satisfies DigestRequest, [q.data]);
    });
    this.worker.on('message', (reply: DigestReply) => this.onReply(reply));
    this.worker.on('error', (err: Error) => this.fail(new UnexpectedError(`the digest worker failed: ${err.message}`, { cause: err })));
    this.worker.on('exit', (code) => {
      if (this.outstanding > 0 || this.digestWaiter !== null) this.fail(new UnexpectedError(`the digest worker exited with code ${code}`));
    });
  }

  /** Where the hashing happens: 'starting' (pieces wait for the worker), 'worker', or 'inline' (here). */
  get mode(): 'starting' | 'worker' | 'inline' {
    return this.inline !== null ? 'inline' : this.online ? 'worker' : 'starting';
  }

  /** Hash `data` (at most bufferSize bytes) after everything given before; `data` may be reused once this resolves. */
  async update(data: Buffer): Promise<void> {
    if (data.length > this.bufferSize) throw new UnexpectedError(`internal: digest update of ${data.length} bytes, over ${this.bufferSize}`);
    if (this.inline !== null) {
      this.inline.update(data);
      return;
    }
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
    if (!this.online) {
      if (this.outstanding++ === 0) this.worker.ref();
      this.queued.push({ data: target, length: data.length });
      return;
    }
    this.send({ kind: 'update', data: target, length: data.length }, [target]);
  }

  /** sha256 (hex) of everything given to update() so far. */
  digest(): Promise<string> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.inline === null && !this.online) {
      // Nothing went to the worker yet: hash here, now, instead of waiting for it to boot.
      const hash = createHash('sha256');
      for (const q of this.queued) hash.update(new Uint8Array(q.data, 0, q.length));
      this.outstanding -= this.queued.length;
      this.queued = [];
      if (this.outstanding === 0) this.worker.unref();
      this.inline = hash;
      void this.worker.terminate();
    }
    if (this.inline !== null) return Promise.resolve(this.inline.copy().digest('hex'));
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
