// The CLI as a user meets it: exit codes, stdout and stderr together, on the demo store.
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, createReadStream, existsSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { copyDemoStore, projectRoot, runCli } from '../../helpers/cli.js';
import { parseLocation } from '../../../src/storage/location.js';
import { openMaildirStore } from '../../../src/storage/maildir/index.js';
import { readAll } from '../storage/dbox/store-expectations.js';

async function demoDump(t: ExecutionContext, extra: string[] = []) {
  const dir = await copyDemoStore(t);
  const r = await runCli(['backup', '--location', `maildir:${dir}/mail/%u/Maildir`, '--user', 'alice', '--user', 'bob', ...extra]);
  t.is(r.code, 0, r.stderr);
  return { dir, dump: r.stdout, stderr: r.stderr };
}

test('backup to stdout writes a dump that tar lists, and a summary on stderr', async (t) => {
  const { dir, dump, stderr } = await demoDump(t);
  t.regex(stderr, /backup: 2 users, 5 mailboxes, 8 messages/);
  const file = path.join(dir, 'd.mvd');
  await writeFile(file, dump);
  const tar = spawnSync('tar', ['tvf', file], { encoding: 'utf8' });
  t.is(tar.status, 0, tar.stderr);
  t.regex(tar.stdout, /users\/alice\/mailboxes\/Archive\/2025\/1\.eml/);
  t.is(tar.stderr, '', 'GNU tar prints no warnings');
  const v = await runCli(['verify', file]);
  t.is(v.code, 0, v.stderr);
  t.regex(v.stderr, /ok: 2 users, 5 mailboxes, 8 messages/);
});

test('--compress zstd writes a dump stock zstd decompresses to a valid dump', async (t) => {
  const { dir, dump } = await demoDump(t, ['--compress', 'zstd:3']);
  t.deepEqual([...dump.subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd]);
  const plain = spawnSync('zstd', ['-dc'], { input: dump });
  t.is(plain.status, 0);
  const file = path.join(dir, 'd.mvd');
  await writeFile(file, plain.stdout);
  t.is((await runCli(['verify', file])).code, 0);
  await writeFile(`${file}.zst`, dump);
  t.is((await runCli(['verify', `${file}.zst`])).code, 0);
});

test('--state-file of an incremental for some users (--user) keeps the cursors of the others, so the next run does not carry them whole', async (t) => {
  const dir = await copyDemoStore(t);
  const loc = `maildir:${dir}/mail/%u/Maildir`;
  const state = path.join(dir, 'state.json');
  const users = async (): Promise<string[]> => Object.keys((JSON.parse(await readFile(state, 'utf8')) as { users: Record<string, unknown> }).users).sort();
  t.is((await runCli(['backup', '--location', loc, '--user', 'alice', '--user', 'bob', '--state-file', state, '-o', path.join(dir, 'full.mvd')])).code, 0);
  t.deepEqual(await users(), ['alice', 'bob']);
  const inc = await runCli(['backup', '--location', loc, '--user', 'alice', '--since', `@${state}`, '--state-file', state, '-o', path.join(dir, 'inc.mvd')]);
  t.is(inc.code, 0, inc.stderr);
  t.deepEqual(await users(), ['alice', 'bob'], "bob's cursors stay");
  // an incremental dump as base: a warning that it cannot tell which messages its run skipped
  const fromDump = await runCli(['backup', '--location', loc, '--user', 'alice', '--since', `@${path.join(dir, 'inc.mvd')}`, '-o', path.join(dir, 'inc-from-dump.mvd')]);
  t.is(fromDump.code, 0, fromDump.stderr);
  t.regex(fromDump.stderr, /warning: --since @.*inc\.mvd is an incremental dump: if that run skipped messages .*give that run's --state-file instead/);
  const next = await runCli(['backup', '--location', loc, '--user', 'alice', '--user', 'bob', '--since', `@${state}`, '--state-file', state, '-o', path.join(dir, 'inc2.mvd'), '--json']);
  t.is(next.code, 0, next.stderr);
  const changes = (JSON.parse(next.stdout.toString()) as { changes: { user: string; status: string }[] }).changes.filter((c) => c.user === 'bob');
  t.true(changes.length > 0 && changes.every((c) => c.status !== 'new'), `bob is not carried whole: ${JSON.stringify(changes)}`);
});

test('an unknown mail_location scheme is a usage error naming it (exit 2)', async (t) => {
  const r = await runCli(['backup', '--location', 'mbox:~/mail:INBOX=/var/mail/%u', '--user', 'alice', '-o', '/tmp/never.mvd']);
  t.is(r.code, 2);
  t.regex(r.stderr, /"mbox" is a Dovecot storage that mailvault does not read/);
  t.regex(r.stderr, /hint: supported: maildir/);
});

test('--mailbox with --since TIME (no cursors) is a usage error: the chain would read the other mailboxes as deleted', async (t) => {
  const out = path.join(tmpdir(), `mv-never-${process.pid}.mvd`);
  const r = await runCli(['backup', '--location', 'maildir:/nonexistent/%u/Maildir', '--user', 'alice', '--since', '24h', '--mailbox', 'INBOX', '-o', out]);
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, /--mailbox cannot be used with --since 24h \(a time, no cursors\)/);
  t.regex(r.stderr, /hint: give --since @STATE-FILE or @DUMP/);
  t.false(existsSync(out));
});

