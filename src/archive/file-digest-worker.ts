/**
 * Worker side of FileDigest (file-digest.ts): hashes an uncompressed dump file by reading it itself,
 * up to `tail` bytes before its end, then waits for the cut (the trailer's member offset) and hashes
 * up to it. A cut before what was already hashed starts again from 0 (a dump whose trailer sits more
 * than `tail` bytes before the end of the file: correct, only slower).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

export interface FileDigestData {
  readonly path: string;
  /** Identity of the file the reader reads (fstat of its descriptor): another file is refused. */
  readonly dev: number;
  readonly ino: number;
  readonly tail: number;
}

export type FileDigestRequest = { readonly kind: 'cut'; readonly offset: number };
export type FileDigestReply =
  | { readonly kind: 'digest'; readonly hex: string; readonly bytes: number }
  | { readonly kind: 'error'; readonly message: string };

const READ_BYTES = 1024 * 1024;

function run(data: FileDigestData, port: NonNullable<typeof parentPort>): void {
  let fd: number;
  try {
    fd = fs.openSync(data.path, 'r');
  } catch (e) {
    port.postMessage({ kind: 'error', message: `cannot open ${data.path} again: ${(e as Error).message}` } satisfies FileDigestReply);
    return;
  }
  const st = fs.fstatSync(fd);
  if (st.dev !== data.dev || st.ino !== data.ino) {
    fs.closeSync(fd);
    port.postMessage({ kind: 'error', message: `${data.path} was replaced by another file while it was read` } satisfies FileDigestReply);
    return;
  }
  const buf = Buffer.allocUnsafe(READ_BYTES);
  let hash = createHash('sha256');
  let pos = 0;
  const hashTo = (end: number): void => {
    while (pos < end) {
      const n = fs.readSync(fd, buf, 0, Math.min(READ_BYTES, end - pos), pos);
      if (n === 0) return; // the file is shorter: the reply's byte count tells
      hash.update(buf.subarray(0, n));
      pos += n;
    }
  };
  try {
    hashTo(Math.max(0, st.size - data.tail));
  } catch (e) {
    port.postMessage({ kind: 'error', message: `cannot read ${data.path}: ${(e as Error).message}` } satisfies FileDigestReply);
    fs.closeSync(fd);
    return;
  }
  port.once('message', (req: FileDigestRequest) => {
    try {
      if (req.offset < pos) {
        hash = createHash('sha256');
        pos = 0;
      }
      hashTo(req.offset);
      port.postMessage({ kind: 'digest', hex: hash.digest('hex'), bytes: pos } satisfies FileDigestReply);
    } catch (e) {
      port.postMessage({ kind: 'error', message: `cannot read ${data.path}: ${(e as Error).message}` } satisfies FileDigestReply);
    } finally {
      fs.closeSync(fd);
    }
  });
}

if (parentPort !== null) run(workerData as FileDigestData, parentPort);
