#!/usr/bin/env node
// The built-in demo: back up the sample Maildir shipped in demo/mail (users alice and bob), list and
// verify the dump, restore it into an empty Maildir location, and compare every message.
// Needs no mail server. Run with: npm run demo
import { cp, mkdtemp, readdir, readFile, rm, stat, utimes } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const bin = path.join(root, 'bin', 'run.js');
const work = await mkdtemp(path.join(tmpdir(), 'mailvault-demo-'));

async function* files(dir) {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* files(p);
    else yield p;
  }
}

function run(title, args, { input } = {}) {
  process.stdout.write(`\n$ mailvault ${args.join(' ')}\n`);
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: work, encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  if (r.stdout) process.stdout.write(r.stdout);
  if (r.stderr) process.stdout.write(r.stderr);
  if (r.status !== 0) {
    process.stdout.write(`\ndemo: "${title}" failed with exit status ${r.status}\n`);
    process.exit(1);
  }
  return r.stdout;
}

// Git does not keep modification times, and a Maildir message's INTERNALDATE is its file's mtime:
// give every sample message the time in its file name, as Dovecot's delivery would have.
const source = path.join(work, 'mail');
await cp(path.join(root, 'demo', 'mail'), source, { recursive: true });
for await (const f of files(source)) {
  const m = /^(\d{9,10})\.M/.exec(path.basename(f));
  if (m) await utimes(f, Number(m[1]), Number(m[1]));
}

const location = `maildir:${source}/%u/Maildir`;
const target = `maildir:${work}/restored/%u/Maildir`;
const dump = path.join(work, 'demo.mvd');
run('backup', ['backup', '--location', location, '--user', 'alice', '--user', 'bob', '--output', dump]);
run('list', ['list', dump]);
run('verify', ['verify', dump]);
run('restore', ['restore', dump, '--location', target]);
run('restore again (adds nothing)', ['restore', dump, '--location', target]);

// Compare: every message file's bytes and mtime, by the dovecot-uidlist UID.
async function inventory(base) {
  const out = new Map();
  for await (const f of files(base)) {
    const rel = path.relative(base, f);
    if (!/\/(cur|new)\//.test(`/${rel}`)) continue;
    const st = await stat(f);
    const h = createHash('sha256').update(await readFile(f)).digest('hex');
    const key = `${path.dirname(path.dirname(rel))} ${h}`;
    out.set(key, Math.floor(st.mtimeMs / 1000));
  }
  return out;
}
const before = await inventory(source);
const after = await inventory(path.join(work, 'restored'));
let same = before.size === after.size;
for (const [k, v] of before) if (after.get(k) !== v) same = false;
process.stdout.write(`\ndemo: ${before.size} messages backed up, ${after.size} restored: ${same ? 'identical bytes and dates' : 'DIFFERENT'}\n`);
process.stdout.write(`demo: files are in ${work} (dump: ${dump})\n`);
if (!same) process.exit(1);
if (process.env.MAILVAULT_DEMO_CLEANUP) await rm(work, { recursive: true, force: true });
