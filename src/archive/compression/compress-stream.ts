/**
 * The compressing side of the dump: a Transform that cuts its input into independent zstd frames of
 * `frameSize` uncompressed bytes and ends with a seek table (zstd seekable format, see zstd-format.ts).
 * Any zstd decoder reads the result as an ordinary multi-frame .zst file.
 *
 * Memory: one input buffer being filled plus at most MAX_FRAMES_IN_FLIGHT buffers being compressed;
 * when all are busy, `_transform` waits, which holds back the writer (backpressure). Compressed frames
 * are pushed in order; the Transform's own readable-side backpressure stops input when the reader lags.
 *
 * With `useWorker`, frames are compressed in a worker thread so the producer (tar writer, mail reader)
 * and the compressor run on two cores. The worker starts only once a first frame is full, so small
 * outputs never pay its start-up cost.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { UnexpectedError } from '../../core/errors.js';
import { resolveZstdSettings, type CompressionOption, type ZstdSettings } from './compression-option.js';
import type { CompressWorkerData, FrameJob, FrameResult } from './compress-worker.js';
import { FrameCompressor } from './frame-compressor.js';
import { encodeSeekTable, frameContentChecksum, type SeekTableEntry } from './zstd-format.js';

/** Frames handed to the worker and not yet returned. Two would keep both cores busy; four absorbs jitter. */
export const MAX_FRAMES_IN_FLIGHT = 4;

/** Seekable zstd whose worker can be started before the first frame (createSeekableCompressStream). */
export interface SeekableCompressStream extends Transform {
  /** Start the compression worker now (unless frames are compressed inline), not at the second frame. */
  startWorker(): void;
}

/** Seekable zstd (as createCompressStream), typed so the dump writer can start its worker early. */
export function createSeekableCompressStream(option: Exclude<CompressionOption, { type: 'none' }>): SeekableCompressStream {
  return new SeekableZstdStream(resolveZstdSettings(option));
}

/** Identity Transform for none; for zstd: seekable zstd (frames of <= frameSize input bytes, then the seek table). */
export function createCompressStream(option: CompressionOption): Transform {
  if (option.type === 'none') {
    return new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        callback(null, chunk);
      },
    });
  }
  return new SeekableZstdStream(resolveZstdSettings(option));
}

class SeekableZstdStream extends Transform implements SeekableCompressStream {
  private readonly settings: ZstdSettings;
  private readonly entries: SeekTableEntry[] = [];
  /** Input buffers not in use; each owns its ArrayBuffer so it can be transferred to the worker. */
  private readonly freeBuffers: Buffer[] = [];
  private allocatedBuffers = 0;
  private current: Buffer | null = null;
  private fill = 0;
  private inlineCompressor: FrameCompressor | null = null;
  private worker: Worker | null = null;
  private nextSeq = 0;
  private nextResultSeq = 0;
  private inFlight = 0;
  /** Resolved whenever a buffer comes back from the worker (or on failure). */
  private waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private failure: Error | null = null;
  /** True when the last push filled the readable side; absorb() then waits for the reader. */
  private outputFull = false;
  private resumeOutput: (() => void) | null = null;

  constructor(settings: ZstdSettings) {
    super();
    this.settings = settings;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.absorb(chunk).then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    this.finish().then(() => callback(), callback);
  }

  override _read(size: number): void {
    this.outputFull = false;
    const resume = this.resumeOutput;
    if (resume !== null) {
      this.resumeOutput = null;
      resume();
    }
    super._read(size);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.stopWorker();
    this.failWaiters(error ?? new UnexpectedError('zstd compression stream was destroyed'));
    callback(error);
  }

  private async absorb(chunk: Buffer): Promise<void> {
    const { frameSize } = this.settings;
    let pos = 0;
    while (pos < chunk.length) {
      // A full frame is submitted only once more input arrives: then at least two frames exist, which
      // is when starting the worker pays off (an input of exactly one frame is compressed inline).
      if (this.current !== null && this.fill === frameSize) {
        this.submitCurrent(true);
        // A large chunk spans many frames: do not push them all before the reader catches up.
        if (this.outputFull) await new Promise<void>((resolve) => (this.resumeOutput = resolve));
      }
      if (this.current === null) {
        this.current = await this.takeBuffer();
        this.fill = 0;
      }
      const n = Math.min(chunk.length - pos, frameSize - this.fill);
      chunk.copy(this.current, this.fill, pos, pos + n);
      this.fill += n;
      pos += n;
    }
  }

