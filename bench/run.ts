/**
 * `npm run bench`: mailvault against `tar | zstd`, a raw tar read and `doveadm backup`, on the same
 * Dovecot-written stores, in one run. See bench/README.md.
 *
 *   npm run bench                                  # 1k and 10k messages, 3 timed runs each
 *   npm run build && node build/bench/run.js --sizes 1000,10000,100000 --runs 3 [--profiles maildir,sdbox,mdbox] [--no-imap] [--keep]
 *
 * Writes bench/results/<date>-<sizes>.{md,json} and bench/results/latest.md. Must run as root (Dovecot's
 * mail processes run as a separate mail uid; doveadm backup is run as root, as on a server).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { RSS_SOURCE, measure, median } from './lib/measure.js';
import { evaluateMemoryGrowth, evaluateTargets, renderMarkdown, type BenchResults, type ScenarioResult, type SizeResult, type StoreResult } from './lib/report.js';
import { backupArgs, mailvaultArgv, projectRoot, scenariosFor, type Scenario } from './lib/scenarios.js';
import { buildInstance, type BenchInstance, type BenchProfile, type BenchStore } from './lib/store.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,10000' },
    runs: { type: 'string', default: '3' },
    profiles: { type: 'string', default: 'maildir,sdbox' },
    'no-imap': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    'single-message-mb': { type: 'string', default: '100' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write('usage: node build/bench/run.js [--sizes 1000,10000,100000] [--runs 3] [--profiles maildir,sdbox,mdbox] [--no-imap] [--keep] [--single-message-mb 100|0]\n');
  process.exit(0);
}
const sizes = values.sizes!.split(',').map((s) => Number(s.trim()));
const runs = Number(values.runs);
const profiles = values.profiles!.split(',').map((s) => s.trim()) as BenchProfile[];
if (sizes.some((n) => !Number.isInteger(n) || n < 1) || !Number.isInteger(runs) || runs < 1 || profiles.some((p) => p !== 'maildir' && p !== 'sdbox' && p !== 'mdbox')) {
  process.stderr.write('bench: --sizes takes message counts (e.g. 1000,10000), --runs a positive integer, --profiles maildir, sdbox and/or mdbox\n');
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  process.stderr.write('bench: run as root: Dovecot\'s mail processes need their own mail uid, and doveadm backup runs as root\n');
  process.exit(2);
}
for (const tool of ['tar', 'zstd', 'doveadm', 'dovecot', 'du']) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    process.stderr.write(`bench: ${tool} is not installed (Debian: apt-get install tar zstd dovecot-imapd dovecot-lmtpd)\n`);
    process.exit(2);
  }
}

function firstLine(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]!.trim();
  } catch {
    return 'unknown';
  }
}

function loadavg(): string {
  return os.loadavg().map((x) => x.toFixed(2)).join(' ');
}

const log = (line: string): void => void process.stderr.write(`${line}\n`);

async function measureStoreScenarios(all: Array<{ profile: string; scenario: Scenario }>, bytes: number): Promise<Map<Scenario, ScenarioResult>> {
  const seconds = new Map<Scenario, number[]>();
  const rss = new Map<Scenario, number[]>();
  const errors = new Map<Scenario, string>();
  // What the runs wrote is removed after the last round, not between runs: on a file system without
  // a journal (this bench machine's ext4), ext4 will not reuse an inode freed less than 60 s before,
  // and each new file then scans past all of them (recently_deleted()): measured 0.37 ms per create
  // right after deleting 10k files, against 0.01-0.02 ms. Removing a 10k-message target just before
  // the next scenario writes one would charge that scenario for the previous one's files.
  const cleanups: Array<() => Promise<void>> = [];
  // Round 0 warms the page cache and checks the results; rounds 1..runs are timed. Interleaved: every
  // scenario once per round, so load changes on the shared machine hit all of them alike.
  for (let round = 0; round <= runs; round++) {
    for (const { profile, scenario } of all) {
      if (errors.has(scenario)) continue;
      const inv = await scenario.prepare(round);
      const m = await measure(inv.argv, { ...(inv.env ? { env: inv.env } : {}), ...(inv.cwd ? { cwd: inv.cwd } : {}) });
      let error: string | null = m.code === 0 ? null : `exit ${m.code}: ${m.stderrTail.trim().split('\n').slice(-3).join(' / ')}`;
      if (!error && round === 0 && scenario.check) error = await scenario.check(round);
      if (scenario.cleanup) cleanups.push(() => scenario.cleanup!(round));
      if (error) {
        errors.set(scenario, error);
        log(`    ${profile} ${scenario.id}: FAILED: ${error}`);
        continue;
      }
      log(`    ${round === 0 ? 'warm-up' : `run ${round}`}: ${profile} ${scenario.id}: ${m.seconds.toFixed(2)} s, ${(m.peakRssKiB / 1024).toFixed(0)} MiB`);
      if (round > 0) {
        seconds.set(scenario, [...(seconds.get(scenario) ?? []), m.seconds]);
        rss.set(scenario, [...(rss.get(scenario) ?? []), m.peakRssKiB / 1024]);
      }
    }
  }
  for (const cleanup of cleanups) await cleanup();
  const out = new Map<Scenario, ScenarioResult>();
  for (const { scenario } of all) {
    const s = seconds.get(scenario) ?? [];
    const med = median(s);
    const error = errors.get(scenario);
    out.set(scenario, {
      id: scenario.id,
      label: scenario.label,
      mailvault: scenario.mailvault,
      seconds: s.map((x) => +x.toFixed(3)),
      medianSeconds: +med.toFixed(3),
      mbPerSecond: +(bytes / 1e6 / med).toFixed(2),
      peakRssMiB: +Math.max(0, ...(rss.get(scenario) ?? [])).toFixed(1),
      ...(error ? { error } : {}),
    });
  }
  return out;
}

/**
 * The incremental after a 1 % change, on the same Dovecot store, after the other scenarios (it changes
 * the store): an untimed full backup with --state-file; then through Dovecot 1 % new messages (doveadm
 * copy of INBOX messages into INBOX: new UIDs, same bytes) and \\Flagged added to another 1 % of INBOX;
 * then `backup --since @STATE --compress zstd`, timed `runs` times (each against the same state).
 */
