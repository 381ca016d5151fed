/**
 * Where a dbox store keeps what, and which folders it has, as Dovecot 2.3 itself writes and lists them
 * (a private instance; stores built with doveadm and IMAP, then changed on disk the way admins do):
 * - mdbox with INDEX=: the map index is under INDEX=/storage (dbox-multi/mdbox-map.c:mdbox_map_init);
 * - folders named with a leading "." and folders reached through a symlink are listed, as
 *   list/mailbox-list-fs-iter.c lists them;
 * - a directory name that is not valid modified UTF-7 is listed under its stored spelling, as
 *   mailbox-list.c:mailbox_list_default_get_vname_part does, and survives backup + restore;
 * - a directory name that is not valid UTF-8 is reported by a backup (exit 3), not left out, and read
 *   once Dovecot has renamed it (list/mailbox-list-fs-iter.c:fs_list_rename_invalid);
 * - an INTERNALDATE before 1970 (R written as 16 hex digits of two's complement) is read.
 * Every message mailvault reads must equal what Dovecot serves (doveadm fetch text).
 */
import { mkdir, readFile, readdir, rename, symlink } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { readDump } from '../../src/archive/reader.js';
import { parseLocation } from '../../src/storage/location.js';
import { openMdboxStore } from '../../src/storage/dbox/multi/index.js';
import { openSdboxStore } from '../../src/storage/dbox/single/index.js';
import type { MessageSource } from '../../src/storage/types.js';
import { requireDovecot, dovecotForFile, type DovecotInstance, type DovecotUser } from '../helpers/dovecot.js';
import { storedMessage } from '../helpers/fingerprint.js';
import { readAll } from '../unit/storage/dbox/store-expectations.js';
import { runCli, writeUsersFile } from '../helpers/cli.js';
import { appendMessage, connectImap } from '../helpers/populate.js';

const message = (n: number): Buffer => Buffer.from(`From: a@example.org\nTo: b@example.org\nSubject: layout ${n}\nMessage-ID: <layout-${n}@example.org>\n\nbody ${n}\n`);

async function openStore(dv: DovecotInstance, user: DovecotUser): Promise<MessageSource> {
  const loc = parseLocation(user.mailLocation, { user: user.name, home: user.home });
  return user.profile === 'mdbox' ? openMdboxStore(loc, user.name, { attachmentDir: dv.attachmentDir }) : openSdboxStore(loc, user.name, { attachmentDir: dv.attachmentDir });
}

