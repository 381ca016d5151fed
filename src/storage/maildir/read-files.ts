/**
 * Reading a batch of whole message files into one buffer, with each file's mtime and sha256: the work
 * of the Maildir read-ahead (read-ahead.ts), done in its worker thread (read-ahead-worker.ts), or on
 * the calling thread while that worker is still starting.
 *
 * Synchronous on purpose: in a thread of its own a blocking open/fstat/read/close costs ~40 us per
 * small file on the machines measured, a thread-pool round trip per call several times that.
 *
 * A file is read only if fstat gives the size the caller expects (Dovecot's S= size: Maildir files
 * are never changed in place); anything else is reported per file, not thrown, so the caller can read
 * that one message the ordinary way, which then reports the error with its full context.
 *
 * A batch crosses between threads as a few flat values (one string of paths, typed arrays, one string
 * of digests), not as arrays of objects: structured cloning of per-file objects cost the main thread
 * more than the reads it saved (profiled: postMessage 150 ms for 10k files).
 */
import fs from 'node:fs';
import { sha256Hex } from '../../core/sha256.js';

/** Separates paths in ReadRequest.paths: no file name contains it. */
export const PATH_SEPARATOR = '\0';

export interface ReadRequest {
  /** The files' paths joined with PATH_SEPARATOR. */
  readonly paths: string;
  /** Expected size of each file. */
  readonly sizes: Float64Array;
  /**
   * Size of a new buffer when the spare one is too small (at least the sum of the sizes): one size
   * for every batch lets the same few buffers go round instead of new ones each time.
   */
  readonly capacity: number;
}

/** Per file, in ReadBatch.meta: offset in the buffer (-1: not read), size, mtime and ctime in ms. */
export const META_FIELDS = 4;

export interface ReadBatch {
  /** Holds every file read, back to back; at least the sum of the expected sizes long. */
  readonly buffer: ArrayBuffer;
  /** META_FIELDS numbers per file: offset (-1 if not read: missing, other size, error), size, mtimeMs, ctimeMs. */
  readonly meta: Float64Array;
  /** sha256 of each file read, 64 lowercase hex digits each, in file order (none for one not read). */
  readonly digests: string;
}

/** Read the request's files into `spare` if it is large enough, else into a new buffer of the total size. */
export function readFiles(request: ReadRequest, spare: ArrayBuffer | null): ReadBatch {
  const paths = request.paths.split(PATH_SEPARATOR);
  const sizes = request.sizes;
  let total = 0;
  for (const s of sizes) total += s;
  const buffer = spare !== null && spare.byteLength >= total ? spare : new ArrayBuffer(Math.max(total, request.capacity, 1));
  const bytes = new Uint8Array(buffer);
  const meta = new Float64Array(paths.length * META_FIELDS);
  let digests = '';
  let offset = 0;
  for (let k = 0; k < paths.length; k++) {
    const size = sizes[k]!;
    meta[k * META_FIELDS] = -1;
    meta[k * META_FIELDS + 1] = size;
    let fd = -1;
    try {
      fd = fs.openSync(paths[k]!, 'r');
      const st = fs.fstatSync(fd);
      if (st.size !== size) continue;
      let got = 0;
      while (got < size) {
        const n = fs.readSync(fd, bytes, offset + got, size - got, got);
        if (n === 0) break;
        got += n;
      }
      if (got !== size) continue;
      meta[k * META_FIELDS] = offset;
      meta[k * META_FIELDS + 2] = st.mtimeMs;
      meta[k * META_FIELDS + 3] = st.ctimeMs;
      digests += sha256Hex(bytes.subarray(offset, offset + size));
      offset += size;
    } catch {
      // Reported as not read (offset -1); the ordinary read of that message reports the error.
    } finally {
      if (fd >= 0) {
        try {
          fs.closeSync(fd);
        } catch {
          // A close error after a complete read loses nothing.
        }
      }
    }
  }
  return { buffer, meta, digests };
}