async function measureIncremental(inst: BenchInstance, store: BenchStore, bytes: number): Promise<ScenarioResult> {
  const state = path.join(inst.scratch, `${store.profile}.state.json`);
  const label = 'mailvault backup --since @STATE --compress zstd > /dev/null (after 1 % new, 1 % flag changes)';
  const failed = (error: string): ScenarioResult => {
    log(`    ${store.profile} mv-backup-incremental: FAILED: ${error}`);
    return { id: 'mv-backup-incremental', label, mailvault: true, seconds: [], medianSeconds: NaN, mbPerSecond: NaN, peakRssMiB: 0, error };
  };
  const full = await measure(mailvaultArgv([...backupArgs(store, 'zstd'), '--state-file', state, '-o', path.join(inst.scratch, `${store.profile}.full.mvd.zst`)]));
  if (full.code !== 0) return failed(`full backup with --state-file exited ${full.code}: ${full.stderrTail.trim()}`);
  const inbox = Number((await inst.dv.doveadmOk(['-f', 'flow', 'mailbox', 'status', '-u', store.user, 'messages', 'INBOX'])).match(/messages=(\d+)/)?.[1] ?? 0);
  const want = Math.max(1, Math.round(store.messages / 100));
  const added = Math.min(want, inbox);
  const flagged = Math.min(want, inbox - added);
  if (added > 0) await inst.dv.doveadmOk(['copy', '-u', store.user, 'INBOX', 'mailbox', 'INBOX', `1:${added}`]);
  if (flagged > 0) await inst.dv.doveadmOk(['flags', 'add', '-u', store.user, '\\Flagged', 'mailbox', 'INBOX', `${added + 1}:${added + flagged}`]);
  log(`    ${store.profile}: ${added} messages copied into INBOX, \\Flagged added to ${flagged} (1 % of ${store.messages} = ${want})`);
  const seconds: number[] = [];
  let rss = 0;
  for (let round = 0; round <= runs; round++) {
    // To /dev/null like the full backup it is compared with (a file output is fsynced at the end).
    const m = await measure(mailvaultArgv([...backupArgs(store, 'zstd'), '--since', `@${state}`]));
    if (m.code !== 0) return failed(`exit ${m.code}: ${m.stderrTail.trim().split('\n').slice(-3).join(' / ')}`);
    log(`    ${round === 0 ? 'warm-up' : `run ${round}`}: ${store.profile} mv-backup-incremental: ${m.seconds.toFixed(2)} s, ${(m.peakRssKiB / 1024).toFixed(0)} MiB`);
    if (round === 0) {
      if (!new RegExp(`\\b${added} new\\b`).test(m.stderrTail)) return failed(`the incremental did not report ${added} new messages: ${m.stderrTail.trim().split('\n').slice(-4).join(' / ')}`);
      continue;
    }
    seconds.push(m.seconds);
    rss = Math.max(rss, m.peakRssKiB / 1024);
  }
  const med = median(seconds);
  return { id: 'mv-backup-incremental', label, mailvault: true, seconds: seconds.map((x) => +x.toFixed(3)), medianSeconds: +med.toFixed(3), mbPerSecond: +(bytes / 1e6 / med).toFixed(2), peakRssMiB: +rss.toFixed(1) };
}

