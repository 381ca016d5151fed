// backup --imap of a user equals backup --location of the same user, message for message, against a
// private Dovecot 2.3 (sdbox + SIS): same mailboxes and state, same UIDs, GUIDs, flags, keywords,
// INTERNALDATE, and the same bytes as IMAP serves them (Dovecot stores LF and serves CRLF, so the dump
// from files holds LF where the dump over IMAP holds CRLF: the one difference, and the only one allowed).
import test from 'ava';
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readDump } from '../../src/archive/reader.js';
import type { MailboxRecord, MessageRecord } from '../../src/archive/records.js';
import { requireDovecot, startDovecot, type DovecotInstance } from '../helpers/dovecot.js';
import { toCrlf } from '../helpers/fingerprint.js';
import { appendMessage, connectImap, createMailboxes, expungeUids, generateMessage, storeFlags } from '../helpers/populate.js';
import { DumpWriter } from '../../src/archive/writer.js';
import { backup, defaultBackupOptions } from '../../src/operations/backup.js';
import { CursorRecorder } from '../../src/operations/cursors.js';
import { openImapStore } from '../../src/storage/imap/index.js';
import type { MailStore, MessageSource } from '../../src/storage/types.js';
import { ServerUnavailableError } from '../../src/core/errors.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const projectRoot = path.resolve(here, '../../..');
const commandsDir = path.resolve(here, '../../src/commands');

if (requireDovecot(test)) registerTests();

interface Dumped {
  mailboxes: Map<string, MailboxRecord>;
  messages: Map<string, { record: MessageRecord; body: Buffer }>;
  subscriptions: readonly string[];
  source: string;
}

async function readWhole(file: string): Promise<Dumped> {
  const out: Dumped = { mailboxes: new Map(), messages: new Map(), subscriptions: [], source: '' };
  for await (const e of readDump(createReadStream(file))) {
    if (e.type === 'header') out.source = `${e.record.source.driver} ${e.record.source.location}`;
    if (e.type === 'user') out.subscriptions = e.record.subscriptions;
    if (e.type === 'mailbox') out.mailboxes.set(e.record.name, e.record);
    if (e.type === 'message') {
      const parts: Buffer[] = [];
      for await (const c of e.openBody()) parts.push(c as Buffer);
      out.messages.set(`${e.record.mailbox} ${e.record.uid}`, { record: e.record, body: Buffer.concat(parts) });
    }
  }
  return out;
}

/** `store` as a MessageSource whose readers run `before(message)` right before a body is opened. */
function beforeEachBody(store: MailStore, before: (uid: number) => Promise<void>, close: () => Promise<void> = () => store.close()): MessageSource {
  return {
    driverName: store.driverName,
    capabilities: store.capabilities,
    user: store.user,
    listMailboxes: () => store.listMailboxes(),
    ...(store.listMailboxEntries ? { listMailboxEntries: () => store.listMailboxEntries!() } : {}),
    listSubscriptions: () => store.listSubscriptions(),
    openMailbox: async (name) => {
      const reader = await store.openMailbox(name);
      return {
        info: reader.info,
        messages: (o) => reader.messages(o),
        openMessage: async (m, o) => {
          await before(m.uid);
          return reader.openMessage(m, o);
        },
        close: () => reader.close(),
      };
    },
    close,
  };
}