test('a missing mail root is "not found" (exit 66) and leaves no dump file', async (t) => {
  const dir = await copyDemoStore(t);
  const out = path.join(dir, 'x.mvd');
  const r = await runCli(['backup', '--location', `maildir:${dir}/nope/%u/Maildir`, '--user', 'alice', '-o', out]);
  t.is(r.code, 66, r.stderr);
  t.regex(r.stderr, /nope\/alice\/Maildir/);
  await t.throwsAsync(readFile(out));
  await t.throwsAsync(readFile(`${out}.partial`));
});

test('--json errors are one object on stdout with code, message and exit code', async (t) => {
  const r = await runCli(['verify', '/nonexistent/dump.mvd', '--json']);
  t.is(r.code, 66);
  const j = JSON.parse(r.stdout.toString());
  t.is(j.exitCode, 66);
  t.is(j.error.code, 'INPUT_NOT_FOUND');
  t.regex(j.error.message, /dump\.mvd/);
});

test('verify of a truncated dump fails with exit 65 naming the offset', async (t) => {
  const { dir, dump } = await demoDump(t);
  const file = path.join(dir, 'cut.mvd');
  await writeFile(file, dump.subarray(0, Math.floor(dump.length / 2)));
  const r = await runCli(['verify', file]);
  t.is(r.code, 65);
  t.regex(r.stderr, /offset \d+/);
});

test('restore of a truncated dump keeps what is verified, exits 65 and says where it stopped', async (t) => {
  const { dir, dump } = await demoDump(t);
  const file = path.join(dir, 'cut.mvd');
  await writeFile(file, dump.subarray(0, Math.floor(dump.length * 0.6)));
  const r = await runCli(['restore', file, '--location', `maildir:${dir}/restored/%u/Maildir`, '--json']);
  t.is(r.code, 65, r.stderr);
  const j = JSON.parse(r.stdout.toString());
  t.is(j.summary.dumpComplete, false);
  t.true(j.summary.messages > 0, 'messages before the cut were restored');
  t.truthy(j.summary.stoppedAt.offset);
});

test('extract gives the exact bytes of one message; list --json has one entry per message', async (t) => {
  const { dir, dump } = await demoDump(t, ['--compress', 'zstd']);
  const file = path.join(dir, 'd.mvd.zst');
  await writeFile(file, dump);
  const l = await runCli(['list', file, '--json']);
  t.is(l.code, 0, l.stderr);
  const listing = JSON.parse(l.stdout.toString());
  t.is(listing.messages.length, 8);
  t.is(listing.trailer.counts.messages, 8);
  const x = await runCli(['extract', file, '--user', 'alice', '--mailbox', 'Archive/2025', '--uid', '2']);
  t.is(x.code, 0, x.stderr);
  const original = await readFile(path.join(dir, 'mail/alice/Maildir/.Archive.2025/cur/1764000300.M5000P4247.demo,S=4542,W=4616:2,Sab'));
  t.deepEqual(x.stdout, original);
  const missing = await runCli(['extract', file, '--user', 'alice', '--mailbox', 'INBOX', '--uid', '99']);
  t.is(missing.code, 66);
});

test('restore from stdin, then a selective rerun finds nothing new', async (t) => {
  const { dir, dump } = await demoDump(t);
  const target = `maildir:${dir}/restored/%u/Maildir`;
  const r1 = await runCli(['restore', '-', '--location', target], { input: dump });
  t.is(r1.code, 0, r1.stderr);
  t.regex(r1.stderr, /restored 8 messages/);
  const r2 = await runCli(['restore', '-', '--location', target, '--user', 'alice', '--mailbox', 'INBOX', '--uid', '2'], { input: dump });
  t.is(r2.code, 0, r2.stderr);
  t.regex(r2.stderr, /restored 0 messages .* 1 already present/);
});

