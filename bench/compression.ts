/**
 * Compression throughput on mail-like data: seekable zstd at levels 1 and 3, with and without the
 * compression worker, plus sequential decompression. Run manually (not part of the tests):
 *
 *     npx tsc -p tsconfig.json && node build/bench/compression.js [MB] [RUNS]     (default 200 MB, 3 runs)
 *
 * The input is generated once, in memory, before timing: RFC 5322 messages with varied headers, text
 * bodies drawn from a word list (some quoted lines), and about one message in
 * ten carrying a base64 attachment of random bytes (incompressible, as real attachments mostly are).
 */
import { createHash } from 'node:crypto';
import { loadavg } from 'node:os';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createCompressStream, createDecompressStream } from '../src/archive/compression/index.js';

const WORDS = (
  'the of and to in is you that it he was for on are as with his they at be this have from or one had by ' +
  'word but not what all were we when your can said there use an each which she do how their if will up ' +
  'other about out many then them these so some her would make like him into time has look two more write ' +
  'meeting invoice attached please regards thanks project schedule report budget review update customer ' +
  'Dovecot mailbox server backup restore quarterly deadline Monday Tuesday Wednesday Thursday Friday ' +
  'unsubscribe newsletter offer discount shipping order confirmation password account security notice'
).split(' ');

class Prng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    // xorshift32
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state / 0x100000000;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

function makeMessage(rng: Prng, n: number): string {
  const from = `${rng.pick(WORDS)}.${rng.pick(WORDS)}@example${rng.int(50)}.org`;
  const lines: string[] = [
    `Return-Path: <${from}>`,
    `Delivered-To: user${rng.int(1000)}@example.com`,
    `Received: from mx${rng.int(20)}.example.net (mx.example.net [192.0.2.${rng.int(255)}])`,
    `\tby mail.example.com with ESMTPS id ${(rng.next() * 1e16).toString(36)}`,
    `\tfor <user@example.com>; Mon, ${1 + rng.int(28)} Jan 2024 ${10 + rng.int(13)}:${10 + rng.int(49)}:00 +0100`,
    `Message-ID: <${(rng.next() * 1e16).toString(36)}.${n}@example${rng.int(50)}.org>`,
    `From: "${rng.pick(WORDS)} ${rng.pick(WORDS)}" <${from}>`,
    `To: user@example.com`,
    `Subject: ${Array.from({ length: 3 + rng.int(6) }, () => rng.pick(WORDS)).join(' ')}`,
    `Date: Mon, ${1 + rng.int(28)} Jan 2024 ${10 + rng.int(13)}:${10 + rng.int(49)}:00 +0100`,
    'MIME-Version: 1.0',
  ];
  const hasAttachment = rng.int(10) === 0;
  const boundary = `b_${(rng.next() * 1e16).toString(36)}`;
  if (hasAttachment) lines.push(`Content-Type: multipart/mixed; boundary="${boundary}"`, '', `--${boundary}`);
  lines.push('Content-Type: text/plain; charset=utf-8', '');
  const paragraphs = 2 + rng.int(12);
  for (let p = 0; p < paragraphs; p++) {
    const words = 20 + rng.int(80);
    let line = rng.int(4) === 0 ? '> ' : '';
    for (let w = 0; w < words; w++) {
      line += rng.pick(WORDS) + ' ';
      if (line.length > 70) {
        lines.push(line.trimEnd());
        line = '';
      }
    }
    lines.push(line.trimEnd(), '');
  }
  if (hasAttachment) {
    const size = 1000 + rng.int(30_000);
    const bytes = Buffer.allocUnsafe(size);
    for (let i = 0; i < size; i++) bytes[i] = rng.int(256);
    lines.push(`--${boundary}`, 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', '');
    const b64 = bytes.toString('base64');
    for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76));
    lines.push(`--${boundary}--`, '');
  }
  return lines.join('\r\n');
}

function generateMail(totalBytes: number): Buffer[] {
  const rng = new Prng(12345);
  const chunks: Buffer[] = [];
  let size = 0;
  for (let n = 0; size < totalBytes; n++) {
    const message = Buffer.from(makeMessage(rng, n));
    chunks.push(message);
    size += message.length;
  }
  return chunks;
}

/**
 * The producer: either just hands out the messages, or also does what the dump writer does on the main
 * thread per message (a SHA-256 of its bytes), so the benefit of moving compression off it shows.
 */
function* produce(input: Buffer[], busy: boolean): Generator<Buffer> {
  for (const message of input) {
    if (busy) createHash('sha256').update(message).digest();
    yield message;
  }
}

async function timeCompress(
  input: Buffer[],
  level: number,
  useWorker: boolean,
  busy: boolean,
): Promise<{ seconds: number; out: Buffer[] }> {
  const out: Buffer[] = [];
  const start = process.hrtime.bigint();
  await pipeline(
    Readable.from(produce(input, busy)),
    createCompressStream({ type: 'zstd', level, useWorker }),
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        out.push(chunk);
        callback();
      },
    }),
  );
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, out };
}

async function timeDecompress(input: Buffer[]): Promise<number> {
  const start = process.hrtime.bigint();
  await pipeline(
    Readable.from(input),
    createDecompressStream(),
    new Writable({
      write(_chunk: Buffer, _encoding, callback) {
        callback();
      },
    }),
  );
  return Number(process.hrtime.bigint() - start) / 1e9;
}

async function main(): Promise<void> {
  const megabytes = Number(process.argv[2] ?? 200);
  const input = generateMail(megabytes * 1024 * 1024);
  const inputBytes = input.reduce((n, b) => n + b.length, 0);
  const mb = inputBytes / 1e6;
  console.log(`input: ${mb.toFixed(1)} MB of mail-like text in ${input.length} messages`);
  const runs = Number(process.argv[3] ?? 3);
  console.log(`each line: median of ${runs} runs (best in brackets); load average ${loadavg()[0]!.toFixed(2)}`);
  await timeCompress(input.slice(0, 2000), 3, true, false); // warm up JIT and the worker code path
  let lastOutput: Buffer[] = [];
  for (const busy of [false, true]) {
    for (const level of [1, 3]) {
      for (const useWorker of [false, true]) {
        const speeds: number[] = [];
        let outBytes = 0;
        for (let r = 0; r < runs; r++) {
          const { seconds, out } = await timeCompress(input, level, useWorker, busy);
          speeds.push(mb / seconds);
          outBytes = out.reduce((n, b) => n + b.length, 0);
          if (level === 3) lastOutput = out;
        }
        console.log(
          `compress level ${level} ${useWorker ? 'worker' : 'inline'} ${busy ? 'producer+sha256' : 'bare producer  '}: ` +
            `${formatSpeeds(speeds)}, ratio ${(inputBytes / outBytes).toFixed(2)}`,
        );
      }
    }
  }
  const dSpeeds: number[] = [];
  for (let r = 0; r < runs; r++) dSpeeds.push(mb / (await timeDecompress(lastOutput)));
  console.log(`decompress level 3 output, sequential stream: ${formatSpeeds(dSpeeds)}`);
}

function formatSpeeds(speeds: number[]): string {
  const sorted = [...speeds].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  return `${median.toFixed(0).padStart(4)} MB/s (${sorted[sorted.length - 1]!.toFixed(0)})`;
}

await main();
