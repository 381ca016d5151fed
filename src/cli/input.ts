/** Opening a dump for reading: a file path, or "-" for stdin. */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { InputNotFoundError, UsageError, fromSystemError } from '../core/errors.js';

export async function openDumpInput(path: string): Promise<Readable> {
  if (path === '-') {
    if (process.stdin.isTTY) throw new UsageError('stdin is a terminal, not a dump', { hint: 'pipe a dump in (zstd -dc x.mvd.zst | mailvault restore - ...) or give a file' });
    return process.stdin;
  }
  try {
    const st = await stat(path);
    if (st.isDirectory()) throw new UsageError(`${path} is a directory, not a dump`);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const err = fromSystemError(e, 'open the dump', { path });
    if (err.code === 'STORAGE_NOT_FOUND') throw new InputNotFoundError(`dump not found: ${path}`, { path, hint: 'check the file name' });
    throw err;
  }
  return createReadStream(path, { highWaterMark: 1024 * 1024 });
}
