/**
 * Maildir files Dovecot has not listed yet (no record in dovecot-uidlist): mail delivered into new/ by
 * Postfix, procmail and the like waits there until the user next opens the folder, and a folder filled
 * that way and never opened has no uidlist at all. A backup must not leave them out silently:
 * - mailvault gives them UIDs as Dovecot's next sync would (lock, next UIDs in file-name time order),
 *   and backs them up; Dovecot then serves exactly those UIDs, GUIDs and bytes;
 * - when it cannot give them UIDs (here: the uidlist lock held by a live process), the backup names
 *   each file as skipped, exits 3, and the state file does not mark the mailbox unchanged, so the
 *   next incremental reads it again and carries the files once they have UIDs.
 */
import { existsSync } from 'node:fs';
import { chown, mkdir, readFile, readdir, unlink, utimes, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { parseLocation } from '../../src/storage/location.js';
import { openMaildirStore } from '../../src/storage/maildir/index.js';
import { runCli, writeUsersFile } from '../helpers/cli.js';
import { requireDovecot, dovecotForFile, type DovecotInstance, type DovecotUser } from '../helpers/dovecot.js';
import { fingerprintUser, sha256, toCrlf } from '../helpers/fingerprint.js';
import { deliverLmtp, generateMessage } from '../helpers/populate.js';
import { tempDir } from '../helpers/temp.js';

/** A message file as an MTA writes it into new/ (no ",S=", no ":2,"), dated `secs`. */
async function deliverAsMta(maildir: string, secs: number, unique: string, raw: Buffer): Promise<string> {
  const name = `${secs}.${unique}.mx.example.org`;
  await mkdir(path.join(maildir, 'new'), { recursive: true });
  await writeFile(path.join(maildir, 'new', name), raw.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
  await utimes(path.join(maildir, 'new', name), secs, secs);
  return name;
}

/** What the driver lists: per mailbox its UIDs with the sha256 of the bytes as IMAP serves them, and how many files it could not list. */
async function driverView(user: DovecotUser): Promise<Map<string, { messages: { uid: number; sha256: string }[]; notListed: number }>> {
  const store = await openMaildirStore(parseLocation(user.mailLocation, { user: user.name, home: user.home }), user.name);
  const out = new Map<string, { messages: { uid: number; sha256: string }[]; notListed: number }>();
  try {
    for (const info of await store.listMailboxes()) {
      if (!info.selectable) continue;
      const reader = await store.openMailbox(info.name);
      const messages: { uid: number; sha256: string }[] = [];
      for await (const m of reader.messages()) {
        const chunks: Buffer[] = [];
        for await (const c of await reader.openMessage(m)) chunks.push(c as Buffer);
        messages.push({ uid: m.uid, sha256: sha256(toCrlf(Buffer.concat(chunks))) });
      }
      out.set(info.name, { messages, notListed: reader.notListed?.length ?? 0 });
      await reader.close();
    }
  } finally {
    await store.close();
  }
  return out;
}

/** Files this test wrote belong to the mail user, as an MTA running as that user would leave them. */
async function chownTree(dv: DovecotInstance, dir: string): Promise<void> {
  if (!dv.runningAsRoot) return;
  await chown(dir, dv.mailUid, dv.mailGid);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await chownTree(dv, p);
    else await chown(p, dv.mailUid, dv.mailGid);
  }
}

if (requireDovecot(test)) {
  let dv!: DovecotInstance;
  dovecotForFile(test, (started) => (dv = started));

  test('files Dovecot has not listed (new/ of INBOX, a folder never opened) get the UIDs Dovecot then serves', async (t) => {
    const user = await dv.addUser(`unl${Date.now() % 100000}`, 'maildir');
    await deliverLmtp(dv.lmtpSocket, user.name, [generateMessage(700, 0).raw, generateMessage(700, 1).raw]);
    const inbox = path.join(user.home, 'Maildir');
    // Two MTA deliveries, the later one written first: UIDs follow the time in the name, as in Dovecot.
    const later = await deliverAsMta(inbox, 1_764_400_020, 'M1P11', generateMessage(700, 2).raw);
    const earlier = await deliverAsMta(inbox, 1_764_400_010, 'M5P12', generateMessage(700, 3).raw);
    // A folder procmail filled and nobody opened: no uidlist, unknown to Dovecot's list.
    const spam = path.join(inbox, '.Spam');
    await mkdir(path.join(spam, 'cur'), { recursive: true });
    await mkdir(path.join(spam, 'tmp'), { recursive: true });
    await writeFile(path.join(spam, 'maildirfolder'), '');
    await deliverAsMta(spam, 1_764_400_100, 'M1P20', generateMessage(700, 4).raw);
    await deliverAsMta(spam, 1_764_400_101, 'M1P21', generateMessage(700, 5).raw);
    await chownTree(dv, inbox);

    const mine = await driverView(user);
    t.deepEqual(mine.get('INBOX')!.messages.map((m) => m.uid), [1, 2, 3, 4]);
    t.deepEqual(mine.get('Spam')!.messages.map((m) => m.uid), [1, 2]);
    t.is(mine.get('INBOX')!.notListed + mine.get('Spam')!.notListed, 0);
    const uidlist = await readFile(path.join(inbox, 'dovecot-uidlist'), 'utf8');
    t.regex(uidlist, new RegExp(`\\n3 :${earlier.replace(/\./g, '\\.')}\\n4 :${later.replace(/\./g, '\\.')}\\n$`));
    t.regex(await readFile(path.join(spam, 'dovecot-uidlist'), 'utf8'), /^3 V\d+ N3 G[0-9a-f]{32}\n1 :1764400100\.M1P20\.mx\.example\.org\n2 :1764400101\.M1P21\.mx\.example\.org\n$/);

    // Dovecot, asked only now, serves the same UIDs and bytes (it took the records as its own).
    const served = await fingerprintUser(dv, user.name);
    for (const name of ['INBOX', 'Spam']) {
      const box = served.mailboxes.find((b) => b.name === name);
      t.truthy(box, `Dovecot lists ${name}`);
      t.deepEqual(box!.messages.map((m) => ({ uid: m.uid, sha256: m.sha256 })), mine.get(name)!.messages, name);
    }
  });

  test('a file whose name is not valid UTF-8, which Dovecot listed: backed up with the UID and bytes Dovecot serves (not taken as expunged)', async (t) => {
    const user = await dv.addUser(`unl8${Date.now() % 100000}`, 'maildir');
    const inbox = path.join(user.home, 'Maildir');
    await deliverLmtp(dv.lmtpSocket, user.name, [generateMessage(703, 0).raw]);
    // An MTA on a host whose name is Latin-1 ("h\xe9st"): Dovecot lists the file, byte for byte.
    const raw = Buffer.concat([Buffer.from(`${inbox}/new/1764400200.M1P30.h`), Buffer.from([0xe9]), Buffer.from('st')]);
    await writeFile(raw, generateMessage(703, 1).raw.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
    if (dv.runningAsRoot) await chown(raw, dv.mailUid, dv.mailGid);
    const served = (await fingerprintUser(dv, user.name)).mailboxes.find((b) => b.name === 'INBOX')!;
    t.deepEqual(served.messages.map((m) => m.uid), [1, 2], 'Dovecot gave the file UID 2');
    t.true((await readFile(path.join(inbox, 'dovecot-uidlist'))).includes(Buffer.from([0x68, 0xe9, 0x73, 0x74])), 'its record holds the Latin-1 bytes');
    const mine = (await driverView(user)).get('INBOX')!;
    t.deepEqual(mine.messages, served.messages.map((m) => ({ uid: m.uid, sha256: m.sha256 })));
    t.is(mine.notListed, 0);
    const dir = await tempDir(t, 'mv-unl8-');
    const b = await runCli(['backup', '--users-file', await writeUsersFile(dir, [user]), '--user', user.name, '-o', path.join(dir, 'd.mvd')]);
    t.is(b.code, 0, b.stderr);
    t.regex(b.stderr, /2 messages/);
  });

  test('backup: files that cannot be given a UID are named as skipped (exit 3); the next incremental carries them', async (t) => {
    const user = await dv.addUser(`unb${Date.now() % 100000}`, 'maildir');
    await deliverLmtp(dv.lmtpSocket, user.name, [generateMessage(701, 0).raw]);
    const inbox = path.join(user.home, 'Maildir');
    const name = await deliverAsMta(inbox, 1_764_400_200, 'M1P30', generateMessage(701, 1).raw);
    await chownTree(dv, inbox);
    const dir = await tempDir(t, 'mv-unlisted-');
    const users = await writeUsersFile(dir, [user]);
    const state = path.join(dir, 'state.json');
    // A live process (this test) holds the uidlist lock.
    const lock = path.join(inbox, 'dovecot-uidlist.lock');
    await writeFile(lock, `${process.pid}:${os.hostname()}`, { flag: 'wx' });
    const full = path.join(dir, 'full.mvd');
    const r = await runCli(['backup', '--users-file', users, '--user', user.name, '--lock-timeout', '1', '--state-file', state, '-o', full]);
    await unlink(lock);
    t.is(r.code, 3, r.stderr);
    t.true(r.stderr.includes(`new/${name} in mailbox "INBOX" of user ${user.name} has no UID yet`), r.stderr);
    t.true(r.stderr.includes('doveadm mailbox status'), r.stderr);
    const cursors = JSON.parse(await readFile(state, 'utf8')) as { users: Record<string, { mailboxes: { name: string; changeToken: string | null }[] }> };
    t.is(JSON.stringify(cursors).includes('"changeToken":null'), true, 'INBOX is not recorded as unchanged');

    // Nothing else changed; the lock is gone: the incremental gives the file its UID and carries it.
    const inc = path.join(dir, 'inc.mvd');
    const r2 = await runCli(['backup', '--users-file', users, '--user', user.name, '--since', `@${state}`, '-o', inc, '--json']);
    t.is(r2.code, 0, r2.stderr);
    const listed = JSON.parse((await runCli(['list', inc, '--json'])).stdout.toString()) as { messages: { mailbox: string; uid: number }[] };
    t.deepEqual(listed.messages.map((m) => `${m.mailbox} ${m.uid}`), ['INBOX 2']);
    t.deepEqual((await readdir(path.join(inbox, 'new'))).includes(name) || (await readdir(path.join(inbox, 'cur'))).some((n) => n.startsWith(name)), true);
  });

  test("a deleted uidlist with Dovecot's index in place: the backup reports the files and writes no uidlist; a restore continues Dovecot's UIDVALIDITY and UIDs", async (t) => {
    const user = await dv.addUser(`unc${Date.now() % 100000}`, 'maildir');
    await deliverLmtp(dv.lmtpSocket, user.name, [generateMessage(702, 0).raw, generateMessage(702, 1).raw, generateMessage(702, 2).raw]);
    const before = (await fingerprintUser(dv, user.name)).mailboxes.find((b) => b.name === 'INBOX')!;
    const inbox = path.join(user.home, 'Maildir');
    await unlink(path.join(inbox, 'dovecot-uidlist'));
    const dir = await tempDir(t, 'mv-unlisted-');
    const users = await writeUsersFile(dir, [user]);
    const r = await runCli(['backup', '--users-file', users, '--user', user.name, '-o', path.join(dir, 'd.mvd')]);
    t.is(r.code, 3, r.stderr);
    t.regex(r.stderr, /has Dovecot index files but no dovecot-uidlist/);
    t.regex(r.stderr, /doveadm force-resync/);
    t.false(existsSync(path.join(inbox, 'dovecot-uidlist')), 'mailvault did not guess the UIDs');
    // A restore into it takes UIDVALIDITY and the next UID from the index with its log replayed.
    const store = await openMaildirStore(parseLocation(user.mailLocation, { user: user.name, home: user.home }), user.name);
    try {
      const raw = generateMessage(702, 3).raw;
      const tx = await store.beginSave('INBOX');
      await tx.save({ flags: [], keywords: [], internalDate: 1_700_000_000, size: raw.length }, Readable.from([raw]));
      const done = await tx.commit();
      t.is(done.uidValidity, before.uidValidity!);
      t.true(done.uids[0]! >= before.uidNext!, `UID ${done.uids[0]} is not below Dovecot's next UID ${before.uidNext}`);
    } finally {
      await store.close();
    }
  });
}
