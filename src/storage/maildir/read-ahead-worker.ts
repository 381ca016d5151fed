/**
 * Worker-thread entry for the Maildir read-ahead (read-ahead.ts). Protocol:
 *   in:  { id, paths, sizes, spare }   read the files (read-files.ts) into `spare` (a buffer the
 *                                      caller is done with, transferred; null for a new one)
 *   out: { id, buffer, meta, digests } the buffers transferred back, never copied
 */
import { parentPort } from 'node:worker_threads';
import { readFiles, type ReadBatch, type ReadRequest } from './read-files.js';

export interface ReadAheadRequest extends ReadRequest {
  readonly id: number;
  readonly spare: ArrayBuffer | null;
}

export interface ReadAheadReply extends ReadBatch {
  readonly id: number;
}

const port = parentPort;
if (port !== null) {
  port.on('message', (request: ReadAheadRequest) => {
    const batch = readFiles(request, request.spare);
    const reply: ReadAheadReply = { id: request.id, buffer: batch.buffer, meta: batch.meta, digests: batch.digests };
    port.postMessage(reply, [batch.buffer, batch.meta.buffer as ArrayBuffer]);
  });
}
