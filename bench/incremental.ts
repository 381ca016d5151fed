/**
 * Incremental backup after a 1 % change vs the full backup of the same Maildir (issue "Incremental
 * backups": the incremental takes under 5 % of the full backup's time).
 *
 * Builds a Maildir of N realistic messages (test/helpers/messages.ts shapes, Dovecot's on-disk format),
 * runs a full backup with --state-file, adds 1 % new messages and changes flags on another 1 %, then
 * runs the incremental with --since @STATE. Prints median times of R runs each and the ratio; writes
 * bench/results/incremental.json.
 *
 *   npm run build && node build/bench/incremental.js [MESSAGES=20000] [RUNS=3]
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rename, rm, utimes, writeFile, appendFile, readdir } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateMessages } from '../test/helpers/messages.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const total = Number(process.argv[2] ?? 20_000);
const runs = Number(process.argv[3] ?? 3);
const dir = await mkdtemp(path.join(tmpdir(), 'mv-bench-inc-'));
const md = path.join(dir, 'u', 'Maildir');
let nextUid = 1;

async function addMessages(count: number, seed: number): Promise<void> {
  const lines: string[] = [];
  for (const m of generateMessages(seed, count)) {
    const data = Buffer.from(m.raw.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
    const uid = nextUid++;
    const base = `${1_700_000_000 + uid}.M${uid}P${uid}.bench,S=${data.length},W=${data.length + data.toString('latin1').split('\n').length - 1}`;
    const file = path.join(md, 'cur', `${base}:2,S`);
    await writeFile(file, data);
    await utimes(file, 1_700_000_000 + uid, 1_700_000_000 + uid);
    lines.push(`${uid} :${base}`);
  }
  await appendFile(path.join(md, 'dovecot-uidlist'), lines.join('\n') + '\n');
}

function run(args: string[]): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(path.join(root, 'bin', 'run.js'), args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mailvault ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t) / 1e9;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  for (const sub of ['cur', 'new', 'tmp']) await mkdir(path.join(md, sub), { recursive: true });
  await writeFile(path.join(md, 'dovecot-uidlist'), `3 V1764000000 N1 G${'cd'.repeat(16)}\n`);
  await addMessages(total, 1);
  const location = `maildir:${dir}/%u/Maildir`;
  const state = path.join(dir, 'state.json');
  const fullTimes: number[] = [];
  for (let i = 0; i < runs; i++) fullTimes.push(run(['backup', '--location', location, '--user', 'u', '--compress', 'zstd', '--state-file', state, '-o', path.join(dir, 'full.mvd.zst')]));
  // 1 % new messages, and flags changed on another 1 % (renames in cur/, as Dovecot does)
  await addMessages(Math.max(1, Math.round(total / 100)), 2);
  const names = (await readdir(path.join(md, 'cur'))).sort().slice(0, Math.round(total / 100));
  for (const n of names) await rename(path.join(md, 'cur', n), path.join(md, 'cur', n.replace(/:2,S$/, ':2,FS')));
  const incTimes: number[] = [];
  let incSize = 0;
  for (let i = 0; i < runs; i++) {
    const out = path.join(dir, `inc${i}.mvd.zst`);
    incTimes.push(run(['backup', '--location', location, '--user', 'u', '--compress', 'zstd', '--since', `@${state}`, '-o', out]));
    incSize = (await readFile(out)).length;
  }
  const full = median(fullTimes);
  const inc = median(incTimes);
  const result = { date: new Date().toISOString(), cores: cpus().length, loadavg: (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' '), messages: total, newMessages: Math.round(total / 100), flagChanges: names.length, runs, fullSeconds: full, incrementalSeconds: inc, ratio: inc / full, incrementalBytes: incSize, target: '<= 0.05', verdict: inc / full <= 0.05 ? 'PASS' : 'MISS' };
  process.stdout.write(`\n| messages | full backup s | incremental (1 % new, 1 % flags) s | ratio | target |\n|---:|---:|---:|---:|---|\n| ${total} | ${full.toFixed(2)} | ${inc.toFixed(2)} | ${(inc / full).toFixed(3)} | <= 0.05: ${result.verdict} |\n`);
  process.stdout.write(`(medians of ${runs} runs; both include Node start-up, about 0.3 s; load average ${result.loadavg})\n`);
  await mkdir(path.join(root, 'bench', 'results'), { recursive: true });
  await writeFile(path.join(root, 'bench', 'results', 'incremental.json'), JSON.stringify(result, null, 2) + '\n');
} finally {
  await rm(dir, { recursive: true, force: true });
}
