/**
 * formats/examples/read_dump.py, the spec's independent reader, on what versions 2 to 4 added
 * (formats/dump-v1.md 5.7, 5.8 and 13): messages stored as a stub plus blobs, which it rebuilds and
 * checks against their record, and incremental dumps with flag tables. It reads the golden dumps
 * v2-parts.mvd and v3-incremental.mvd and fresh dumps of the demo store written by the CLI (a full
 * one with --dedup-attachments, then an incremental), and rejects damaged ones, each with a message
 * naming the problem. Where a damage would be caught by an earlier check too, the dump is "resealed"
 * (record checks, TOC hashes, trailer toc, digest and check recomputed by the spec's rules), so that
 * the rule under test is the only one broken.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { copyFile, readdir, rename, readFile, utimes, writeFile } from 'node:fs/promises';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { copyDemoStore, runCli } from '../../helpers/cli.js';
import { tempDir, tempDirSync } from '../../helpers/temp.js';
import { DumpWriter } from '../../../src/archive/writer.js';
import { ArchiveCorruptError } from '../../../src/core/errors.js';
import { HEADER, collector, incrementalWithTwoFlagTables, mailbox, readAll, splitMembers, chunked, type RawMember } from './sample-dump.js';
import { editRecord, reseal, sha256 } from './reseal.js';

const hasPython = spawnSync('python3', ['--version'], { stdio: 'ignore' }).status === 0;
const pyTest = hasPython ? test : test.skip;
const V2 = 'test/fixtures/dumps/v2-parts.mvd';
const V3 = 'test/fixtures/dumps/v3-incremental.mvd';

interface PyResult { status: number | null; stdout: string; stderr: string }

function readDumpPy(path: string, ...extra: string[]): PyResult {
  return spawnSync('python3', ['formats/examples/read_dump.py', path, ...extra], { encoding: 'utf8' });
}

function readDumpPyBytes(t: Parameters<typeof tempDirSync>[0], dump: Buffer): PyResult {
  const file = join(tempDirSync(t, 'mailvault-pyparts-'), 'd.mvd');
  writeFileSync(file, dump);
  return readDumpPy(file);
}

pyTest('read_dump.py verifies v2-parts.mvd and rebuilds its messages as the TypeScript reader does', async (t) => {
  const dir = await tempDir(t, 'mailvault-pyparts-');
  const r = readDumpPy(V2, '--extract', dir);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^OK \{"blobs": 4, "mailboxes": 3, "messageBytes": 119012, "messages": 7, "users": 2\}$/m);
  // Every message (6 rebuilt from stub + blobs, 1 whole) byte for byte as mailvault's reader gives it.
  const { bodies } = await readAll(chunked(readFileSync(V2)));
  t.is(bodies.size, 7);
  for (const [id, body] of bodies) t.true(body.equals(await readFile(join(dir, `${id}.eml`))), `message ${id}`);
});

pyTest('read_dump.py verifies v3-incremental.mvd (flag tables, a stub + blob message)', (t) => {
  const r = readDumpPy(V3);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, '6 alice INBOX 5 4538\nOK {"blobs": 1, "mailboxes": 5, "messageBytes": 4538, "messages": 1, "users": 2}\n');
});

pyTest('read_dump.py verifies a parts dump and then an incremental written by the CLI', async (t) => {
  const dir = await copyDemoStore(t);
  const location = `maildir:${dir}/mail/%u/Maildir`;
  const backup = (args: string[]) => runCli(['backup', '--location', location, '--user', 'alice', '--user', 'bob', '--dedup-attachments=1k', '--state-file', join(dir, 'state.json'), ...args]);
  const full = join(dir, 'full.mvd');
  const b1 = await backup(['-o', full]);
  t.is(b1.code, 0, b1.stderr);
  const names = (await splitMembers(await readFile(full))).map((m) => m.name);
  t.true(names.some((n) => n.endsWith('.stub')) && names.some((n) => n.startsWith('blobs/')), 'the full dump holds stubs and blobs');
  const r1 = readDumpPy(full);
  t.is(r1.status, 0, r1.stderr);
  t.regex(r1.stdout, /^OK /m);

  // Changes for the incremental: a new message with the attachment (a copy of INBOX UID 2 as UID 5)
  // and \Answered on UID 1; the recipe of v3-incremental.mvd.
  const m = join(dir, 'mail', 'alice', 'Maildir');
  const cur = join(m, 'cur');
  const files = await readdir(cur);
  const withAttachment = files.find((f) => f.startsWith('1764000120.'))!;
  const first = files.find((f) => f.startsWith('1764000060.'))!;
  const nb = '1764000240.M4000P4246.demo,S=4538,W=4612';
  await copyFile(join(cur, withAttachment), join(cur, `${nb}:2,S`));
  await utimes(join(cur, `${nb}:2,S`), 1764064800, 1764064800);
  const uidlist = (await readFile(join(m, 'dovecot-uidlist'), 'utf8')).replace(/^3 V1764000100 N5 /, '3 V1764000100 N6 ');
  await writeFile(join(m, 'dovecot-uidlist'), `${uidlist.replace(/\n?$/, '\n')}5 :${nb}\n`);
  await rename(join(cur, first), join(cur, first.replace(/:2,S$/, ':2,RS')));
  const inc = join(dir, 'inc.mvd');
  const b2 = await backup(['--since', `@${join(dir, 'state.json')}`, '-o', inc]);
  t.is(b2.code, 0, b2.stderr);
  const incNames = (await splitMembers(await readFile(inc))).map((x) => x.name);
  t.true(incNames.some((n) => /\/flags\.1\.json$/.test(n)), 'the incremental holds flag tables');
  t.true(incNames.includes('users/alice/mailboxes/INBOX/5.stub'), 'the new message is stored as parts');
  const r2 = readDumpPy(inc);
  t.is(r2.status, 0, r2.stderr);
  t.regex(r2.stdout, /^\d+ alice INBOX 5 4538$/m);
});

// Damaged dumps. Each must fail with exit 65 and a one-line message naming the problem.

const BLOB = 'blobs/c7/c789c8764ead2095ea278b85846a7c4c7258ceafa80ff031bdd038a1a819c632';
const STUB = 'users/alice/mailboxes/INBOX/3.stub';

function flipByte(at: (m: RawMember) => number): (m: RawMember) => Buffer {
  return (m) => {
    const d = Buffer.from(m.data);
    d[at(m)]! ^= 0x01;
    return d;
  };
}

pyTest('read_dump.py rejects a blob with a changed byte (5.7: content hashes to the name)', async (t) => {
  // Resealed: the TOC and digest agree with the changed blob; only its name does not.
  const dump = await reseal(readFileSync(V2), { [BLOB]: flipByte((m) => m.data.length >> 1) });
  const r = readDumpPyBytes(t, dump);
  t.is(r.status, 65, r.stdout);
  t.is(r.stderr, `read_dump.py: ${BLOB}: blob content does not match its name\n`);
});

pyTest('read_dump.py rejects a stub with a changed byte (5.8: the record\'s stub size and sha256)', async (t) => {
  const dump = await reseal(readFileSync(V2), { [STUB]: flipByte(() => 10) });
  const r = readDumpPyBytes(t, dump);
  t.is(r.status, 65, r.stdout);
  t.is(r.stderr, `read_dump.py: ${STUB}: stub does not match its record (stub size or sha256)\n`);
});

pyTest('read_dump.py rejects a stub changed together with its record\'s stub hash (5.8: the rebuilt message)', async (t) => {
  // The stub and record.stub agree; only the rebuilt message's sha256 differs from the record's.
  let stub: Buffer | undefined;
  const dump = await reseal(readFileSync(V2), {
    [STUB]: (m) => (stub = flipByte(() => 10)(m)),
    'users/alice/mailboxes/INBOX/3.json': editRecord((o) => ((o['stub'] as { sha256: string }).sha256 = sha256(stub!))),
  });
  const r = readDumpPyBytes(t, dump);
  t.is(r.status, 65, r.stdout);
  t.is(r.stderr, `read_dump.py: ${STUB}: rebuilt message does not match its record (size or sha256)\n`);
});

pyTest('read_dump.py rejects a message using a blob that comes after it (5.7, section 6 rule 5)', async (t) => {
  // INBOX UID 3's part references the blob of UID 9, which comes later in the dump.
  const later = '090ac53d782deec4863014a22b792c8e51379e0a9910810b26c96e43fa7d24c0';
  const dump = await reseal(readFileSync(V2), {
    'users/alice/mailboxes/INBOX/3.json': editRecord((o) => ((o['parts'] as { sha256?: string }[])[1]!.sha256 = later)),
  });
  const r = readDumpPyBytes(t, dump);
  t.is(r.status, 65, r.stdout);
  t.is(r.stderr, `read_dump.py: ${STUB}: uses blobs/09/${later}, which was not read before it (order)\n`);
});

pyTest('read_dump.py rejects a flag table whose UIDs do not ascend (13)', async (t) => {
  // INBOX's table holds UIDs 1, 2, 4: swap the first two (same length), record check recomputed.
  const dump = await reseal(readFileSync(V3), {
    'users/alice/mailboxes/INBOX/flags.1.json': editRecord((o) => {
      const e = o['entries'] as { uid: number }[];
      [e[0], e[1]] = [e[1]!, e[0]!];
    }),
  });
  const r = readDumpPyBytes(t, dump);
  t.is(r.status, 65, r.stdout);
  t.is(r.stderr, 'read_dump.py: users/alice/mailboxes/INBOX/flags.1.json: UID 1 is not above UID 2 (UIDs must ascend)\n');
});

pyTest('read_dump.py rejects flag tables whose UIDs do not ascend across the tables of a mailbox (13)', async (t) => {
  // A version 4 incremental with two flag tables (UIDs 1, 2 and 3, 4) and a new message; then the
  // second table's first UID made 2: each table ascends on its own, the mailbox's tables do not.
  const good = await incrementalWithTwoFlagTables();
  const ok = readDumpPyBytes(t, good);
  t.is(ok.status, 0, ok.stderr);
  const dump = await reseal(good, {
    'users/alice@example.org/mailboxes/INBOX/flags.2.json': editRecord((o) => ((o['entries'] as { uid: number }[])[0]!.uid = 2)),
  });
  const r = readDumpPyBytes(t, dump);
  t.is(r.status, 65, r.stdout);
  t.is(r.stderr, 'read_dump.py: users/alice@example.org/mailboxes/INBOX/flags.2.json: UID 2 is not above UID 2 (UIDs must ascend)\n');
});

pyTest('reseal leaves a dump that read_dump.py still reads when nothing is changed', async (t) => {
  // The helper itself: resealing with an identity edit gives back the same bytes.
  for (const file of [V2, V3, 'test/fixtures/dumps/v4-basic.mvd']) {
    const dump = readFileSync(file);
    t.true((await reseal(dump, { 'mailvault/header.json': (m) => m.data })).equals(dump), file);
  }
});

pyTest('read_dump.py: in an incremental a \\NoSelect level carries no reset or uidSet, a selectable mailbox must (13)', async (t) => {
  // backup writes a \NoSelect level's record as in a full dump (no reset, no uidSet): an IMAP
  // folder with \Noselect, say. Such an incremental is sound; both readers take it.
  const user = 'alice@example.org';
  const out = collector();
  const header = { ...HEADER, kind: 'incremental' as const, base: { runId: '00000000-0000-4000-8000-00000000000b', created: '2026-11-27T14:00:00Z' } };
  const writer = await DumpWriter.create(out.stream, header, { incremental: true });
  await writer.writeUser({ user, subscriptions: [] });
  await writer.writeMailbox({ ...mailbox(user, 'Archive', []).record, selectable: false, uidNext: 1, messageCount: 0 });
  await writer.writeMailbox({ ...mailbox(user, 'INBOX', []).record, uidSet: '', reset: false });
  await writer.finish();
  const sound = out.bytes();
  const ok = readDumpPyBytes(t, sound);
  t.is(ok.status, 0, ok.stderr);
  t.deepEqual((await readAll(chunked(sound))).entries.map((e) => e.type), ['header', 'user', 'mailbox', 'mailbox', 'trailer']);
  // The writer refuses INBOX without them; the same dump with both keys taken out of INBOX's record
  // (a metadata entry keeps its length, so the edit is the dump's only defect):
  const member = `users/${user}/mailboxes/INBOX/mailbox.json`;
  const broken = await reseal(sound, {
    [member]: editRecord((o) => {
      delete o['uidSet'];
      delete o['reset'];
      o['metadata'] = { p: 'x'.repeat('"uidSet":"","reset":false,'.length - '"p":""'.length) };
    }),
  });
  const r = readDumpPyBytes(t, broken);
  t.is(r.status, 65, r.stdout);
  t.regex(r.stderr, /INBOX\/mailbox\.json: mailbox record of an incremental without reset or uidSet/);
  const err = await t.throwsAsync(readAll(chunked(broken)), { instanceOf: ArchiveCorruptError });
  t.regex(err!.message, /record of selectable mailbox "INBOX" in an incremental dump lacks "reset"/);
  t.is(err!.context.member, member);
});