async function benchSize(count: number): Promise<SizeResult> {
  log(`bench: ${count} messages`);
  const loadBefore = loadavg();
  const t0 = Date.now();
  const inst = await buildInstance(count, profiles, log);
  const populateSeconds = (Date.now() - t0) / 1000;
  try {
    const all: Array<{ profile: string; scenario: Scenario }> = [];
    for (const [i, store] of inst.stores.entries()) {
      // The dump the restores read: uncompressed, made once, untimed.
      const dump = path.join(inst.scratch, `${store.profile}.mvd`);
      const made = await measure(mailvaultArgv([...backupArgs(store, 'none'), '-o', dump]));
      if (made.code !== 0) throw new Error(`mailvault backup of the ${store.profile} store into ${dump} exited ${made.code}: ${made.stderrTail}`);
      for (const scenario of scenariosFor(inst, store, dump, i === 0 && !values['no-imap'])) all.push({ profile: store.profile, scenario });
    }
    const results = await measureStoreScenarios(all, inst.corpus.bytes);
    const incrementals = new Map<string, ScenarioResult>();
    for (const store of inst.stores) incrementals.set(store.profile, await measureIncremental(inst, store, inst.corpus.bytes));
    const stores: StoreResult[] = inst.stores.map((store) => {
      const scenarios = [...all.filter((a) => a.profile === store.profile).map((a) => results.get(a.scenario)!), incrementals.get(store.profile)!];
      return { profile: store.profile, diskBytes: store.diskBytes, scenarios, targets: evaluateTargets(scenarios) };
    });
    return {
      messages: count,
      corpusBytes: inst.corpus.bytes,
      corpusByKind: inst.corpus.byKind,
      largestMessageBytes: inst.corpus.largestBytes,
      populateSeconds: +populateSeconds.toFixed(1),
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadavg(),
      stores,
    };
  } finally {
    if (values.keep) log(`  kept ${inst.dv.dir} (Dovecot stopped)`);
    await inst.dv.stop({ keepDir: values.keep });
  }
}

/**
 * Another engineer's stand-alone benchmark (build/bench/<name>.js), run as is when it is built; its
 * output goes verbatim into the report. Returns null when it is not built.
 */