test('a restore selection that matches nothing is "not found" (exit 66)', async (t) => {
  const { dir, dump } = await demoDump(t);
  const r = await runCli(['restore', '-', '--location', `maildir:${dir}/r/%u/Maildir`, '--message-id', '<nope@example.org>'], { input: dump });
  t.is(r.code, 66);
  t.regex(r.stderr, /no message in the dump matched/);
});

test('a --user or --mailbox the dump does not hold is "not found" (exit 66), naming it; nothing is written', async (t) => {
  const { dir, dump } = await demoDump(t);
  for (const args of [['--user', 'nosuchuser'], ['--user', 'alice', '--mailbox', 'NoSuchBox'], ['--mailbox', 'NoSuch*']]) {
    const r = await runCli(['restore', '-', '--location', `maildir:${dir}/r/%u/Maildir`, ...args], { input: dump });
    t.is(r.code, 66, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, /no user or mailbox in the dump matched the selection/);
    t.true(r.stderr.includes(JSON.stringify(args[args.length - 1])), r.stderr);
  }
  t.false(existsSync(path.join(dir, 'r')), 'nothing written');
  // A mailbox that exists but holds nothing selected is not that: an empty mailbox is restored.
  const ok = await runCli(['restore', '-', '--location', `maildir:${dir}/r/%u/Maildir`, '--user', 'alice', '--mailbox', 'INBOX'], { input: dump });
  t.is(ok.code, 0, ok.stderr);
});

test('a mailbox whose name the target cannot hold is left out and named, the others are restored, exit 3; a rerun merges nothing', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'mv-names-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // A LAYOUT=fs Maildir may have ".hidden" and "a.b" (a dot is no separator there); Maildir++ cannot
  // hold them, and there "a.b" would be the directory of "a/b".
  const source = `maildir:${dir}/src/%u/Maildir:LAYOUT=fs`;
  await mkdir(path.join(dir, 'src/eve/Maildir'), { recursive: true });
  const store = await openMaildirStore(parseLocation(source, { user: 'eve' }), 'eve');
  for (const name of ['A', '.hidden', 'a.b', 'a/b']) {
    await store.createMailbox({ name });
    const tx = await store.beginSave(name);
    for (const i of [0, 1]) {
      const raw = Buffer.from(`From: e@example.org\nSubject: ${name} ${i}\n\nbody\n`);
      await tx.save({ flags: [], keywords: [], internalDate: 1_764_000_000 + i, size: raw.length }, raw);
    }
    await tx.commit();
  }
  await store.subscribe(['A', '.hidden', 'a.b', 'a/b']);
  await store.close();
  const dump = path.join(dir, 'eve.mvd');
  const b = await runCli(['backup', '--location', source, '--user', 'eve', '-o', dump]);
  t.is(b.code, 0, b.stderr);
  const target = `maildir:${dir}/dst/%u/Maildir`;
  // A dry run says the same, and writes nothing.
  const dry = await runCli(['restore', dump, '--location', target, '--dry-run']);
  t.is(dry.code, 3, dry.stderr);
  t.regex(dry.stderr, /mailbox "\.hidden" was not restored/);
  t.regex(dry.stderr, /would restore 4 messages/);
  t.false(existsSync(path.join(dir, 'dst')));
  const subjects = async (): Promise<Record<string, string[]>> => {
    const restored = await openMaildirStore(parseLocation(target, { user: 'eve' }), 'eve');
    const out: Record<string, string[]> = {};
    for (const m of await restored.listMailboxes()) {
      const reader = await restored.openMailbox(m.name);
      out[m.name] = [];
      for await (const info of reader.messages()) out[m.name]!.push((await readAll(await reader.openMessage(info))).toString().split('\n')[1]!);
      await reader.close();
    }
    await restored.close();
    return out;
  };
  const want = { A: ['Subject: A 0', 'Subject: A 1'], INBOX: [], 'a/b': ['Subject: a/b 0', 'Subject: a/b 1'] };
  // The second run finds "a/b" in the target: "a.b" must still not go into it.
  for (const run of [1, 2]) {
    const r = await runCli(['restore', dump, '--location', target]);
    t.is(r.code, 3, r.stderr);
    t.regex(r.stderr, /warning: eve: mailbox "\.hidden" was not restored: mailbox name "\.hidden" cannot be stored in maildir:/);
    t.regex(r.stderr, /restore: 2 mailboxes \(4 messages\) not restored, their names cannot be stored in this target: "\.hidden", "a\.b"/);
    t.deepEqual(await subjects(), want, `run ${run}`);
    // Their subscriptions are left out too: Maildir++ would read "a.b" as "a/b".
    t.regex(r.stderr, /the subscription to "a\.b" was not restored/);
    const restored = await openMaildirStore(parseLocation(target, { user: 'eve' }), 'eve');
    t.deepEqual((await restored.listSubscriptions()).sort(), ['A', 'a/b']);
    await restored.close();
  }
  // Selected by name, it was matched, not "not found".
  const one = await runCli(['restore', dump, '--location', target, '--mailbox', 'a.b']);
  t.is(one.code, 3, one.stderr);
  t.deepEqual(await subjects(), want);
});