function registerTests(): void {
  let dv: DovecotInstance;
  let work: string;
  let runner: string;
  test.before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'mv-imapbackup-'));
    runner = path.join(work, 'run-command.mjs');
    await writeFile(runner, `const [, , mod, root, ...args] = process.argv;\nconst C = (await import(mod)).default;\ntry { await C.run(args, { root }); } catch (e) { if (e?.oclif?.exit === undefined) console.error(e); process.exitCode = e?.oclif?.exit ?? 1; }\n`);
    dv = await startDovecot();
  });
  test.after.always(async () => {
    await dv?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  function run(args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [runner, path.join(commandsDir, 'backup.js'), projectRoot, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.once('close', (code) => resolve({ code: code ?? -1, stderr }));
    });
  }

  test('backup --imap equals backup --location of the same user, message for message (bytes as served, and state)', async (t) => {
    const user = await dv.addUser(`b-${randomBytes(3).toString('hex')}`, 'sdbox');
    const client = await connectImap(dv, user);
    await createMailboxes(client, ['Archive/2025', 'Ünïcødé ✓', 'R&D']);
    await createMailboxes(client, ['Unsubscribed'], { subscribe: false });
    let n = 0;
    for (const box of ['INBOX', 'Archive/2025', 'Ünïcødé ✓', 'R&D', 'Unsubscribed']) {
      for (let i = 0; i < 4; i++) {
        const m = generateMessage(17, n++);
        await appendMessage(client, box, m.raw, { internalDate: new Date(Date.UTC(2025, 0, 1) + n * 3_600_000), flags: n % 2 ? ['\\Seen'] : [] });
      }
    }
    await storeFlags(client, 'INBOX', [1, 2], { add: ['\\Flagged', 'Project_X', '$Label1'] });
    await storeFlags(client, 'Archive/2025', [3], { add: ['\\Answered', '\\Deleted'] });
    await client.logout();

    const viaFiles = path.join(work, 'files.mvd');
    const viaImap = path.join(work, 'imap.mvd.zst');
    const a = await run(['--location', user.mailLocationAbsolute, '--attachment-dir', dv.attachmentDir, '--user', user.name, '-o', viaFiles]);
    t.is(a.code, 0, a.stderr);
    const b = await run(['--imap', `imap://127.0.0.1:${dv.imapPort}`, '--master-user', dv.masterUser, '--user', user.name, '--compress', 'zstd:3', '-o', viaImap], { MAILVAULT_IMAP_PASSWORD: dv.masterPassword });
    t.is(b.code, 0, b.stderr);

    const files = await readWhole(viaFiles);
    const imap = await readWhole(viaImap);
    t.regex(imap.source, new RegExp(`^imap imap://127\\.0\\.0\\.1:${dv.imapPort}$`));
    t.deepEqual([...imap.mailboxes.keys()].sort(), [...files.mailboxes.keys()].sort(), `files: ${[...files.mailboxes.keys()].join('|')} imap: ${[...imap.mailboxes.keys()].join('|')}`);
    t.deepEqual(imap.subscriptions, files.subscriptions);
    const mailboxState = (m: MailboxRecord) => ({ name: m.name, uidValidity: m.uidValidity, uidNext: m.uidNext, highestModseq: m.highestModseq, messageCount: m.messageCount, subscribed: m.subscribed, selectable: m.selectable, specialUse: m.specialUse });
    for (const [name, rec] of files.mailboxes) t.deepEqual(mailboxState(imap.mailboxes.get(name)!), mailboxState(rec), `mailbox ${name}`);
    t.is(imap.messages.size, 20);
    t.deepEqual([...imap.messages.keys()].sort(), [...files.messages.keys()].sort());
    const state = (r: MessageRecord) => ({ uid: r.uid, guid: r.guid, flags: r.flags, keywords: r.keywords, internalDate: r.internalDate, saveDate: r.saveDate, modseq: r.modseq, summary: r.summary });
    for (const [key, f] of files.messages) {
      const i = imap.messages.get(key)!;
      t.deepEqual(state(i.record), state(f.record), `${key}: state`);
      t.true(i.body.equals(toCrlf(f.body)), `${key}: the IMAP dump holds the served form of the stored bytes`);
      t.is(i.record.size, toCrlf(f.body).length);
    }
  });

  test('backup --imap incrementals: a mailbox whose STATUS (CONDSTORE) is unchanged is not read; a flag change is carried', async (t) => {
    const user = await dv.addUser(`i-${randomBytes(3).toString('hex')}`, 'sdbox');
    const client = await connectImap(dv, user);
    await createMailboxes(client, ['Quiet', 'Busy']);
    for (const box of ['INBOX', 'Quiet', 'Busy']) for (let i = 0; i < 3; i++) await appendMessage(client, box, generateMessage(23, i).raw);
    const imap = ['--imap', `imap://127.0.0.1:${dv.imapPort}`, '--master-user', dv.masterUser, '--user', user.name];
    const env = { MAILVAULT_IMAP_PASSWORD: dv.masterPassword };
    const state = path.join(work, `${user.name}.state.json`);
    const full = await run([...imap, '--state-file', state, '-o', path.join(work, `${user.name}-full.mvd`)], env);
    t.is(full.code, 0, full.stderr);
    const idle = await run([...imap, '--since', `@${state}`, '--state-file', state, '-o', path.join(work, `${user.name}-idle.mvd`)], env);
    t.is(idle.code, 0, idle.stderr);
    t.regex(idle.stderr, /backup: 3 mailboxes unchanged \(3 not read/);

    await storeFlags(client, 'Busy', [2], { add: ['\\Flagged'] });
    await client.logout();
    const incFile = path.join(work, `${user.name}-inc.mvd`);
    const inc = await run([...imap, '--since', `@${state}`, '--state-file', state, '-o', incFile], env);
    t.is(inc.code, 0, inc.stderr);
    t.regex(inc.stderr, /backup: 2 mailboxes unchanged \(2 not read/);
    t.regex(inc.stderr, /Busy: 0 new, 1 flag entries, 0 expunged/);
    const flagged: string[] = [];
    for await (const e of readDump(createReadStream(incFile))) if (e.type === 'flags') for (const x of e.record.entries) flagged.push(`${e.record.mailbox} ${x.uid} ${x.flags.join(',')}`);
    t.deepEqual(flagged, ['Busy 2 \\Flagged']);
  });

  test('backup --imap: a wrong password exits 77 and leaves no dump; no password source is a usage error', async (t) => {
    const user = await dv.addUser(`b-${randomBytes(3).toString('hex')}`, 'sdbox');
    const out = path.join(work, 'never.mvd');
    const pw = path.join(work, 'bad.pw');
    await writeFile(pw, 'wrong\n');
    const r = await run(['--imap', `imap://127.0.0.1:${dv.imapPort}`, '--master-user', dv.masterUser, '--password-file', pw, '--user', user.name, '-o', out]);
    t.is(r.code, 77, r.stderr);
    await t.throwsAsync(import('node:fs/promises').then((fs) => fs.stat(out)));
    await t.throwsAsync(import('node:fs/promises').then((fs) => fs.stat(`${out}.partial`)));
    const noUser = await run(['--imap', `imap://127.0.0.1:${dv.imapPort}`, '--all-users', '-o', out], { MAILVAULT_IMAP_PASSWORD: 'x' });
    t.is(noUser.code, 2, noUser.stderr);
  });

  test('backup --imap: a message expunged by another session after the listing is skipped and named; the run goes on and the dump is whole', async (t) => {
    const user = await dv.addUser(`x-${randomBytes(3).toString('hex')}`, 'maildir');
    const client = await connectImap(dv, user);
    // UID 4 is over 1 MiB: its body streams to the writer instead of being collected first.
    const big = Buffer.concat([generateMessage(31, 3).raw, Buffer.from(`${'x'.repeat(76)}\n`.repeat(20_000))]);
    for (let i = 0; i < 5; i++) await appendMessage(client, 'INBOX', i === 3 ? big : generateMessage(31, i).raw);
    const store = await openImapStore({ url: `imap://127.0.0.1:${dv.imapPort}`, user: user.name, masterUser: dv.masterUser, password: dv.masterPassword });
    // The real server, the real expunge: only its moment is chosen, after the listing and before the
    // first body is fetched (the reader fetches the small bodies after it in the same batch, so an
    // expunge right before UID 2 is opened would come after its body was read: backed up, rightly).
    const source = beforeEachBody(store, async (uid) => {
      if (uid === 1) await expungeUids(client, 'INBOX', [2, 4]);
    });
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const runId = randomUUID();
    const created = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const writer = await DumpWriter.create(out, { creator: 't', created, runId, kind: 'full', base: null, source: { driver: 'imap', location: 'imap://127.0.0.1', host: 't' }, options: {} });
    const recorder = new CursorRecorder(runId, created);
    const summary = await backup([user.name], async () => source, writer, defaultBackupOptions({ recorder }));
    await writer.finish();
    await client.logout();
    t.deepEqual(summary.skipped.map((s) => `${s.mailbox} ${s.uid} ${s.code}`), ['INBOX 2 STORAGE_NOT_FOUND', 'INBOX 4 STORAGE_NOT_FOUND']);
    t.is(summary.messages, 3);
    const file = path.join(work, `${user.name}.mvd`);
    await writeFile(file, Buffer.concat(chunks));
    const dumped = await readWhole(file);
    t.deepEqual([...dumped.messages.keys()], ['INBOX 1', 'INBOX 3', 'INBOX 5']);
    t.is(recorder.state().users[user.name]?.find((m) => m.name === 'INBOX')?.uidSet, '1,3,5', 'the cursor does not claim the skipped UIDs');
  });

  test('backup --imap: the server stopping in the middle of the bodies fails the run with ServerUnavailableError (exit 75), not a skipped message', async (t) => {
    const own = await startDovecot();
    try {
      const user = await own.addUser(`s-${randomBytes(3).toString('hex')}`, 'maildir');
      const client = await connectImap(own, user);
      for (let i = 0; i < 4; i++) await appendMessage(client, 'INBOX', generateMessage(37, i).raw);
      await client.logout();
      const store = await openImapStore({ url: `imap://127.0.0.1:${own.imapPort}`, user: user.name, masterUser: own.masterUser, password: own.masterPassword });
      const source = beforeEachBody(
        store,
        async (uid) => {
          if (uid === 3) await own.stop();
        },
        () => store.close().catch(() => undefined),
      );
      const out = new PassThrough();
      out.resume();
      const created = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      const writer = await DumpWriter.create(out, { creator: 't', created, runId: randomUUID(), kind: 'full', base: null, source: { driver: 'imap', location: 'imap://127.0.0.1', host: 't' }, options: {} });
      const err = await t.throwsAsync(backup([user.name], async () => source, writer, defaultBackupOptions()), { instanceOf: ServerUnavailableError });
      t.is(err!.exitCode, 75);
      t.is(err!.context.uid, 3, err!.message);
      await writer.abort(err!);
    } finally {
      await own.stop().catch(() => undefined);
    }
  });
}