function runExternal(name: string, args: string[]): { command: string; output: string; ok: boolean } | null {
  const file = path.join(projectRoot, 'build', 'bench', `${name}.js`);
  if (!existsSync(file)) return null;
  log(`bench: running bench/${name}.ts ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [file, ...args], { encoding: 'utf8', timeout: 30 * 60_000, maxBuffer: 16 * 1024 * 1024 });
  const ok = r.status === 0;
  return { command: `node build/bench/${name}.js ${args.join(' ')}`.trim(), output: `${r.stdout ?? ''}${ok ? '' : `\n(exit ${r.status ?? r.signal}) ${(r.stderr ?? '').slice(-1500)}`}`.trim(), ok };
}

const date = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
const sizeResults: SizeResult[] = [];
for (const n of sizes) sizeResults.push(await benchSize(n));
const external: Array<{ command: string; output: string; ok: boolean }> = [];
const singleMb = values['single-message-mb']!;
const single = singleMb !== '0' && singleMb !== '' ? runExternal('single-message', [singleMb]) : null;
if (single) external.push(single);

const gitRev = firstLine('git', ['-C', projectRoot, 'describe', '--always', '--dirty']);
const results: BenchResults = {
  date,
  machine: { cores: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release() },
  versions: {
    node: process.version,
    dovecot: firstLine('dovecot', ['--version']),
    tar: firstLine('tar', ['--version']),
    zstd: firstLine('zstd', ['--version']).replace(/^\*+\s*/, ''),
    mailvault: `git ${gitRev}`,
  },
  runs,
  method: [
    `Each figure is the median of ${runs} timed runs; every command ran once untimed first (page cache warm for all, the store fits in RAM) and that run was checked (message counts of every restore/copy).`,
    'Commands are interleaved: each round runs every command once, so load changes on the shared machine hit all alike. Ratios compare medians from the same run.',
    'Stores are written by Dovecot itself (`doveadm import` from a generated Maildir); Dovecot must report the expected message count. sdbox (and mdbox, with --profiles ...,mdbox) use single-instance attachment storage (mail_attachment_dir, min size 1k); their tar references read the mail directory and the attachment directory.',
    'MB/s = bytes of mail in the corpus (raw message sizes) / seconds, for every command alike. Outputs go to /dev/null (GNU tar writes to a pipe through cat, because it skips reading when writing to /dev/null itself).',
    'doveadm backup runs as root with -o maildir_copy_with_hardlinks=no into a fresh, empty Maildir each run. mailvault restore reads an uncompressed dump of the same store into a fresh, empty Maildir; the IMAP restore APPENDs one user into a fresh Dovecot user through a master login. What the runs write is removed after the last round (a store size needs free disk for (runs + 1) x 3 copies of its mail): ext4 without a journal, as on the bench machine, skips inodes freed in the last 60 s at every file it creates, which made each create ~0.35 ms slower right after a 10k-message target was removed.',
    `Peak RSS: ${RSS_SOURCE}. mailvault commands include Node start-up (about 0.2-0.3 s and 50-60 MiB).`,
    'Load average (1, 5, 15 min) is noted per size: the machine is shared with other work.',
  ],
  sizes: sizeResults,
  memoryGrowth: evaluateMemoryGrowth(sizeResults),
  notMeasured: [
    ...(single ? [] : ['Single message from a large archive: measured by bench/single-message.ts (not built, or --single-message-mb 0).']),
  ],
  external,
};

const dir = path.join(projectRoot, 'bench', 'results');
await mkdir(dir, { recursive: true });
const base = `${date.slice(0, 10)}-${sizes.join('-')}`;
const markdown = renderMarkdown(results);
await writeFile(path.join(dir, `${base}.json`), JSON.stringify(results, null, 2) + '\n');
await writeFile(path.join(dir, `${base}.md`), markdown + '\n');
await writeFile(path.join(dir, 'latest.md'), markdown + '\n');
process.stdout.write(`${markdown}\n`);
log(`bench: wrote ${path.join(dir, `${base}.md`)}, .json and latest.md`);
