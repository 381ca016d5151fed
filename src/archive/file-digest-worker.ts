/**
 * Worker side of FileDigest (file-digest.ts): hashes an uncompressed dump through its own descriptor
 * for the file the reader reads (opened by the main thread, which also closes it), up to `tail`
 * bytes before its end, then waits for the cut (the trailer's member offset) and hashes up to it. A
 * cut before what was already hashed starts again from 0 (a dump whose trailer sits more than
 * `tail` bytes before the end of the file: correct, only slower).
 *
 * It stays at most `lead` bytes ahead of the reader, whose progress (MiB parsed) it reads from
 * `progress[0]`: on a cold page cache or a file larger than memory it reads what the reader is about
 * to read, instead of running ahead and evicting it.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

export interface FileDigestData {
  /** Descriptor of the dump file, owned by the main thread. */
  readonly fd: number;
  readonly size: number;
  readonly tail: number;
  readonly lead: number;
  /** Int32 [0]: MiB of the stream the reader has parsed; -1 when it stopped waiting for us. */
  readonly progress: SharedArrayBuffer;
}

export type FileDigestRequest = { readonly kind: 'cut'; readonly offset: number };
export type FileDigestReply =
  | { readonly kind: 'digest'; readonly hex: string; readonly bytes: number }
  | { readonly kind: 'error'; readonly message: string; readonly code?: string };

const READ_BYTES = 1024 * 1024;
const MIB = 1024 * 1024;

function run(data: FileDigestData, port: NonNullable<typeof parentPort>): void {
  const progress = new Int32Array(data.progress);
  const buf = Buffer.allocUnsafe(READ_BYTES);
  let hash = createHash('sha256');
  let pos = 0;
  let cutKnown = false;
  const hashTo = (end: number): void => {
    while (pos < end) {
      if (!cutKnown) {
        // Not more than `lead` ahead of the reader (it sets -1 once it waits for the cut).
        for (;;) {
          const parsed = Atomics.load(progress, 0);
          if (parsed < 0 || pos < parsed * MIB + data.lead) break;
          Atomics.wait(progress, 0, parsed, 1000);
        }
      }
      const n = fs.readSync(data.fd, buf, 0, Math.min(READ_BYTES, end - pos), pos);
      if (n === 0) return; // the file is shorter: the reply's byte count tells
      hash.update(buf.subarray(0, n));
      pos += n;
    }
  };
  const fail = (e: unknown): void => {
    const err = e as NodeJS.ErrnoException;
    port.postMessage({ kind: 'error', message: err?.message ?? String(e), ...(err?.code ? { code: err.code } : {}) } satisfies FileDigestReply);
  };
  try {
    hashTo(Math.max(0, data.size - data.tail));
  } catch (e) {
    fail(e);
    return;
  }
  port.once('message', (req: FileDigestRequest) => {
    try {
      cutKnown = true;
      if (req.offset < pos) {
        hash = createHash('sha256');
        pos = 0;
      }
      hashTo(req.offset);
      port.postMessage({ kind: 'digest', hex: hash.digest('hex'), bytes: pos } satisfies FileDigestReply);
    } catch (e) {
      fail(e);
    }
  });
}

if (parentPort !== null) run(workerData as FileDigestData, parentPort);