/** Mailbox names as Dovecot lists them. */
async function dovecotMailboxes(dv: DovecotInstance, user: string): Promise<string[]> {
  const out = await dv.doveadmOk(['mailbox', 'list', '-u', user]);
  return out.split('\n').filter((l) => l !== '').sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/** Every message of every selectable mailbox equals what Dovecot serves; returns "<mailbox> <uid>" per message. */
async function assertMessagesAsServed(t: import('ava').ExecutionContext, dv: DovecotInstance, user: string, store: MessageSource): Promise<string[]> {
  const seen: string[] = [];
  for (const box of (await store.listMailboxes()).filter((b) => b.selectable)) {
    const reader = await store.openMailbox(box.name);
    try {
      for await (const m of reader.messages()) {
        const got = await readAll(await reader.openMessage(m));
        t.true(got.equals(await storedMessage(dv, user, box.name, m.uid)), `${box.name} UID ${m.uid}: bytes differ from doveadm fetch text`);
        seen.push(`${box.name} ${m.uid}`);
      }
    } finally {
      await reader.close();
    }
  }
  return seen;
}


if (requireDovecot(test)) {
  let dv!: DovecotInstance;
  dovecotForFile(test, (started) => (dv = started));

  test.serial('mdbox with INDEX=: the map index is read from INDEX=/storage, every message as Dovecot serves it', async (t) => {
    const user = await dv.addUser('mdidx', 'mdbox', 'mdbox:~/mdbox:INDEX=~/idx');
    await dv.doveadmOk(['mailbox', 'create', '-u', user.name, 'Work']);
    for (let i = 1; i <= 3; i++) await dv.doveadmOk(['save', '-u', user.name, '-m', i === 2 ? 'Work' : 'INBOX'], message(i));
    const store = await openStore(dv, user);
    t.deepEqual(
      (await store.listMailboxes()).map((b) => b.name),
      await dovecotMailboxes(dv, user.name),
    );
    const seen = await assertMessagesAsServed(t, dv, user.name, store);
    t.deepEqual(seen, ['INBOX 1', 'INBOX 2', 'Work 1']);
  });

  test.serial('sdbox and mdbox: folders named ".x" and folders reached through a symlink are listed and read, as Dovecot lists them', async (t) => {
    for (const [name, profile] of [['dotsd', 'sdbox'], ['dotmd', 'mdbox']] as const) {
      const user = await dv.addUser(name, profile);
      let n = 0;
      for (const box of ['INBOX', '.Archive', 'Sub/.hidden', 'Big', 'Big/Child']) {
        if (box !== 'INBOX') await dv.doveadmOk(['mailbox', 'create', '-u', user.name, box]);
        await dv.doveadmOk(['save', '-u', user.name, '-m', box], message(++n));
      }
      // An admin moves a large folder to another volume and leaves a symlink.
      const mailboxes = path.join(user.home, profile, 'mailboxes');
      const elsewhere = path.join(user.home, 'volume2');
      await mkdir(elsewhere);
      await rename(path.join(mailboxes, 'Big'), path.join(elsewhere, 'Big'));
      await symlink(path.join(elsewhere, 'Big'), path.join(mailboxes, 'Big'));
      // With a pattern, doveadm lists as IMAP LIST does (no SKIP_ALIASES): symlinked folders included.
      const want = (await dv.doveadmOk(['mailbox', 'list', '-u', user.name, '*'])).split('\n').filter((l) => l !== '');
      t.true(want.includes('Big/Child') && want.includes('.Archive') && want.includes('Sub/.hidden'), `Dovecot lists: ${want.join(', ')}`);
      const store = await openStore(dv, user);
      const boxes = await store.listMailboxes();
      t.deepEqual(boxes.map((b) => b.name), [...want].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))), profile);
      t.deepEqual(boxes.filter((b) => !b.selectable).map((b) => b.name), ['Sub'], `${profile}: only the parent level is \\NoSelect`);
      const seen = await assertMessagesAsServed(t, dv, user.name, store);
      t.deepEqual(seen, ['.Archive 1', 'Big 1', 'Big/Child 1', 'INBOX 1', 'Sub/.hidden 1'], profile);
    }
  });

  test.serial('sdbox: a folder directory "R&D" (not valid mUTF-7) is listed and read as "R&D"; backup + restore into Maildir gives "R&D" in Dovecot', async (t) => {
    const user = await dv.addUser('rdsd', 'sdbox');
    await dv.doveadmOk(['mailbox', 'create', '-u', user.name, 'Work']);
    await dv.doveadmOk(['save', '-u', user.name, '-m', 'Work'], message(1));
    await dv.doveadmOk(['save', '-u', user.name, '-m', 'INBOX'], message(2));
    const bytes = await storedMessage(dv, user.name, 'Work', 1);
    // A migration script (or a location that lost its :UTF-8) left a raw "&" in a directory name.
    await rename(path.join(user.home, 'sdbox/mailboxes/Work'), path.join(user.home, 'sdbox/mailboxes/R&D'));
    const dovecotNames = (await dv.doveadmOk(['mailbox', 'list', '-u', user.name, '*'])).split('\n').filter((l) => l !== '');
    t.deepEqual(dovecotNames.sort(), ['INBOX', 'R&D'], 'Dovecot shows the stored spelling');
    const store = await openStore(dv, user);
    t.deepEqual((await store.listMailboxes()).map((b) => b.name), ['INBOX', 'R&D']);
    const reader = await store.openMailbox('R&D');
    const got: Buffer[] = [];
    for await (const m of reader.messages()) got.push(await readAll(await reader.openMessage(m)));
    await reader.close();
    t.is(got.length, 1);
    t.true(got[0]!.equals(bytes), 'the message of "R&D" as Dovecot stored it');

    const dump = path.join(dv.dir, 'rd.mvd');
    const b = await runCli(['backup', '--users-file', await writeUsersFile(dv.dir, [user]), '--user', user.name, '-o', dump]);
    t.is(b.code, 0, b.stderr);
    const target = await dv.addUser('rdmd', 'maildir');
    const r = await runCli(['restore', dump, '--users-file', await writeUsersFile(dv.dir, [target]), '--user', user.name, '--to-user', target.name]);
    t.is(r.code, 0, r.stderr);
    // The Maildir driver writes the name mUTF-7 encoded (".R&-D"): Dovecot serves it as "R&D".
    const restored = (await dv.doveadmOk(['mailbox', 'list', '-u', target.name, '*'])).split('\n').filter((l) => l !== '');
    t.deepEqual(restored.sort(), ['INBOX', 'R&D']);
    t.true((await storedMessage(dv, target.name, 'R&D', 1)).equals(bytes), 'restored message equals the original');
  });

  test.serial('sdbox: two folder directories with one name ("R&-D" and the raw "R&D"), both holding mail: the backup keeps the one Dovecot opens and reports the other (exit 3)', async (t) => {
    const user = await dv.addUser('rdtwo', 'sdbox');
    await dv.doveadmOk(['mailbox', 'create', '-u', user.name, 'R&D']); // stored as "R&-D"
    await dv.doveadmOk(['save', '-u', user.name, '-m', 'R&D'], message(1));
    await dv.doveadmOk(['mailbox', 'create', '-u', user.name, 'Old']);
    await dv.doveadmOk(['save', '-u', user.name, '-m', 'Old'], message(2));
    const boxes = path.join(user.home, 'sdbox/mailboxes');
    await rename(path.join(boxes, 'Old'), path.join(boxes, 'R&D')); // a migration left a raw "&"
    const kept = await storedMessage(dv, user.name, 'R&D', 1);
    const dump = path.join(dv.dir, 'rdtwo.mvd');
    const b = await runCli(['backup', '--users-file', await writeUsersFile(dv.dir, [user]), '--user', user.name, '-o', dump]);
    t.is(b.code, 3, b.stderr);
    t.true(b.stderr.includes(`the directory ${path.join(boxes, 'R&D', 'dbox-Mails')} gives the same mailbox name, and its mail is not backed up`), b.stderr);
    const messages: Buffer[] = [];
    for await (const e of readDump(createReadStream(dump))) if (e.type === 'message') messages.push(await readAll(e.openBody()));
    t.is(messages.length, 1);
    t.true(messages[0]!.equals(kept), 'the mailbox Dovecot opens as "R&D" is the one backed up');
  });

  test.serial('sdbox and mdbox: INTERNALDATEs before 1970 (R in two\'s complement) are read as Dovecot reads them', async (t) => {
    const dates = [new Date('1969-12-31T23:00:00Z'), new Date('1955-06-01T12:00:00Z'), new Date('2001-02-03T04:05:06Z')];
    for (const [name, profile] of [['oldsd', 'sdbox'], ['oldmd', 'mdbox']] as const) {
      const user = await dv.addUser(name, profile);
      const client = await connectImap(dv, user);
      try {
        for (const [i, d] of dates.entries()) await appendMessage(client, 'INBOX', message(10 + i), { internalDate: d });
      } finally {
        await client.logout();
      }
      // What Dovecot wrote: -3600 as 16 hex digits.
      const dir = path.join(user.home, profile, profile === 'sdbox' ? 'mailboxes/INBOX/dbox-Mails' : 'storage');
      const files = (await readdir(dir)).filter((f) => /^[um]\.\d+$/.test(f));
      const raw = Buffer.concat(await Promise.all(files.map((f) => readFile(path.join(dir, f)))));
      t.true(raw.includes('\nRfffffffffffff1f0\n'), `${profile}: R of -3600 on disk`);
      const store = await openStore(dv, user);
      const reader = await store.openMailbox('INBOX');
      const got: Array<[number, number]> = [];
      for await (const m of reader.messages()) {
        got.push([m.uid, m.internalDate]);
        t.true((await readAll(await reader.openMessage(m))).equals(await storedMessage(dv, user.name, 'INBOX', m.uid)), `${profile} UID ${m.uid}`);
      }
      await reader.close();
      t.deepEqual(got, dates.map((d, i) => [i + 1, d.getTime() / 1000]), profile);
      const received = (await dv.doveadmOk(['-f', 'flow', 'fetch', '-u', user.name, 'date.received', 'mailbox', 'INBOX', 'uid', '1'])).trim();
      t.regex(received, /1969-12-31/, `Dovecot serves the same date: ${received}`);
      // The dump records the date as it is (ISO 8601, before 1970 too).
      const dump = path.join(dv.dir, `${name}.mvd`);
      const b = await runCli(['backup', '--users-file', await writeUsersFile(dv.dir, [user]), '--user', user.name, '-o', dump]);
      t.is(b.code, 0, b.stderr);
      const recorded: string[] = [];
      for await (const e of readDump(createReadStream(dump))) if (e.type === 'message') recorded.push(e.record.internalDate);
      t.deepEqual(recorded, dates.map((d) => d.toISOString().replace('.000Z', 'Z')), `${profile}: dump records`);
    }
  });

  test.serial('sdbox: a folder directory whose name is not valid UTF-8 is reported by the backup, and readable once Dovecot renamed it', async (t) => {
    const user = await dv.addUser('badutf', 'sdbox');
    await dv.doveadmOk(['mailbox', 'create', '-u', user.name, 'Work']);
    await dv.doveadmOk(['save', '-u', user.name, '-m', 'Work'], message(1));
    await dv.doveadmOk(['save', '-u', user.name, '-m', 'INBOX'], message(2));
    const bytes = await storedMessage(dv, user.name, 'Work', 1);
    const boxes = path.join(user.home, 'sdbox/mailboxes');
    await rename(path.join(boxes, 'Work'), Buffer.concat([Buffer.from(`${boxes}/`), Buffer.from('Entw\xfcrfe', 'latin1')]));
    const users = await writeUsersFile(dv.dir, [user]);
    const b = await runCli(['backup', '--users-file', users, '--user', user.name, '-o', path.join(dv.dir, 'badutf.mvd')]);
    t.is(b.code, 3, `a skipped mailbox makes the backup partial: ${b.stderr}`);
    t.regex(b.stderr, /Entw\\xfcrfe.* is not valid UTF-8/);
    // The hint's remedy: Dovecot renames the directory when it lists the mailboxes.
    await dv.doveadmOk(['mailbox', 'list', '-u', user.name]);
    const store = await openStore(dv, user);
    t.deepEqual((await store.listMailboxes()).map((m) => m.name), ['Entw\ufffdrfe', 'INBOX']);
    const reader = await store.openMailbox('Entw\ufffdrfe');
    const got: Buffer[] = [];
    for await (const m of reader.messages()) got.push(await readAll(await reader.openMessage(m)));
    await reader.close();
    t.is(got.length, 1);
    t.true(got[0]!.equals(bytes));
  });

  test.serial('sdbox with ALT= storage: backed up whole with ALT=; without it, each message in alternate storage is skipped with a hint that names ALT=', async (t) => {
    const user = await dv.addUser('altstore', 'sdbox', 'sdbox:~/sdbox:ALT=~/alt');
    const client = await connectImap(dv, user);
    for (let i = 0; i < 3; i++) await appendMessage(client, 'INBOX', Buffer.from(`Subject: alt ${i}\r\n\r\nbody ${i}\r\n`));
    await client.logout();
    await dv.doveadmOk(['altmove', '-u', user.name, 'mailbox', 'INBOX', 'uid', '1:2']);
    const users = await writeUsersFile(dv.dir, [user]);
    const whole = await runCli(['backup', '--users-file', users, '--user', user.name, '-o', path.join(dv.dir, 'alt-whole.mvd')]);
    t.is(whole.code, 0, whole.stderr);
    t.regex(whole.stderr, /3 messages/);
    const home = user.mailLocationAbsolute.split(':')[1]!;
    const without = await runCli(['backup', '--location', `sdbox:${home}`, '--user', user.name, '-o', path.join(dv.dir, 'alt-without.mvd')]);
    t.is(without.code, 3, without.stderr);
    t.is((without.stderr.match(/hint: the index says the message is in alternate storage, and the location has no ALT=/g) ?? []).length, 2, without.stderr);
  });
}