test('a Maildir whose Dovecot index cannot be read: warned, exit 3, and no change token, so the next incremental reads it again', async (t) => {
  const dir = await copyDemoStore(t);
  // Keywords without a letter live only in the index: if it cannot be read, they may be missing.
  await writeFile(path.join(dir, 'mail/alice/Maildir/dovecot.index'), Buffer.alloc(200, 0xee));
  // Past the 2 s in which a fresh change gives no token: the other mailboxes then get theirs.
  await new Promise((r) => setTimeout(r, 2100));
  const state = path.join(dir, 'state.json');
  const r = await runCli(['backup', '--location', `maildir:${dir}/mail/%u/Maildir`, '--user', 'alice', '--state-file', state, '-o', path.join(dir, 'full.mvd')]);
  t.is(r.code, 3, r.stderr);
  t.regex(r.stderr, /warning: alice INBOX: its Dovecot index in .*dovecot\.index could not be read/);
  const cursors = JSON.parse(await readFile(state, 'utf8')).users.alice as { name: string; changeToken: string | null }[];
  t.is(cursors.find((c) => c.name === 'INBOX')!.changeToken, null);
  t.is((r.stderr.match(/could not be read/g) ?? []).length, 1, 'only INBOX has an index here');
  t.true(cursors.some((c) => c.name !== 'INBOX' && c.changeToken !== null), 'the other mailboxes keep theirs');
});

test('--to-mailbox: messages of another source mailbox get new UIDs in the target, not their own', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'mv-tomb-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const source = `maildir:${dir}/src/%u/Maildir`;
  await mkdir(path.join(dir, 'src/eve/Maildir'), { recursive: true });
  const store = await openMaildirStore(parseLocation(source, { user: 'eve' }), 'eve');
  await store.createMailbox({ name: 'Sent' });
  for (const [name, uids] of [['INBOX', [1, 2]], ['Sent', [500, 501]]] as const) {
    const tx = await store.beginSave(name);
    for (const uid of uids) {
      const raw = Buffer.from(`From: e@example.org\nSubject: ${name} ${uid}\n\nbody\n`);
      await tx.save({ uid, flags: [], keywords: [], internalDate: 1_764_000_000, size: raw.length }, raw);
    }
    await tx.commit();
  }
  await store.close();
  const b = await runCli(['backup', '--location', source, '--user', 'eve', '-o', `${dir}/full.mvd`]);
  t.is(b.code, 0, b.stderr);
  const r = await runCli(['restore', `${dir}/full.mvd`, '--location', `maildir:${dir}/dst/%u/Maildir`, '--to-mailbox', 'INBOX']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /restored 4 messages .* into 1 mailboxes/);
  // INBOX took its identity (and UIDs 1, 2) from the source INBOX; Sent's messages follow them.
  const uids = (await readFile(`${dir}/dst/eve/Maildir/dovecot-uidlist`, 'utf8')).split('\n').slice(1).filter((l) => l !== '').map((l) => Number(l.split(' ')[0]));
  t.deepEqual(uids, [1, 2, 3, 4]);
});

