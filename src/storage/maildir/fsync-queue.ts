/**
 * FsyncQueue: makes the files of one save transaction durable with one thread-pool call each. Files
 * are handed over with their descriptor still open; drain() (at commit) fsyncs them, `concurrency`
 * at a time, closes each after its fsync, waits for all of them and throws the first failure.
 *
 * Why: before, commit re-opened every file by name, fsynced and closed it, three thread-pool round
 * trips per file. Each round trip costs the main thread 30-40 us (a promise, a FileHandle, waking a
 * pool thread): about 1 s of a 10k-message restore's 6 s (CPU profile).
 *
 * Why at commit and not at once: fsyncs started as soon as each file is written (interleaved with
 * the creation of the next files) took more CPU for the same time: a 10k-message restore 6.9 s of
 * CPU against 5.7 s, both 5.2 s wall (median of 3, interleaved, ext4 without a journal).
 * Only when more than `maxOpen` descriptors wait do fsyncs start early, so a large batch (restore
 * --commit-every) cannot exhaust the process's descriptors (RLIMIT_NOFILE); room() waits while
 * `maxOpen` + `concurrency` are pending.
 *
 * Files written as streams (bodies over 1 MiB) are handed over by path instead (open, fsync, close):
 * their descriptor belongs to a FileHandle, which must close it itself.
 */
import fs from 'node:fs';

type Job = { readonly fd: number } | { readonly path: string };

export class FsyncQueue {
  private inFlight = 0;
  private draining = false;
  private abandoned = false;
  private readonly queued: Job[] = [];
  private failure: NodeJS.ErrnoException | null = null;
  private readonly waiters: { readonly below: number; readonly resolve: () => void }[] = [];

  constructor(
    private readonly concurrency: number,
    private readonly maxOpen: number,
  ) {}

  /** Files handed over and not yet fsynced and closed. */
  get pending(): number {
    return this.inFlight + this.queued.length;
  }

  /** Files being fsynced right now. */
  get running(): number {
    return this.inFlight;
  }

  /** Hand over `fd` (open, written): it is fsynced and then closed, by the queue. */
  addDescriptor(fd: number): void {
    this.add({ fd });
  }

  /** Hand over a closed file by path: it is opened, fsynced and closed again. */
  addPath(path: string): void {
    this.add({ path });
  }

  /**
   * Resolves when fewer than `maxOpen` + `concurrency` files are pending (call before creating the
   * next file); throws an fsync failure seen so far (the batch cannot commit: stop writing it).
   */
  async room(): Promise<void> {
    await this.below(this.maxOpen + this.concurrency);
    if (this.failure !== null) throw this.failure;
  }

  /** fsync and close every file handed over (and any handed over meanwhile); throws the first failure. */
  async drain(): Promise<void> {
    this.draining = true;
    this.pump();
    await this.below(1);
    if (this.failure !== null) throw this.failure;
  }

  /** Close what is not started yet without fsyncing it, and wait for what is in flight (rollback). */
  async abandon(): Promise<void> {
    this.abandoned = true;
    for (const job of this.queued.splice(0)) if ('fd' in job) closeQuietly(job.fd);
    await this.below(1);
  }

  private add(job: Job): void {
    if (this.failure !== null || this.abandoned) {
      // drain() throws anyway, or the transaction was rolled back: the file is closed (not fsynced)
      // and removed with the transaction.
      if ('fd' in job) closeQuietly(job.fd);
      return;
    }
    this.queued.push(job);
    if (this.draining || this.queued.length > this.maxOpen) this.pump();
  }

  private pump(): void {
    while (this.inFlight < this.concurrency && this.queued.length > 0 && this.failure === null) this.start(this.queued.shift()!);
  }

  private start(job: Job): void {
    this.inFlight++;
    const done = (err: NodeJS.ErrnoException | null): void => {
      if (err !== null) this.failure ??= err;
      this.inFlight--;
      if (this.failure !== null) {
        for (const job of this.queued.splice(0)) if ('fd' in job) closeQuietly(job.fd);
      } else if (this.draining || this.queued.length > this.maxOpen) this.pump();
      this.wake();
    };
    const syncAndClose = (fd: number): void => {
      fs.fsync(fd, (syncErr) => {
        let err: NodeJS.ErrnoException | null = syncErr;
        try {
          fs.closeSync(fd);
        } catch (e) {
          err ??= e as NodeJS.ErrnoException;
        }
        done(err);
      });
    };
    if ('fd' in job) syncAndClose(job.fd);
    else fs.open(job.path, 'r', (err, fd) => (err ? done(err) : syncAndClose(fd)));
  }

  private below(n: number): Promise<void> {
    if (this.pending < n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ below: n, resolve }));
  }

  private wake(): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!;
      if (this.pending < w.below) {
        this.waiters.splice(i, 1);
        w.resolve();
      }
    }
  }
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    /* nothing to do: the file is removed by the caller */
  }
}
