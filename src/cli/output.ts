/**
 * Human output for the front ends: summaries and progress on stderr (progress only when stderr is a
 * TTY), and the guard that refuses to write a binary dump to a terminal.
 */
import { closeSync, createWriteStream, openSync, statSync, type Stats } from 'node:fs';
import { isatty } from 'node:tty';
import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { UsageError, fromSystemError } from '../core/errors.js';
import type { ProgressCallback } from '../operations/progress.js';

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

export function formatRate(bytes: number, seconds: number): string {
  return seconds > 0 ? `${formatBytes(bytes / seconds)}/s` : '-';
}

/** A progress line on stderr, redrawn at most 5 times a second, only on a TTY. */
export function stderrProgress(label: string): { onProgress: ProgressCallback | undefined; done(): void } {
  if (!process.stderr.isTTY) return { onProgress: undefined, done() {} };
  let last = 0;
  let shown = false;
  return {
    onProgress(event) {
      const now = Date.now();
      if (now - last < 200 && event.phase !== 'done') return;
      last = now;
      shown = true;
      const where = event.user ? ` ${event.user}${event.mailbox ? `/${event.mailbox}` : ''}` : '';
      process.stderr.write(`\r\x1b[K${label}: ${event.messages} messages, ${formatBytes(event.bytes)}${where}`.slice(0, (process.stderr.columns ?? 100) + 5));
    },
    done() {
      if (shown) process.stderr.write('\r\x1b[K');
    },
  };
}

export function note(message: string): void {
  process.stderr.write(`${message}\n`);
}

export interface DumpOutput {
  stream: Writable;
  /**
   * The stream is done with a chunk once it called back for it (Node's file streams, process.stdout):
   * a DumpWriter may then reuse its chunks (DumpWriterOptions.outputReleasesChunks).
   */
  readonly releasesChunks: boolean;
  /** Make the output final: on disk (fsync), then renamed into place (and the rename on disk). */
  commit(): Promise<void>;
  /** Remove a partial output file. */
  discard(): Promise<void>;
}

/**
 * Where a dump goes: a file (written as FILE.partial, fsynced and renamed on success, so a failed run never leaves
 * something that looks like a dump) or stdout, which must not be a terminal.
 */
export function openDumpOutput(file: string | undefined): DumpOutput {
  if (!file || file === '-') {
    if (process.stdout.isTTY) {
      throw new UsageError('refusing to write a binary dump to a terminal', { hint: 'redirect stdout (mailvault backup ... > dump.mvd) or give --output FILE' });
    }
    // oclif listens for 'error' on stdout and rethrows anything but EPIPE: an uncaught exception (a stack
    // trace, exit 1) before the writer, which gets the same error from the write's callback, can report
    // it (ENOSPC of `backup > file` on a full disk: exit 73, like -o FILE).
    for (const listener of process.stdout.listeners('error')) process.stdout.removeListener('error', listener as (err: Error) => void);
    process.stdout.on('error', () => {});
    return { stream: process.stdout, releasesChunks: true, commit: async () => {}, discard: async () => {} };
  }
  return openOutputFile(file, 'dump');
}

/**
 * An output file given by --output: a regular file is written as FILE.partial, fsynced and renamed by commit(),
 * so a failed run never leaves something that looks complete; discard() removes the partial file. A
 * device, FIFO or socket is written in place. A directory is a usage error; a terminal is refused
 * unless `allowTerminal`.
 */
export function openOutputFile(file: string, what: 'dump' | 'message', allowTerminal = false): DumpOutput {
  let existing: Stats | null = null;
  try {
    existing = statSync(file);
  } catch {
    existing = null;
  }
  if (existing?.isDirectory()) throw new UsageError(`--output ${file} is a directory`, { hint: 'give a file name inside it' });
  if (existing !== null && !existing.isFile()) {
    // A device, FIFO or socket (/dev/null, a named pipe): written in place. The FILE.partial + rename
    // dance would replace the device node with a regular file (as root, /dev/null itself).
    let fd: number;
    try {
      fd = openSync(file, 'w');
    } catch (e) {
      throw fromSystemError(e, 'open the output', { path: file });
    }
    if (!allowTerminal && isatty(fd)) {
      closeSync(fd);
      throw new UsageError(`refusing to write a binary ${what} to the terminal ${file}`, { hint: 'give a file name or a pipe' });
    }
    const stream = createWriteStream(file, { fd, highWaterMark: 4 * 1024 * 1024 });
    return { stream, releasesChunks: true, commit: async () => {}, discard: async () => void stream.destroy() };
  }
  const partial = `${file}.partial`;
  // A large buffer: each write is a thread-pool round trip (~150 us here), so fewer, bigger writes.
  const stream = createWriteStream(partial, { flags: 'w', mode: 0o600, highWaterMark: 4 * 1024 * 1024 });
  return {
    stream,
    releasesChunks: true,
    async commit() {
      // Durable before it has its final name, as a dump a state file points to must be: without the
      // fsync a crash soon after could leave FILE empty or cut short while --state-file (fsynced)
      // already names it as the base of the next incremental.
      try {
        await syncFile(partial);
      } catch (e) {
        throw fromSystemError(e, `write the finished ${what} to disk`, { path: partial });
      }
      try {
        await rename(partial, file);
      } catch (e) {
        throw fromSystemError(e, `move the finished ${what} into place`, { path: file });
      }
      await syncDirectory(path.dirname(path.resolve(file)));
    },
    async discard() {
      stream.destroy();
      await unlink(partial).catch(() => {});
    },
  };
}

/** fsync a file by name (its writer has closed it). */
async function syncFile(file: string): Promise<void> {
  const h = await open(file, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** fsync a directory (makes a rename in it durable); best effort: some file systems refuse it. */
async function syncDirectory(dir: string): Promise<void> {
  try {
    await syncFile(dir);
  } catch {
    // e.g. EINVAL on file systems without directory fsync
  }
}

/** Write a line (or raw text) to a stream, waiting for drain: large listings respect backpressure. */
/** What writeLine rejects with when the reader of its stream went away (EPIPE). */
export class OutputClosedError extends Error {
  constructor() {
    super('the program reading the output went away');
  }
}

export function writeLine(stream: NodeJS.WritableStream, text: string, newline = true): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = stream.write(newline ? `${text}\n` : text, (err) => (err ? reject((err as NodeJS.ErrnoException).code === 'EPIPE' ? new OutputClosedError() : err) : undefined));
    if (ok) resolve();
    else stream.once('drain', resolve);
  });
}