test('backup > FILE on a full disk (stdout is /dev/full): exit 73 and the one-line message, no stack trace', async (t) => {
  const dir = await copyDemoStore(t);
  const full = openSync('/dev/full', 'w');
  t.teardown(() => closeSync(full));
  const child = spawn(path.join(projectRoot, 'bin', 'run.js'), ['backup', '--location', `maildir:${dir}/mail/%u/Maildir`, '--user', 'alice'], { stdio: ['ignore', full, 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.is(code, 73, err);
  t.regex(err, /cannot write the dump: no space left on device/);
  t.notRegex(err, /at writeSync|SyncWriteStream/);
});

test('list into a pipe whose reader went away (| head) ends quietly with exit 0', async (t) => {
  const { dir, dump } = await demoDump(t);
  const file = path.join(dir, 'd.mvd');
  await writeFile(file, dump);
  for (const args of [[], ['--json']]) {
    const child = spawn(path.join(projectRoot, 'bin', 'run.js'), ['list', file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    // The reader reads nothing and goes: every write of the listing meets a closed pipe.
    child.stdout.destroy();
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    t.is(code, 0, `list ${args.join(' ')}: ${err}`);
    t.is(err, '', 'nothing said');
  }
});

test('bad flag values are usage errors (exit 2)', async (t) => {
  const r1 = await runCli(['restore', '-', '--location', 'maildir:/tmp/x/%u', '--uid', '1:x'], { input: Buffer.alloc(0) });
  t.is(r1.code, 2);
  t.regex(r1.stderr, /"1:x" is not a UID set/);
  const r2 = await runCli(['restore', '-', '--location', 'maildir:/tmp/x/%u', '--since', 'yesterday-ish'], { input: Buffer.alloc(0) });
  t.is(r2.code, 2);
  t.regex(r2.stderr, /--since "yesterday-ish" is not a time/);
  const r3 = await runCli(['backup', '--location', 'maildir:/tmp/x', '--user', 'a', '--compress', 'gzip', '-o', '/tmp/x.mvd']);
  t.is(r3.code, 2);
  t.regex(r3.stderr, /gzip/);
  const r4 = await runCli(['backup', '--location', 'maildir:/tmp/x/%u', '--user', 'a', '--since', 'last tuesday', '-o', '/tmp/x.mvd']);
  t.is(r4.code, 2, r4.stderr);
  t.regex(r4.stderr, /"last tuesday"/);
  const r5 = await runCli(['backup', '--location', 'maildir:/tmp/x/%u', '--user', 'a', '--since', '2999-01-01T00:00:00Z', '-o', '/tmp/x.mvd']);
  t.is(r5.code, 2, r5.stderr);
  t.regex(r5.stderr, /2999-01-01T00:00:00Z.*future|future.*2999/);
});

test('list, edit, restore --use-list: only the kept messages come back; an unknown id is partial (exit 3)', async (t) => {
  const { dir, dump } = await demoDump(t);
  const file = path.join(dir, 'd.mvd');
  await writeFile(file, dump);
  const l = await runCli(['list', file]);
  t.is(l.code, 0, l.stderr);
  const lines = l.stdout.toString().split('\n');
  const keep = lines.filter((x) => /^\d+; message alice Archive\/2025 2 /.test(x) || /^\d+; message bob INBOX 1 /.test(x));
  t.is(keep.length, 2, l.stdout.toString());
  const listFile = path.join(dir, 'todo.list');
  await writeFile(listFile, [';', '; edited', ...keep, ''].join('\n'));
  const target = `maildir:${dir}/restored/%u/Maildir`;
  const r = await runCli(['restore', file, '--location', target, '--use-list', listFile, '--json']);
  t.is(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout.toString());
  t.is(j.dumps[0].messages, 2);
  t.deepEqual(j.dumps[0].mailboxes.map((m: { user: string; mailbox: string }) => `${m.user}/${m.mailbox}`).sort(), ['alice/Archive/2025', 'bob/INBOX']);
  await writeFile(listFile, `${keep[0]}\n999999; message nobody\n`);
  const u = await runCli(['restore', file, '--location', target, '--use-list', listFile]);
  t.is(u.code, 3, u.stderr);
  t.regex(u.stderr, /999999/);
  await writeFile(listFile, '999999; message nobody\n');
  const none = await runCli(['restore', file, '--location', target, '--use-list', listFile]);
  t.is(none.code, 66, 'nothing of the list is in the dump: not found');
});

test('a corrupt dovecot-uidlist: that mailbox is skipped with the file and line named, exit 3, the rest is in the dump', async (t) => {
  const dir = await copyDemoStore(t);
  const uidlist = path.join(dir, 'mail/alice/Maildir/.Archive.2025/dovecot-uidlist');
  await writeFile(uidlist, '3 V1764000101 N3 Gdeadbeef\n1 :a\n1 :b\n');
  const out = path.join(dir, 'x.mvd');
  const r = await runCli(['backup', '--location', `maildir:${dir}/mail/%u/Maildir`, '--user', 'alice', '-o', out]);
  t.is(r.code, 3, r.stderr);
  t.regex(r.stderr, /corrupt .*\.Archive\.2025\/dovecot-uidlist/);
  t.regex(r.stderr, /force-resync/);
  const v = await runCli(['verify', out]);
  t.is(v.code, 0, v.stderr);
  t.regex(v.stderr, /4 messages/, 'INBOX and Entwürfe are complete');
});

test('a dovecot-uidlist.lock held by a live process: restore exits 75 naming the lock and its holder, nothing visible', async (t) => {
  const { dir, dump } = await demoDump(t);
  const target = path.join(dir, 'restored');
  const first = await runCli(['restore', '-', '--location', `maildir:${target}/%u/Maildir`, '--user', 'bob'], { input: dump });
  t.is(first.code, 0, first.stderr);
  const inbox = path.join(target, 'bob/Maildir');
  const before = (await readdir(path.join(inbox, 'cur'))).length + (await readdir(path.join(inbox, 'new'))).length;
  // bob's INBOX lost everything: the restore would write 2 messages, but the lock is held by this (live) process
  for (const sub of ['cur', 'new']) for (const f of await readdir(path.join(inbox, sub))) await rm(path.join(inbox, sub, f));
  await writeFile(path.join(inbox, 'dovecot-uidlist.lock'), `${process.pid}:${hostname()}`);
  const r = await runCli(['restore', '-', '--location', `maildir:${target}/%u/Maildir`, '--user', 'bob', '--lock-timeout', '1'], { input: dump });
  t.is(r.code, 75, r.stderr);
  t.regex(r.stderr, /dovecot-uidlist\.lock/);
  t.regex(r.stderr, new RegExp(`${process.pid}`));
  t.true(before > 0);
  t.is((await readdir(path.join(inbox, 'cur'))).length + (await readdir(path.join(inbox, 'new'))).length, 0, 'nothing became visible');
});

/** Everything written into the FIFO at `file` until its writer closes it. */
function drain(file: string): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = createReadStream(file);
    s.on('data', (c) => chunks.push(c as Buffer));
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
  });
}

test('--output naming a FIFO (or a device such as /dev/null) writes into it and leaves it in place', async (t) => {
  const dir = await copyDemoStore(t);
  const fifo = path.join(dir, 'pipe');
  t.is(spawnSync('mkfifo', [fifo]).status, 0);
  // The reader drains the FIFO while the backup writes into it.
  const reading = drain(fifo);
  const r = await runCli(['backup', '--location', `maildir:${dir}/mail/%u/Maildir`, '--user', 'alice', '-o', fifo]);
  t.is(r.code, 0, r.stderr);
  const dump = await reading;
  t.true((await stat(fifo)).isFIFO(), 'still a FIFO: not replaced by a renamed temp file');
  const file = path.join(dir, 'copy.mvd');
  await writeFile(file, dump);
  t.is((await runCli(['verify', file])).code, 0);
  const d = await runCli(['backup', '--location', `maildir:${dir}/mail/%u/Maildir`, '--user', 'alice', '-o', dir]);
  t.is(d.code, 2, 'a directory is a usage error');
  // extract -o into a FIFO: the message arrives, the FIFO stays.
  const fifo2 = path.join(dir, 'pipe2');
  t.is(spawnSync('mkfifo', [fifo2]).status, 0);
  const reading2 = drain(fifo2);
  const x = await runCli(['extract', file, '--user', 'alice', '--mailbox', 'Archive/2025', '--uid', '2', '-o', fifo2]);
  t.is(x.code, 0, x.stderr);
  const eml = await reading2;
  const direct = await runCli(['extract', file, '--user', 'alice', '--mailbox', 'Archive/2025', '--uid', '2']);
  t.true(eml.length > 0);
  t.is(eml.toString('latin1'), direct.stdout.toString('latin1'));
  t.true((await stat(fifo2)).isFIFO());
});

test('run as a command, bin/run.js starts Node with a small young generation (backup: 3 MiB, single-threaded GC) and passes arguments verbatim', async (t) => {
  const dir = await copyDemoStore(t);
  // Preloaded by the Node the launcher starts: reports that Node's own flags and GLIBC_TUNABLES on stderr.
  const probe = path.join(dir, 'probe.mjs');
  await writeFile(probe, "process.stderr.write(`EXECARGV ${JSON.stringify(process.execArgv)}\\nTUNABLES ${process.env.GLIBC_TUNABLES}\\nPOOL ${process.env.UV_THREADPOOL_SIZE}\\nARENAS ${process.env.MALLOC_ARENA_MAX}\\n`);\n");
  const odd = path.join(dir, `a dir with 'quotes' $HOME "and" spaces`);
  const r = await runCli(['list', path.join(odd, 'x.mvd')], { env: { NODE_OPTIONS: `--import=${probe}`, GLIBC_TUNABLES: undefined, UV_THREADPOOL_SIZE: undefined, MALLOC_ARENA_MAX: undefined } });
  t.regex(r.stderr, /EXECARGV \["--max-semi-space-size=2"\]/);
  t.regex(r.stderr, /TUNABLES undefined/, 'malloc settings only for backup');
  t.regex(r.stderr, /ARENAS undefined/, 'one malloc arena only for restore');
  t.regex(r.stderr, /POOL undefined/, 'a larger thread pool only for restore');
  t.not(r.code, 0);
  t.true(r.stderr.includes(path.join(odd, 'x.mvd')), r.stderr);
  // backup: glibc malloc keeps what it frees (bin/run.js); a value the user set comes after, so it wins.
  const b = await runCli(['backup', '--help'], { env: { NODE_OPTIONS: `--import=${probe}`, GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' } });
  t.is(b.code, 0, b.stderr);
  // The V8 tiering flags bin/run.js sets (Node 20) are ones V8 knows: it would print an error otherwise.
  t.notRegex(b.stderr, /unrecognized flag/);
  // backup: a 3 MiB young generation and the garbage collector on the main thread alone (bin/run.js).
  t.regex(b.stderr, /EXECARGV \["--max-semi-space-size=3","--single-threaded-gc"\]/);
  t.regex(b.stderr, /TUNABLES glibc\.malloc\.mmap_threshold=4194304:glibc\.malloc\.trim_threshold=33554432:glibc\.malloc\.hugetlb=1:glibc\.malloc\.arena_max=2\n/);
  // restore: 64 libuv threads for the fsyncs it keeps in flight, set before Node starts (libuv reads
  // the variable once, when Node's module loader first uses the pool); a value the user set wins.
  // One malloc arena for all its threads (peak RSS), unless the user set MALLOC_ARENA_MAX.
  const rs = await runCli(['restore', '--help'], { env: { NODE_OPTIONS: `--import=${probe}`, UV_THREADPOOL_SIZE: undefined, GLIBC_TUNABLES: undefined, MALLOC_ARENA_MAX: undefined } });
  t.is(rs.code, 0, rs.stderr);
  t.regex(rs.stderr, /POOL 64\n/);
  t.regex(rs.stderr, /ARENAS 1\n/);
  t.regex(rs.stderr, /TUNABLES undefined\n/, 'a GLIBC_TUNABLES arena setting of the user would win over the variable');
  const rs8 = await runCli(['restore', '--help'], { env: { NODE_OPTIONS: `--import=${probe}`, UV_THREADPOOL_SIZE: '8', MALLOC_ARENA_MAX: '4' } });
  t.regex(rs8.stderr, /POOL 8\n/);
  t.regex(rs8.stderr, /ARENAS 4\n/);
});

const strace = spawnSync('sh', ['-c', 'command -v strace'], { encoding: 'utf8' }).stdout.trim();
if (strace === '' && process.env.CI !== 'true') {
  test.skip('a dump written to a file is fsynced before it is renamed into place (needs strace)', () => undefined);
} else {
  test('a dump written to a file is fsynced before it is renamed into place, and the rename is synced too', async (t) => {
    t.not(strace, '', 'strace is not installed (.ci/run installs it)');
    const dir = await copyDemoStore(t);
    const dump = path.join(dir, 'out', 'd.mvd');
    await mkdir(path.dirname(dump));
    const log = path.join(dir, 'strace.log');
    const r = spawnSync(strace, ['-f', '-y', '-qq', '-e', 'trace=fsync,fdatasync,rename,renameat,renameat2', '-o', log, process.execPath, path.join(projectRoot, 'bin', 'run.js'), 'backup', '--location', `maildir:${dir}/mail/%u/Maildir`, '--user', 'alice', '-o', dump], { encoding: 'utf8' });
    t.is(r.status, 0, r.stderr);
    const lines = (await readFile(log, 'utf8')).split('\n');
    const syncOfPartial = lines.findIndex((l) => /\bf(data)?sync\(\d+<[^>]*\/out\/d\.mvd\.partial>\)\s*=\s*0/.test(l));
    const renamed = lines.findIndex((l) => /rename(at2?)?\(.*d\.mvd\.partial.*d\.mvd"/.test(l));
    const syncOfDir = lines.findIndex((l, i) => i > renamed && /\bf(data)?sync\(\d+<[^>]*\/out>\)\s*=\s*0/.test(l));
    t.true(syncOfPartial >= 0, `no fsync of d.mvd.partial in:\n${lines.join('\n')}`);
    t.true(renamed > syncOfPartial, 'the rename comes after the fsync');
    t.true(syncOfDir > renamed, 'the directory is fsynced after the rename');
  });

  test('a restore into Maildir makes the renames into cur/ durable before the uidlist records that name them', async (t) => {
    const dir = await copyDemoStore(t);
    const dump = path.join(dir, 'd.mvd');
    t.is((await runCli(['backup', '--location', `maildir:${dir}/mail/%u/Maildir`, '--user', 'alice', '-o', dump])).code, 0);
    const log = path.join(dir, 'strace.log');
    const r = spawnSync(strace, ['-f', '-y', '-qq', '-e', 'trace=fsync,fdatasync,write,pwrite64,rename,renameat,renameat2', '-o', log, process.execPath, path.join(projectRoot, 'bin', 'run.js'), 'restore', dump, '--location', `maildir:${dir}/restored/%u/Maildir`], { encoding: 'utf8' });
    t.is(r.status, 0, r.stderr);
    const lines = (await readFile(log, 'utf8')).split('\n');
    const intoCur = lines.findIndex((l) => /rename(at2?)?\(.*\/restored\/alice\/Maildir\/tmp\/.*\/restored\/alice\/Maildir\/cur\//.test(l));
    // Matched at the call's start: strace -f splits a call that overlaps another thread's ("<unfinished ...>").
    const syncOfCur = lines.findIndex((l, i) => i > intoCur && /\bf(data)?sync\(\d+<[^>]*\/restored\/alice\/Maildir\/cur>/.test(l));
    // The first uidlist write after the renames (creating the mailbox wrote its header before).
    const records = lines.findIndex((l, i) => i > intoCur && (/write(64)?\(\d+<[^>]*\/restored\/alice\/Maildir\/dovecot-uidlist(\.tmp)?>/.test(l) || /rename(at2?)?\(.*dovecot-uidlist\.tmp.*\/restored\/alice\/Maildir\/dovecot-uidlist"/.test(l)));
    t.true(intoCur >= 0 && syncOfCur >= 0 && records >= 0, `renames into INBOX cur/, its fsync and the uidlist write expected in:\n${lines.join('\n').slice(0, 4000)}`);
    t.true(intoCur < syncOfCur && syncOfCur < records, `rename ${intoCur}, fsync of cur/ ${syncOfCur}, uidlist records ${records}`);
  });
}

// A reader that goes away (mailvault backup | something that exits): EPIPE on every write. The backup
// must fail with the cause and a non-zero exit, never an uncaught 'error' event or a stack trace.
for (const compress of ['none', 'zstd']) {
  test(`backup --compress ${compress} into a pipe whose reader is gone: clear error, exit non-zero`, async (t) => {
    const dir = await copyDemoStore(t);
    const bin = path.join(projectRoot, 'bin', 'run.js');
    const env = { ...process.env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}` };
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(bin, ['backup', '--location', `maildir:${dir}/mail/%u/Maildir`, '--user', 'alice', '--user', 'bob', '--compress', compress], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.destroy(); // the reader is gone before the first byte
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stderr }));
    });
    t.not(r.code, 0);
    t.regex(r.stderr, /cannot write the dump/);
    t.regex(r.stderr, /broken pipe \(EPIPE\): the program reading the output went away/);
    t.regex(r.stderr, /hint: check the command mailvault writes into/);
    t.notRegex(r.stderr, /Uncaught|Unhandled|\n\s+at /, 'no stack trace');
  });
}

test('backup --read-only: a Maildir file Dovecot has not listed is reported (exit 3) and the store is left as it was', async (t) => {
  const dir = await copyDemoStore(t);
  const maildir = path.join(dir, 'mail', 'alice', 'Maildir');
  await writeFile(path.join(maildir, 'new', '1800000000.M9P9.mx'), 'Subject: late\n\nlate\n');
  const uidlist = await readFile(path.join(maildir, 'dovecot-uidlist'));
  const r = await runCli(['backup', '--location', `maildir:${dir}/mail/%u/Maildir`, '--user', 'alice', '--read-only', '-o', path.join(dir, 'ro.mvd')]);
  t.is(r.code, 3, r.stderr);
  t.regex(r.stderr, /1800000000\.M9P9\.mx .*--read-only/);
  t.true((await readFile(path.join(maildir, 'dovecot-uidlist'))).equals(uidlist), 'the uidlist is unchanged');
  // Without it, the file gets the next UID and is backed up.
  const w = await runCli(['backup', '--location', `maildir:${dir}/mail/%u/Maildir`, '--user', 'alice', '-o', path.join(dir, 'rw.mvd')]);
  t.is(w.code, 0, w.stderr);
  t.regex(await readFile(path.join(maildir, 'dovecot-uidlist'), 'utf8'), /:1800000000\.M9P9\.mx\n$/);
});
