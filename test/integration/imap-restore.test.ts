// restore --imap against a private Dovecot 2.3 (sdbox + SIS, master user), through the CLI as a user
// runs it: a deleted mail restored by --message-id comes back byte-identical with flags, keywords and
// INTERNALDATE, an IDLE client is told, SIS deduplicates its attachment; reruns add nothing; a restore
// killed halfway (SIGKILL) or cut by a server stop (exit 75) completes on rerun with every mail exactly
// once; a wrong master password exits 77 having written nothing.
import test from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, lstat, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ImapFlow } from 'imapflow';
import { requireDovecot, startDovecot, type DovecotInstance, type DovecotUser } from '../helpers/dovecot.js';
import { fingerprintUser, storedMessage, type MessageFingerprint } from '../helpers/fingerprint.js';
import { appendMessage, connectImap, createMailboxes, expungeUids } from '../helpers/populate.js';
import { parseLocation } from '../../src/storage/location.js';
import { openMaildirStore } from '../../src/storage/maildir/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The IMAP APPEND spool directories in the temp directory (storage/imap/save.ts). */
async function spoolDirs(): Promise<string[]> {
  return (await readdir(os.tmpdir())).filter((n) => n.startsWith('mailvault-imap-'));
}
const projectRoot = path.resolve(here, '../../..');
const commandsDir = path.resolve(here, '../../src/commands');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let runnerFile = '';
/** Runs a mailvault command of THIS build in a child process (so it can be killed); the password comes from the environment. */
function startCommand(command: string, args: readonly string[], env: Record<string, string> = {}): { child: ChildProcess; done: Promise<Run> } {
  const child = spawn(process.execPath, [runnerFile, path.join(commandsDir, `${command}.js`), projectRoot, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<Run>((resolve) => child.once('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr })));
  return { child, done };
}
const runCommand = (command: string, args: readonly string[], env: Record<string, string> = {}): Promise<Run> => startCommand(command, args, env).done;

if (requireDovecot(test)) registerTests();

function registerTests(): void {
  let dv: DovecotInstance;
  let work: string;
  test.before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'mv-imaprestore-'));
    runnerFile = path.join(work, 'run-command.mjs');
    await writeFile(
      runnerFile,
      `const [, , mod, root, ...args] = process.argv;
const C = (await import(mod)).default;
try { await C.run(args, { root }); } catch (e) { if (e?.oclif?.exit === undefined) console.error(e); process.exitCode = e?.oclif?.exit ?? 1; }
`,
    );
    dv = await startDovecot();
  });
  test.after.always(async () => {
    await dv?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  let counter = 0;
  const freshUser = (instance: DovecotInstance = dv): Promise<DovecotUser> => instance.addUser(`r${++counter}-${randomBytes(3).toString('hex')}`, 'sdbox');
  const imapArgs = (instance: DovecotInstance = dv): string[] => ['--imap', `imap://127.0.0.1:${instance.imapPort}`, '--master-user', instance.masterUser];
  const env = (instance: DovecotInstance = dv): Record<string, string> => ({ MAILVAULT_IMAP_PASSWORD: instance.masterPassword });

  async function backupLocation(instance: DovecotInstance, user: DovecotUser, name: string, extra: string[] = []): Promise<string> {
    const out = path.join(work, name);
    const r = await runCommand('backup', ['--location', user.mailLocationAbsolute, '--attachment-dir', instance.attachmentDir, '--user', user.name, '-o', out, ...extra]);
    if (r.code !== 0) throw new Error(`backup failed (${r.code}): ${r.stderr}`);
    return out;
  }

  /** Size of the attachment store, each inode counted once (SIS hard-links duplicates). */
  async function attachmentStoreBytes(dir: string): Promise<number> {
    const seen = new Set<number>();
    let total = 0;
    const walk = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) await walk(p);
        else {
          const st = await lstat(p);
          if (!seen.has(st.ino)) {
            seen.add(st.ino);
            total += st.size;
          }
        }
      }
    };
    await walk(dir);
    return total;
  }

  function withAttachment(id: string, text: string, attachment: Buffer): Buffer {
    const b64 = attachment.toString('base64').replace(/.{76}/g, '$&\n').replace(/\n$/, '');
    return Buffer.from(
      `From: Carol <carol@example.org>\nTo: someone@example.org\nSubject: ${text}\nMessage-ID: <${id}>\nDate: Tue, 3 Nov 2026 10:00:00 +0000\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b1"\n\n--b1\nContent-Type: text/plain; charset=utf-8\n\n${text}\n--b1\nContent-Type: application/octet-stream; name="report.bin"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename="report.bin"\n\n${b64}\n--b1--\n`,
    );
  }
  const plain = (i: number, tag: string): Buffer => Buffer.from(`From: bulk@example.org\nSubject: ${tag} ${i}\nMessage-ID: <${tag}.${i}@example.org>\n\nmessage ${i} of ${tag}\n${'lorem ipsum '.repeat(i % 50)}\n`);

  async function messageCount(client: ImapFlow, mailbox: string): Promise<number> {
    try {
      return ((await client.status(mailbox, { messages: true })) as { messages?: number }).messages ?? 0;
    } catch {
      return 0;
    }
  }

  const identity = (m: MessageFingerprint): string => `${m.sha256} ${m.internalDate} ${m.flags.join(',')} ${m.keywords.join(',')}`;
  const mailboxOf = async (instance: DovecotInstance, user: string, name: string): Promise<MessageFingerprint[]> => (await fingerprintUser(instance, user)).mailboxes.find((b) => b.name === name)?.messages ?? [];

  test.serial('a deleted mail restored by --message-id from a full dump: identical, IDLE told, attachment deduplicated, rerun adds nothing', async (t) => {
    const user = await freshUser();
    const attachment = randomBytes(48 * 1024);
    const client = await connectImap(dv, user);
    await createMailboxes(client, ['Projects/2026']);
    const target = withAttachment('report-1@example.org', 'Quarterly report', attachment);
    await appendMessage(client, 'INBOX', plain(1, 'hello'), { internalDate: new Date('2026-11-01T08:00:00Z') });
    const uid = await appendMessage(client, 'INBOX', target, { flags: ['\\Seen', '\\Flagged', 'Project_X', '$Label2'], internalDate: new Date('2026-11-03T10:00:07Z') });
    // the same attachment in another mail stays, so Dovecot can link the restored one to it
    await appendMessage(client, 'Projects/2026', withAttachment('report-copy@example.org', 'Forwarded report', attachment), { internalDate: new Date('2026-11-04T09:00:00Z') });
    const before = await mailboxOf(dv, user.name, 'INBOX');
    const original = before.find((m) => m.uid === uid)!;
    const storedBefore = await storedMessage(dv, user.name, 'INBOX', uid);
    const dump = await backupLocation(dv, user, 'full-1.mvd.zst', ['--compress', 'zstd:3']);

    await expungeUids(client, 'INBOX', [uid]);
    await client.logout();
    t.is((await mailboxOf(dv, user.name, 'INBOX')).length, 1);
    const storeBefore = await attachmentStoreBytes(dv.attachmentDir);

    const watcher = await connectImap(dv, user, { asMaster: false });
    watcher.on('error', () => undefined);
    await watcher.mailboxOpen('INBOX');
    const told = new Promise<number>((resolve) => watcher.on('exists', (e: { count: number }) => resolve(e.count)));
    const idling = watcher.idle();
    try {
      const r = await runCommand('restore', [dump, ...imapArgs(), '--user', user.name, '--message-id', '<report-1@example.org>', '--json'], env());
      t.is(r.code, 0, r.stderr);
      const result = JSON.parse(r.stdout) as { dumps: { messages: number; access: string; alreadyPresent: number }[] };
      t.is(result.dumps[0]!.messages, 1);
      t.is(result.dumps[0]!.access, 'random-access', 'a dump file and one message: trailer, TOC and that message only');
      const count = await Promise.race([told, new Promise<number>((_, reject) => setTimeout(() => reject(new Error('the IDLE client got no EXISTS within 10 s')), 10_000))]);
      t.is(count, 2, 'the IDLE client was told of the restored mail');
    } finally {
      await watcher.logout().catch(() => undefined);
      await idling.catch(() => undefined);
    }

    const after = await mailboxOf(dv, user.name, 'INBOX');
    t.is(after.length, 2);
    const back = after.find((m) => m.uid !== before[0]!.uid)!;
    t.deepEqual(identity(back), identity(original), 'same bytes as served, INTERNALDATE, flags and keywords');
    t.is(back.size, original.size);
    t.true((await storedMessage(dv, user.name, 'INBOX', back.uid)).equals(storedBefore), 'stored bytes are identical');
    const grew = (await attachmentStoreBytes(dv.attachmentDir)) - storeBefore;
    t.true(grew < attachment.length / 2, `the attachment store grew by ${grew} bytes for a ${attachment.length}-byte attachment: Dovecot should have linked it`);

    const again = await runCommand('restore', [dump, ...imapArgs(), '--user', user.name, '--message-id', '<report-1@example.org>', '--json'], env());
    t.is(again.code, 0, again.stderr);
    const second = JSON.parse(again.stdout) as { dumps: { messages: number; alreadyPresent: number }[] };
    t.deepEqual([second.dumps[0]!.messages, second.dumps[0]!.alreadyPresent], [0, 1]);
    t.is((await mailboxOf(dv, user.name, 'INBOX')).length, 2);

    // a deleted mailbox is recreated, and --to-mailbox puts a copy elsewhere
    const c2 = await connectImap(dv, user);
    await c2.mailboxDelete('Projects/2026');
    await c2.logout();
    const sub = await runCommand('restore', [dump, ...imapArgs(), '--user', user.name, '--subject', 'forwarded'], env());
    t.is(sub.code, 0, sub.stderr);
    t.is((await mailboxOf(dv, user.name, 'Projects/2026')).length, 1);
    const moved = await runCommand('restore', [dump, ...imapArgs(), '--user', user.name, '--message-id', 'report-1@example.org', '--to-mailbox', 'Restored'], env());
    t.is(moved.code, 0, moved.stderr);
    t.deepEqual((await mailboxOf(dv, user.name, 'Restored')).map(identity), [identity(original)]);
  });

  test.serial('a whole mailbox goes in MULTIAPPEND batches: every message once, in the original order, with its bytes, flags, keywords and INTERNALDATE; one over 1 MiB goes alone; a rerun adds nothing', async (t) => {
    const source = await freshUser();
    const client = await connectImap(dv, source);
    const flagSets: string[][] = [[], ['\\Seen'], ['\\Seen', '\\Answered'], ['\\Flagged', '$Forwarded'], ['\\Draft', 'Work', 'NonJunk'], ['\\Deleted']];
    for (let i = 0; i < 150; i++) {
      // Sizes from a few hundred bytes to ~60 KB; dates out of order; message 70 over 1 MiB.
      const filler = i === 70 ? `${'x'.repeat(1023)}\n`.repeat(1100) : randomBytes((i * 7919) % 45_000).toString('base64').replace(/.{76}/g, '$&\n');
      const body = Buffer.concat([plain(i, 'batch'), Buffer.from(filler)]);
      await appendMessage(client, 'INBOX', body, { flags: flagSets[i % flagSets.length]!, internalDate: new Date(Date.UTC(2020 + (i % 5), (i * 5) % 12, 1 + (i % 28), i % 24, (i * 13) % 60, (i * 29) % 60)) });
    }
    await client.logout();
    const before = await mailboxOf(dv, source.name, 'INBOX');
    t.is(before.length, 150);
    const dump = await backupLocation(dv, source, 'batch.mvd');
    const target = await freshUser();
    const started = Date.now();
    const r = await runCommand('restore', [dump, ...imapArgs(), '--user', source.name, '--to-user', target.name, '--json'], env());
    t.is(r.code, 0, r.stderr);
    t.log(`150 messages restored through IMAP in ${Date.now() - started} ms (whole command)`);
    const after = await mailboxOf(dv, target.name, 'INBOX');
    t.deepEqual(after.map(identity), before.map(identity), 'the same messages, in the same order (UIDs ascending as in the source)');
    t.deepEqual(after.map((m) => m.size), before.map((m) => m.size));
    const again = await runCommand('restore', [dump, ...imapArgs(), '--user', source.name, '--to-user', target.name, '--json'], env());
    t.is(again.code, 0, again.stderr);
    const second = JSON.parse(again.stdout) as { dumps: { messages: number; alreadyPresent: number }[] };
    t.deepEqual([second.dumps[0]!.messages, second.dumps[0]!.alreadyPresent], [0, 150]);
    t.is((await mailboxOf(dv, target.name, 'INBOX')).length, 150);
  });

  test.serial('a subscription IMAP cannot hold (its mailbox is gone) is named in a warning, not dropped unsaid', async (t) => {
    const user = await freshUser();
    const client = await connectImap(dv, user);
    await createMailboxes(client, ['Real', 'Gone']);
    await appendMessage(client, 'Real', plain(1, 'subs'));
    // Deleting a mailbox keeps its subscription (LSUB still lists it).
    await client.mailboxDelete('Gone');
    await client.logout();
    const dump = await backupLocation(dv, user, 'subs.mvd');
    const target = await freshUser();
    const r = await runCommand('restore', [dump, ...imapArgs(), '--user', user.name, '--to-user', target.name], env());
    t.is(r.code, 0, r.stderr);
    t.regex(r.stderr, new RegExp(`warning: ${target.name}: the subscription to "Gone" was not restored: .*the server answered NO: Mailbox doesn.t exist`));
    const subscriptions = async (u: string): Promise<string[]> => (await dv.doveadmOk(['mailbox', 'list', '-s', '-u', u])).split('\n').filter((l) => l !== '').sort();
    t.true((await subscriptions(user.name)).includes('Gone'), 'the source keeps the subscription');
    t.deepEqual(await subscriptions(target.name), (await subscriptions(user.name)).filter((n) => n !== 'Gone'));
  });

  test.serial('a message the server changes when it saves it (SIS re-encodes a non-canonical base64 attachment): a rerun finds it, says so, and adds nothing', async (t) => {
    // 3001 bytes: the base64 ends in one byte and "==", whose character carries 4 padding bits that
    // must be zero; here they are not. Legal enough that mail carries it; Dovecot with
    // mail_attachment_dir stores the decoded attachment and serves it re-encoded, canonical.
    const data = randomBytes(3001);
    const lines = data.toString('base64').replace(/.{76}/g, '$&\n').replace(/\n$/, '').split('\n');
    const last = lines[lines.length - 1]!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const c = last[last.length - 3]!;
    lines[lines.length - 1] = `${last.slice(0, -3)}${alphabet[alphabet.indexOf(c) | 1]}==`;
    const raw = Buffer.from(
      `From: Carol <carol@example.org>\nTo: someone@example.org\nSubject: odd padding\nMessage-ID: <odd-padding@example.org>\nDate: Tue, 3 Nov 2026 10:00:00 +0000\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b1"\n\n--b1\nContent-Type: text/plain\n\nsee attached\n--b1\nContent-Type: application/octet-stream; name="x.bin"\nContent-Transfer-Encoding: base64\n\n${lines.join('\n')}\n--b1--\n`,
    );
    const source = await dv.addUser(`odd${++counter}-${randomBytes(3).toString('hex')}`, 'maildir');
    const client = await connectImap(dv, source);
    await appendMessage(client, 'INBOX', raw, { internalDate: new Date('2026-11-03T10:00:07Z') });
    await client.logout();
    const dump = await backupLocation(dv, source, 'odd-padding.mvd');
    const target = await freshUser();
    const first = await runCommand('restore', [dump, ...imapArgs(), '--user', source.name, '--to-user', target.name], env());
    t.is(first.code, 0, first.stderr);
    const stored = (await mailboxOf(dv, target.name, 'INBOX'))[0]!;
    const original = (await mailboxOf(dv, source.name, 'INBOX'))[0]!;
    t.not(stored.sha256, original.sha256, 'this Dovecot changes the bytes (else the test shows nothing)');
    for (let run = 0; run < 2; run++) {
      const again = await runCommand('restore', [dump, ...imapArgs(), '--user', source.name, '--to-user', target.name], env());
      t.is(again.code, 0, again.stderr);
      t.regex(again.stderr, /restored 0 messages .* 1 already present/);
      t.regex(again.stderr, /warning: .* INBOX: 1 messages \(UID 1 in the dump\) are on the server with other body bytes than in the dump/);
      t.is((await mailboxOf(dv, target.name, 'INBOX')).length, 1, `no copy added by rerun ${run + 1}`);
    }
  });

  test.serial('a mailbox name the server refuses to CREATE (NO [CANNOT]) is left out and named; the others are restored, exit 3', async (t) => {
    // sdbox takes "a.b" (its separator is "/"); a Maildir++ user of the same Dovecot cannot.
    const source = await freshUser();
    const client = await connectImap(dv, source);
    await createMailboxes(client, ['a.b', 'a/b', 'z']);
    for (const name of ['INBOX', 'a.b', 'a/b', 'z']) await appendMessage(client, name, plain(1, `in ${name}`));
    await client.logout();
    const dump = await backupLocation(dv, source, 'cannot.mvd');
    const target = await dv.addUser(`pp${++counter}-${randomBytes(3).toString('hex')}`, 'maildir');
    const r = await runCommand('restore', [dump, ...imapArgs(), '--user', source.name, '--to-user', target.name], env());
    t.is(r.code, 3, r.stderr);
    t.regex(r.stderr, /mailbox "a\.b" was not restored: mailbox name "a\.b" cannot be created on .*NO \[CANNOT\]/);
    t.regex(r.stderr, /1 mailboxes \(1 messages\) not restored/);
    const got = await fingerprintUser(dv, target.name);
    t.deepEqual(got.mailboxes.filter((b) => b.selectable).map((b) => `${b.name}:${b.messages.length}`).sort(), ['INBOX:1', 'a/b:1', 'z:1']);
  });

  test.serial('keywords IMAP cannot carry (8-bit, atom-specials; a Maildir dump may hold them) or the server refuses (too long) are left out and named, the message restored with the others; a 0-byte message is named, not sent; exit 3', async (t) => {
    // A Maildir written through mailvault's driver: its dovecot-keywords takes any text without white space.
    const root = path.join(work, 'kw-maildir', 'Maildir');
    const store = await openMaildirStore(parseLocation(`maildir:${root}`, { user: 'kw', home: path.dirname(root) }), 'kw', { create: true, hostname: 'testhost', lockTimeoutMs: 2000 });
    const body = plain(1, 'keywords');
    const tx = await store.beginSave('INBOX');
    const long = `Label-${'x'.repeat(60)}`; // an atom, over Dovecot's mail_max_keyword_length (50)
    await tx.save({ flags: ['\\Seen'], keywords: ['Ärger', 'Work', 'a]b', '$Forwarded', long], internalDate: 1_790_000_000, size: body.length }, body);
    await tx.commit();
    // A message of 0 bytes (Dovecot refuses to APPEND one) in a second mailbox, after which a third comes.
    await store.createMailbox({ name: 'empty' });
    const etx = await store.beginSave('empty');
    await etx.save({ flags: [], keywords: [], internalDate: 1_790_000_000, size: 0 }, Buffer.alloc(0));
    await etx.save({ flags: [], keywords: [], internalDate: 1_790_000_000, size: body.length }, body);
    await etx.commit();
    // INTERNALDATEs Dovecot does not keep: in the future (APPEND gives the time of saving), before 1970.
    await store.createMailbox({ name: 'dates' });
    const dtx = await store.beginSave('dates');
    const future = plain(2, 'future');
    const past = plain(3, 'past');
    await dtx.save({ flags: [], keywords: [], internalDate: 4_102_444_800, size: future.length }, future);
    await dtx.save({ flags: [], keywords: [], internalDate: -315_619_200, size: past.length }, past);
    await dtx.commit();
    await store.createMailbox({ name: 'zlast' });
    const ztx = await store.beginSave('zlast');
    await ztx.save({ flags: [], keywords: [], internalDate: 1_790_000_000, size: body.length }, body);
    await ztx.commit();
    await store.close();
    const dump = path.join(work, 'kw.mvd');
    const b = await runCommand('backup', ['--location', `maildir:${root}`, '--user', 'kw', '-o', dump]);
    t.is(b.code, 0, b.stderr);
    const target = await freshUser();
    const r = await runCommand('restore', [dump, ...imapArgs(), '--user', 'kw', '--to-user', target.name], env());
    t.is(r.code, 3, r.stderr);
    t.true(r.stderr.includes(`INBOX: 1 messages (UID 1 in the dump) restored without 3 keywords ${long} a]b Ärger: IMAP keywords are ASCII atoms`), r.stderr);
    t.regex(r.stderr, /the server refused an APPEND for its keywords \(NO \[CANNOT\] Keyword length too long; Dovecot limits/);
    t.regex(r.stderr, /empty: 1 messages of 0 bytes \(UID 1 in the dump\) not restored: an IMAP server does not store a message without bytes/);
    t.is((await mailboxOf(dv, target.name, 'empty')).length, 1, 'the other message of that mailbox');
    t.is((await mailboxOf(dv, target.name, 'zlast')).length, 1, 'and the mailbox after it');
    t.regex(r.stderr, /dates: 2 messages \(UID 1, 2 in the dump\) restored, but their INTERNALDATE \(in the future, or before 1970\) is not kept/);
    // A rerun finds every copy (by size and bytes where the date was not kept): nothing twice.
    const again = await runCommand('restore', [dump, ...imapArgs(), '--user', 'kw', '--to-user', target.name], env());
    t.is(again.code, 3, again.stderr); // the 0-byte message, again
    t.regex(again.stderr, /restored 0 messages .* 5 already present/);
    t.true(again.stderr.includes(`INBOX: 1 messages (UID 1 in the dump) restored without 3 keywords ${long} a]b Ärger: the copy already on the server lacks them`), again.stderr);
    for (const [box, n] of [['INBOX', 1], ['dates', 2], ['empty', 1], ['zlast', 1]] as const) t.is((await mailboxOf(dv, target.name, box)).length, n, `${box} after the rerun`);
    const got = await mailboxOf(dv, target.name, 'INBOX');
    t.is(got.length, 1);
    t.deepEqual(got[0]!.keywords, ['$Forwarded', 'Work']);
    t.deepEqual(got[0]!.flags, ['\\Seen']);
  });

  test.serial('into a server whose separator is ".": a name with "." in a level, and one the server refuses without a code (NO "Not found"), are left out and named; the rest restored, exit 3', async (t) => {
    const source = await freshUser();
    const client = await connectImap(dv, source);
    // 15 levels of 20 characters: one Maildir++ directory name of 315 bytes, over the file system's 255.
    const deep = Array.from({ length: 15 }, (_, i) => `level${String(i).padStart(2, '0')}-${'d'.repeat(12)}`).join('/');
    await createMailboxes(client, ['v1.2', deep, 'ok']);
    for (const name of ['INBOX', 'v1.2', deep, 'ok']) await appendMessage(client, name, plain(1, `in ${name.slice(0, 20)}`));
    await client.logout();
    const dump = await backupLocation(dv, source, 'dotsep.mvd');
    const dotted = await startDovecot({ extraConfig: 'namespace inbox {\n  separator = .\n}\n' });
    try {
      const target = await dotted.addUser(`dot${++counter}`, 'maildir');
      const r = await runCommand('restore', [dump, ...imapArgs(dotted), '--user', source.name, '--to-user', target.name], env(dotted));
      t.is(r.code, 3, r.stderr);
      t.regex(r.stderr, /mailbox "v1\.2" was not restored: mailbox "v1\.2" has "\." inside a name level/);
      t.regex(r.stderr, /mailbox "level00-d+\/level01[^"]*" was not restored: mailbox name "[^"]*" cannot be created on .*: the server answered NO: /);
      t.regex(r.stderr, /2 mailboxes \(2 messages\) not restored/);
      const got = await fingerprintUser(dotted, target.name);
      t.deepEqual(got.mailboxes.filter((b) => b.selectable).map((b) => `${b.name}:${b.messages.length}`).sort(), ['INBOX:1', 'ok:1']);
    } finally {
      await dotted.stop();
    }
  });

  test.serial('into a server whose personal namespace has a prefix ("INBOX." with "."): mailboxes go under it, a rerun adds nothing, and a backup over IMAP names them without it', async (t) => {
    const source = await freshUser();
    const client = await connectImap(dv, source);
    await createMailboxes(client, ['Sent', 'a', 'a/b']);
    for (const name of ['INBOX', 'Sent', 'a/b']) await appendMessage(client, name, plain(1, `in ${name}`));
    await client.logout();
    const dump = await backupLocation(dv, source, 'prefix.mvd');
    const prefixed = await startDovecot({ extraConfig: 'namespace inbox {\n  separator = .\n  prefix = INBOX.\n}\n' });
    try {
      const target = await prefixed.addUser(`pfx${++counter}`, 'maildir');
      const r = await runCommand('restore', [dump, ...imapArgs(prefixed), '--user', source.name, '--to-user', target.name], env(prefixed));
      t.is(r.code, 0, r.stderr);
      t.regex(r.stderr, /restored 3 messages/);
      // Dovecot keeps INBOX.Sent as .Sent and INBOX.a.b as .a.b: the names without the prefix.
      const dirs = (await readdir(path.join(target.home, 'Maildir'))).filter((n) => n.startsWith('.')).sort();
      t.deepEqual(dirs, ['.Sent', '.a', '.a.b']);
      const again = await runCommand('restore', [dump, ...imapArgs(prefixed), '--user', source.name, '--to-user', target.name], env(prefixed));
      t.is(again.code, 0, again.stderr);
      t.regex(again.stderr, /restored 0 messages .* 3 already present/);
      const back = path.join(work, 'prefix-imap.mvd');
      const b = await runCommand('backup', [...imapArgs(prefixed), '--user', target.name, '-o', back], env(prefixed));
      t.is(b.code, 0, b.stderr);
      const l = await runCommand('list', [back, '--json']);
      t.is(l.code, 0, l.stderr);
      const boxes = [...new Set((JSON.parse(l.stdout) as { messages: { mailbox: string }[] }).messages.map((m) => m.mailbox))].sort();
      t.deepEqual(boxes, ['INBOX', 'Sent', 'a/b']);
    } finally {
      await prefixed.stop();
    }
  });

  test.serial('a wrong master password exits 77 and writes nothing', async (t) => {
    const user = await freshUser();
    const client = await connectImap(dv, user);
    await appendMessage(client, 'INBOX', plain(1, 'keep'), { internalDate: new Date('2026-10-01T00:00:00Z') });
    await client.logout();
    const dump = await backupLocation(dv, user, 'auth.mvd');
    const before = await fingerprintUser(dv, user.name);
    const pw = path.join(work, 'wrong.pw');
    await writeFile(pw, 'not-the-password\n', { mode: 0o600 });
    const r = await runCommand('restore', [dump, '--imap', `imap://127.0.0.1:${dv.imapPort}`, '--master-user', dv.masterUser, '--password-file', pw, '--user', user.name, '--to-mailbox', 'Never', '--uid', '1']);
    t.is(r.code, 77, r.stderr);
    t.regex(r.stderr, new RegExp(`${user.name}.*master user "${dv.masterUser}"`));
    t.regex(r.stderr, /hint: check the master user's name and password/);
    t.deepEqual(await fingerprintUser(dv, user.name), before, 'nothing was written');
    const onCommandLine = await runCommand('restore', [dump, '--imap', `imap://127.0.0.1:${dv.imapPort}`, '--user', user.name, '--uid', '1']);
    t.is(onCommandLine.code, 2, 'no password source at all is a usage error');
    t.regex(onCommandLine.stderr, /MAILVAULT_IMAP_PASSWORD/);
  });

  test.serial('a restore killed halfway (SIGKILL) and rerun ends with every mail exactly once', async (t) => {
    const user = await freshUser();
    const client = await connectImap(dv, user);
    await createMailboxes(client, ['Bulk']);
    const total = 400;
    for (let i = 0; i < total; i++) await appendMessage(client, 'Bulk', plain(i % 200, 'bulk'), { internalDate: new Date(Date.UTC(2026, 0, 1) + (i % 100) * 60_000), flags: i % 3 === 0 ? ['\\Seen'] : [] });
    const want = (await mailboxOf(dv, user.name, 'Bulk')).map(identity).sort();
    const dump = await backupLocation(dv, user, 'bulk.mvd');
    await client.mailboxDelete('Bulk');

    const spoolsBefore = new Set(await spoolDirs());
    const run = startCommand('restore', [dump, ...imapArgs(), '--user', user.name, '--mailbox', 'Bulk', '--commit-every', '25'], env());
    let seen = 0;
    while ((seen = await messageCount(client, 'Bulk')) < 60 && run.child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
    run.child.kill('SIGKILL');
    await run.done;
    // A MULTIAPPEND the killed client had sent in full is still saved by the server (Dovecot finishes
    // a command it has read): wait until the count settles before taking it.
    let partial = await messageCount(client, 'Bulk');
    for (let stable = 0; stable < 5; ) {
      await new Promise((r) => setTimeout(r, 100));
      const now = await messageCount(client, 'Bulk');
      stable = now === partial ? stable + 1 : 0;
      partial = now;
    }
    t.true(partial >= seen && partial < total, `killed halfway: ${partial} of ${total} restored`);
    // The APPEND spool has no name on disk: the killed run leaves no copy of the mail in the temp
    // directory. (A spool directory of another test exists only for an instant: look twice.)
    let left = (await spoolDirs()).filter((d) => !spoolsBefore.has(d));
    if (left.length > 0) {
      await new Promise((r) => setTimeout(r, 1000));
      const still = new Set(await spoolDirs());
      left = left.filter((d) => still.has(d));
    }
    t.deepEqual(left, [], 'the killed restore left spooled mail in the temp directory');

    const rerun = await runCommand('restore', [dump, ...imapArgs(), '--user', user.name, '--mailbox', 'Bulk', '--json'], env());
    t.is(rerun.code, 0, rerun.stderr);
    const s = JSON.parse(rerun.stdout) as { dumps: { messages: number; alreadyPresent: number }[] };
    t.is(s.dumps[0]!.messages + s.dumps[0]!.alreadyPresent, total);
    t.is(s.dumps[0]!.alreadyPresent, partial);
    t.deepEqual((await mailboxOf(dv, user.name, 'Bulk')).map(identity).sort(), want, 'every mail exactly once, with its flags and date');
    await client.logout();
  });

  // A save that a killed Dovecot left half done (sdbox: u.N written, the index not updated) is found at
  // the next save into that mailbox: Dovecot rebuilds the index, which takes the file in, and ends the
  // session with BYE "IMAP session state is inconsistent, please relogin." (the APPEND that met the
  // file gets NO [SERVERBUG]). Made here by hand.
  test('a message file a killed server left behind (sdbox u.N the index does not know): exit 75 with the server\'s words; the rerun completes, every mail once', async (t) => {
    const user = await freshUser();
    const client = await connectImap(dv, user);
    let want: string[];
    try {
      await createMailboxes(client, ['Left']);
      for (let i = 0; i < 3; i++) await appendMessage(client, 'Left', plain(i, 'left'), { internalDate: new Date(Date.UTC(2026, 2, 1) + i * 60_000) });
      want = (await mailboxOf(dv, user.name, 'Left')).map(identity).sort();
      const dump = await backupLocation(dv, user, 'left.mvd');
      const mails = path.join(user.home, 'sdbox', 'mailboxes', 'Left', 'dbox-Mails');
      const third = await readFile(path.join(mails, 'u.3'));
      await expungeUids(client, 'Left', [3]);
      // UIDNEXT is 4: the file Dovecot's next save into Left would create
      await writeFile(path.join(mails, 'u.4'), third, { flag: 'wx', mode: 0o600 });
      if (dv.runningAsRoot) await chown(path.join(mails, 'u.4'), dv.mailUid, dv.mailGid);

      const first = await runCommand('restore', [dump, ...imapArgs(), '--user', user.name, '--mailbox', 'Left'], env());
      t.is(first.code, 75, first.stderr);
      // Dovecot answers that APPEND NO [SERVERBUG] (or, where the failure meets a later command, has
      // ended the session with its BYE): either way the server's own words are named
      t.regex(first.stderr, /server unavailable \((Internal error occurred\.|the server closed the connection: "IMAP session state is inconsistent, please relogin\.?")/);
      t.regex(first.stderr, /hint: .*run the same command again/);
      const rerun = await runCommand('restore', [dump, ...imapArgs(), '--user', user.name, '--mailbox', 'Left'], env());
      t.is(rerun.code, 0, rerun.stderr);
      t.deepEqual((await mailboxOf(dv, user.name, 'Left')).map(identity).sort(), want);
    } finally {
      await client.logout().catch(() => undefined);
    }
  });

  test.serial('the server stopped mid-restore exits 75; after a restart the rerun completes without duplicates', async (t) => {
    const own = await startDovecot();
    try {
      const user = await freshUser(own);
      const client = await connectImap(own, user);
      await createMailboxes(client, ['Bulk']);
      // enough mail that the restore is still running when the server has finished stopping
      const total = 1000;
      for (let i = 0; i < total; i++) await appendMessage(client, 'Bulk', plain(i, 'stop'), { internalDate: new Date(Date.UTC(2026, 1, 1) + i * 60_000) });
      const want = (await mailboxOf(own, user.name, 'Bulk')).map(identity).sort();
      const dump = await backupLocation(own, user, 'stop.mvd');
      await client.mailboxDelete('Bulk');
      const run = startCommand('restore', [dump, ...imapArgs(own), '--user', user.name, '--mailbox', 'Bulk', '--commit-every', '20'], env(own));
      while ((await messageCount(client, 'Bulk')) < 40 && run.child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
      client.close();
      t.true(run.child.exitCode === null, 'the restore is still running when the server stops');
      // stop() ends the master, then whatever outlives it (the imap process serving the restore):
      // the server and its connections are gone.
      await own.stop({ keepDir: true });
      const r = await Promise.race([run.done, new Promise<Run>((resolve) => setTimeout(() => resolve({ code: -2, stdout: '', stderr: 'the restore did not exit within 60 s of the server stop' }), 60_000))]);
      if (r.code === -2) run.child.kill('SIGKILL');
      t.is(r.code, 75, r.stderr);
      t.regex(r.stderr, /server unavailable/);
      t.regex(r.stderr, /hint: .*run the same command again/);

      // dovecot daemonizes and its daemon keeps inherited stdio open: give it none, wait for the launcher only
      const launch = spawnSync('dovecot', ['-c', own.confPath], { env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' }, stdio: 'ignore' });
      t.is(launch.status, 0, `dovecot -c ${own.confPath} did not start again: ${await own.readLog(2000)}`);
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline && !(await new Promise<boolean>((resolve) => net.connect(own.imapPort, '127.0.0.1').once('connect', function (this: net.Socket) { this.destroy(); resolve(true); }).once('error', () => resolve(false))))) await new Promise((r) => setTimeout(r, 50));
      // A save the stop cut short can leave a message file that Dovecot's index does not know (sdbox:
      // u.N written, the index not yet updated). Dovecot finds it at the next save, rebuilds the index
      // and ends that session (the APPEND gets NO [SERVERBUG], the session BYE "IMAP session state is
      // inconsistent, please relogin."; the test above makes this by hand): that rerun exits 75 naming
      // the server's words, as the hint says to run it again, and the next completes.
      let rerun = await runCommand('restore', [dump, ...imapArgs(own), '--user', user.name, '--mailbox', 'Bulk'], env(own));
      if (rerun.code === 75 && /please relogin|Internal error occurred/.test(rerun.stderr) && /rebuilding index/.test(await own.readLog(20000))) {
        t.log(`the first rerun met Dovecot's index rebuild: ${rerun.stderr.split('\n')[0]}`);
        t.regex(rerun.stderr, /hint: .*run the same command again/);
        rerun = await runCommand('restore', [dump, ...imapArgs(own), '--user', user.name, '--mailbox', 'Bulk'], env(own));
      }
      t.is(rerun.code, 0, rerun.code === 0 ? '' : `${rerun.stderr}\nDovecot log:\n${await own.readLog(4000)}`);
      t.deepEqual((await mailboxOf(own, user.name, 'Bulk')).map(identity).sort(), want);
    } finally {
      await own.stop();
    }
  });
}
