/** Shared helpers for the compression tests: stream a buffer through a transform, make test data. */
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Feed `input` in chunks of `chunkSize` bytes through `transform` and collect the output. */
export async function runThrough(transform: Transform, input: Buffer, chunkSize = 65536): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunked(input, chunkSize)),
    transform,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        out.push(chunk);
        callback();
      },
    }),
  );
  return Buffer.concat(out);
}

function* chunked(input: Buffer, chunkSize: number): Generator<Buffer> {
  for (let i = 0; i < input.length; i += chunkSize) yield input.subarray(i, i + chunkSize);
}

/** Mail-like text: header lines and word salad, compressible like real mail. */
export function mailText(bytes: number, seed = 1): Buffer {
  const words = ['Subject:', 'Received:', 'from', 'the', 'mailbox', 'Dovecot', 'backup', 'invoice', 'regards', 'meeting', 'über', '日本語', '\r\n'];
  let state = seed;
  const parts: string[] = [];
  let length = 0;
  while (length < bytes) {
    state = (state * 1103515245 + 12345) >>> 0;
    const word = words[state % words.length]!;
    parts.push(word, ' ');
    length += Buffer.byteLength(word) + 1;
  }
  return Buffer.from(parts.join('')).subarray(0, bytes);
}

export function randomData(bytes: number): Buffer {
  return randomBytes(bytes);
}

/** Run the zstd CLI with `args`, feeding `input` on stdin; returns stdout, status and stderr. */
export function zstdCli(args: string[], input?: Buffer): { status: number | null; stdout: Buffer; stderr: string } {
  const result = spawnSync('zstd', args, { input, maxBuffer: 256 * 1024 * 1024 });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr.toString() };
}
