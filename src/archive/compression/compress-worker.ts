/**
 * Worker-thread entry: compresses frames sent by compress-stream.ts, one at a time, in arrival order.
 * Protocol (both buffers are transferred, never copied):
 *   in:  FrameJob    { seq, input: ArrayBuffer, length }   compress input[0, length)
 *   out: FrameResult { seq, frame: ArrayBuffer, frameLength, input, length }   the frame is frame[0, frameLength);
 *                                                               the input buffer comes back for reuse
 *        or          { seq, error: string }
 * With workerData.digest, the worker also keeps the sha256 of all frame input, in order:
 *   in:  DigestJob    { kind: 'digest', partial: ArrayBuffer, length }   (transferred)
 *   out: DigestResult { kind: 'digest', value }   sha256 of every frame so far plus partial[0, length)
 * (the main thread's dump digest, moved here because this thread sees every byte anyway and is
 * mostly idle while the main thread reads mail).
 */
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { FrameCompressor } from './frame-compressor.js';

export interface FrameJob {
  seq: number;
  input: ArrayBuffer;
  length: number;
}

export interface DigestJob {
  kind: 'digest';
  partial: ArrayBuffer;
  length: number;
}

export interface DigestResult {
  kind: 'digest';
  value: string;
}

export type FrameResult =
  | { seq: number; frame: ArrayBuffer; frameLength: number; input: ArrayBuffer; length: number }
  | { seq: number; error: string; input: ArrayBuffer };

export interface CompressWorkerData {
  level: number;
  digest?: boolean;
}

const port = parentPort;
if (port !== null) {
  const { level, digest } = workerData as CompressWorkerData;
  const compressor = new FrameCompressor(level);
  const hash = digest === true ? createHash('sha256') : null;
  port.on('message', (job: FrameJob | DigestJob) => {
    if ('kind' in job) {
      const h = (hash ?? createHash('sha256')).copy();
      h.update(new Uint8Array(job.partial, 0, job.length));
      const reply: DigestResult = { kind: 'digest', value: h.digest('hex') };
      port.postMessage(reply);
      return;
    }
    hash?.update(new Uint8Array(job.input, 0, job.length));
    let result: FrameResult;
    let transfer: ArrayBuffer[];
    try {
      const frame = compressor.compressFrame(new Uint8Array(job.input, 0, job.length));
      result = { seq: job.seq, frame: frame.buffer as ArrayBuffer, frameLength: frame.length, input: job.input, length: job.length };
      transfer = [result.frame, job.input];
    } catch (err) {
      result = { seq: job.seq, error: err instanceof Error ? err.message : String(err), input: job.input };
      transfer = [job.input];
    }
    port.postMessage(result, transfer);
  });
}
