/**
 * Worker-thread entry for DigestHasher (digest-hasher.ts): the sha256 of a byte stream sent in pieces.
 * Protocol, in order:
 *   in:  { kind: 'update', data: ArrayBuffer, length }   hash data[0, length); the buffer comes back
 *   out: { kind: 'returned', data }                      (transferred both ways, never copied)
 *   in:  { kind: 'digest' }   out: { kind: 'digest', value }   hex sha256 of everything so far
 */
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

export type DigestRequest = { kind: 'update'; data: ArrayBuffer; length: number } | { kind: 'digest' };
export type DigestReply = { kind: 'returned'; data: ArrayBuffer } | { kind: 'digest'; value: string };

const port = parentPort;
if (port !== null) {
  const hash = createHash('sha256');
  port.on('message', (request: DigestRequest) => {
    if (request.kind === 'digest') {
      const reply: DigestReply = { kind: 'digest', value: hash.copy().digest('hex') };
      port.postMessage(reply);
      return;
    }
    hash.update(new Uint8Array(request.data, 0, request.length));
    const reply: DigestReply = { kind: 'returned', data: request.data };
    port.postMessage(reply, [request.data]);
  });
}