  private async finish(): Promise<void> {
    if (this.current !== null && this.fill > 0) this.submitCurrent(false);
    while (this.inFlight > 0) await this.waitForReturn();
    this.throwIfFailed();
    this.stopWorker();
    this.push(encodeSeekTable(this.entries));
  }

  /**
   * Compress the current buffer's content. `moreFollow` says this is not the last frame, so a worker
   * is worth starting.
   */
  private submitCurrent(moreFollow: boolean): void {
    const buffer = this.current!;
    const length = this.fill;
    this.current = null;
    this.fill = 0;
    // Once frames went to the worker, all do (they come back in order). A dump of one frame, the last
    // one, is compressed here even when a worker was started early: it may still be booting.
    if (this.settings.useWorker && (this.nextSeq > 0 || moreFollow)) {
      this.postToWorker(buffer, length);
      return;
    }
    this.inlineCompressor ??= new FrameCompressor(this.settings.level);
    let frame: Buffer;
    try {
      frame = this.inlineCompressor.compressFrame(buffer.subarray(0, length));
    } catch (err) {
      throw new UnexpectedError(`zstd compression of frame ${this.entries.length} failed: ${(err as Error).message}`, { cause: err });
    }
    this.emitFrame(frame, length);
    this.freeBuffers.push(buffer);
  }

  private emitFrame(frame: Buffer, decompressedSize: number): void {
    if (frame.length > 0xffffffff) {
      throw new UnexpectedError(`zstd frame of ${frame.length} bytes does not fit the seek table`, {
        hint: 'use a smaller frame size',
      });
    }
    this.entries.push({
      compressedSize: frame.length,
      decompressedSize,
      checksum: frameContentChecksum(frame),
    });
    this.outputFull = !this.push(frame);
  }

  private async takeBuffer(): Promise<Buffer> {
    for (;;) {
      this.throwIfFailed();
      const free = this.freeBuffers.pop();
      if (free !== undefined) return free;
      if (this.allocatedBuffers < MAX_FRAMES_IN_FLIGHT + 1) {
        this.allocatedBuffers++;
        return Buffer.allocUnsafeSlow(this.settings.frameSize);
      }
      await this.waitForReturn();
    }
  }

  private waitForReturn(): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private postToWorker(buffer: Buffer, length: number): void {
    const worker = this.worker ?? this.spawnWorker();
    const job: FrameJob = { seq: this.nextSeq++, input: buffer.buffer as ArrayBuffer, length };
    if (this.inFlight === 0) worker.ref();
    this.inFlight++;
    worker.postMessage(job, [job.input]);
  }

  startWorker(): void {
    if (!this.settings.useWorker || this.worker !== null) return;
    this.spawnWorker().unref(); // idle until the first frame: must not keep the process alive
  }

  private spawnWorker(): Worker {
    const workerData: CompressWorkerData = { level: this.settings.level };
    const worker = new Worker(new URL('./compress-worker.js', import.meta.url), { workerData });
    worker.on('message', (result: FrameResult) => this.onWorkerResult(result));
    worker.on('error', (err: Error) => this.fail(new UnexpectedError(`zstd compression worker failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => {
      if (this.worker === worker && this.inFlight > 0) {
        this.fail(new UnexpectedError(`zstd compression worker exited with code ${code} while compressing`));
      }
    });
    this.worker = worker;
    return worker;
  }

  private onWorkerResult(result: FrameResult): void {
    if (this.failure !== null) return;
    if (result.seq !== this.nextResultSeq) {
      this.fail(new UnexpectedError(`zstd compression worker returned frame ${result.seq}, expected ${this.nextResultSeq}`));
      return;
    }
    this.nextResultSeq++;
    this.inFlight--;
    if (this.inFlight === 0) this.worker?.unref();
    const input = Buffer.from(result.input);
    if ('error' in result) {
      this.fail(new UnexpectedError(`zstd compression of frame ${result.seq} failed: ${result.error}`));
      return;
    }
    try {
      this.emitFrame(Buffer.from(result.frame, 0, result.frameLength), result.length);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    this.freeBuffers.push(input);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve();
  }

  private fail(err: Error): void {
    if (this.failure !== null) return;
    this.failure = err;
    this.failWaiters(err);
    this.destroy(err);
  }

  private failWaiters(err: Error): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(err);
  }

  private throwIfFailed(): void {
    if (this.failure !== null) throw this.failure;
  }

  private stopWorker(): void {
    const worker = this.worker;
    this.worker = null;
    if (worker !== null) void worker.terminate();
  }
}
