/**
 * Worker-thread entry: compresses frames sent by compress-stream.ts, one at a time, in arrival order.
 * Protocol (both buffers are transferred, never copied):
 *   in:  FrameJob    { seq, input: ArrayBuffer, length }   compress input[0, length)
 *   out: FrameResult { seq, frame: ArrayBuffer, frameLength, input, length }   the frame is frame[0, frameLength);
 *                                                               the input buffer comes back for reuse
 *        or          { seq, error: string }
 */
import { parentPort, workerData } from 'node:worker_threads';
import { FrameCompressor } from './frame-compressor.js';

export interface FrameJob {
  seq: number;
  input: ArrayBuffer;
  length: number;
}

export type FrameResult =
  | { seq: number; frame: ArrayBuffer; frameLength: number; input: ArrayBuffer; length: number }
  | { seq: number; error: string; input: ArrayBuffer };

export interface CompressWorkerData {
  level: number;
}

const port = parentPort;
if (port !== null) {
  const { level } = workerData as CompressWorkerData;
  const compressor = new FrameCompressor(level);
  port.on('message', (job: FrameJob) => {
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
