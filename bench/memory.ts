/**
 * Peak memory of a backup as the mailbox grows (issue "Dump format v1": memory stays flat).
 *
 * Builds Maildir mailboxes of 1k, 10k and 100k small messages (Dovecot's on-disk format: dovecot-uidlist
 * v3, ",S=,W=" names), runs `mailvault backup` on each as a child process writing to /dev/null, and reads
 * the child's peak RSS (VmHWM) from /proc while it runs. Prints a table; writes bench/results/memory.json.
 *
 *   npm run build && node build/bench/memory.js [--sizes 1000,10000,100000]
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir, cpus } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const sizesArg = process.argv.indexOf('--sizes');
const sizes = sizesArg > 0 ? process.argv[sizesArg + 1]!.split(',').map(Number) : [1000, 10_000, 100_000];

function message(i: number): Buffer {
  const body = `Line ${i} of a small message.\n`.repeat(20 + (i % 50));
  return Buffer.from(`From: Sender ${i % 97} <s${i % 97}@example.org>\nTo: user@example.org\nSubject: Message number ${i}\nMessage-ID: <bench-${i}@example.org>\nDate: Mon, 24 Nov 2025 16:00:00 +0000\n\n${body}`);
}

async function makeMaildir(dir: string, count: number): Promise<number> {
  const md = path.join(dir, 'u', 'Maildir');
  for (const sub of ['cur', 'new', 'tmp']) await mkdir(path.join(md, sub), { recursive: true });
  const lines = [`3 V1764000000 N${count + 1} G${'ab'.repeat(16)}`];
  let bytes = 0;
  for (let i = 1; i <= count; i++) {
    const data = message(i);
    bytes += data.length;
    const vsize = data.length + data.toString('latin1').split('\n').length - 1;
    const base = `${1_700_000_000 + i}.M${i}P${i}.bench,S=${data.length},W=${vsize}`;
    const file = path.join(md, 'cur', `${base}:2,S`);
    await writeFile(file, data);
    await utimes(file, 1_700_000_000 + i, 1_700_000_000 + i);
    lines.push(`${i} :${base}`);
  }
  await writeFile(path.join(md, 'dovecot-uidlist'), lines.join('\n') + '\n');
  return bytes;
}

async function peakRss(args: string[]): Promise<{ peakKiB: number; seconds: number; code: number }> {
  const started = Date.now();
  const child = spawn(path.join(root, 'bin', 'run.js'), args, { stdio: ['ignore', 'ignore', 'inherit'] });
  let peak = 0;
  const poll = setInterval(async () => {
    try {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      const m = /VmHWM:\s+(\d+) kB/.exec(status);
      if (m) peak = Math.max(peak, Number(m[1]));
    } catch {
      /* exited */
    }
  }, 20);
  const code: number = await new Promise((resolve) => child.on('close', (c) => resolve(c ?? -1)));
  clearInterval(poll);
  return { peakKiB: peak, seconds: (Date.now() - started) / 1000, code };
}

const results = [];
for (const n of sizes) {
  const dir = await mkdtemp(path.join(tmpdir(), 'mv-bench-mem-'));
  try {
    const bytes = await makeMaildir(dir, n);
    const r = await peakRss(['backup', '--location', `maildir:${dir}/%u/Maildir`, '--user', 'u', '-o', '/dev/null']);
    if (r.code !== 0) throw new Error(`backup of ${n} messages exited ${r.code}`);
    results.push({ messages: n, messageBytes: bytes, peakRssMiB: +(r.peakKiB / 1024).toFixed(1), seconds: +r.seconds.toFixed(2) });
    process.stderr.write(`${n} messages: peak RSS ${(r.peakKiB / 1024).toFixed(1)} MiB, ${r.seconds.toFixed(1)} s\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
const table = ['| messages | message bytes | peak RSS (MiB) | seconds |', '|---:|---:|---:|---:|', ...results.map((r) => `| ${r.messages} | ${r.messageBytes} | ${r.peakRssMiB} | ${r.seconds} |`)].join('\n');
process.stdout.write(`\nmailvault backup, one Maildir mailbox, to /dev/null (${cpus().length} cores, node ${process.version})\n\n${table}\n`);
await mkdir(path.join(root, 'bench', 'results'), { recursive: true });
await writeFile(path.join(root, 'bench', 'results', 'memory.json'), JSON.stringify({ date: new Date().toISOString(), cores: cpus().length, node: process.version, results }, null, 2) + '\n');
