/**
 * Points where mailvault must judge Dovecot's files as Dovecot 2.3 does, checked against a real instance:
 * - mail_location options: unknown or misspelled keys fail in both; keys Dovecot honours and mailvault
 *   does not implement are refused by mailvault (mailbox_list_settings_parse_full); sdbox DIRNAME= is
 *   read where Dovecot writes;
 * - a SIS attachment file longer than its X size: Dovecot fails the message ("Stream is larger than
 *   expected"); mailvault skips it, naming it, and never stores cut bytes;
 * - zlib_save with SIS: Dovecot serves the message; mailvault says it is compressed and skips it;
 * - version-1 subscriptions ending with the separator (mailbox_list_subscription_fill_one);
 * - LAYOUT=fs name limits per hierarchy level (mailbox_verify_create_name).
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { appendFile, chown, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { readDump } from '../../src/archive/reader.js';
import { MailboxNameError, UnsupportedLocationError } from '../../src/core/errors.js';
import { parseLocation } from '../../src/storage/location.js';
import { openSdboxStore } from '../../src/storage/dbox/single/index.js';
import { openMaildirStore } from '../../src/storage/maildir/index.js';
import { runCli } from '../helpers/cli.js';
import { requireDovecot, dovecotForFile, type DovecotInstance, type DovecotUser } from '../helpers/dovecot.js';

/** A message with one 3000-byte base64 attachment (SIS stores it outside: 4052 bytes encoded). */
function messageWithAttachment(n: number): Buffer {
  const b64 = randomBytes(3000).toString('base64').replace(/.{76}/g, '$&\n');
  return Buffer.from(
    `From: a@example.com\nTo: b@example.com\nSubject: attachment ${n}\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="XX"\n\n` +
      `--XX\nContent-Type: text/plain\n\nhello ${n}\n--XX\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n${b64}\n--XX--\n`,
  );
}

async function usersFile(dv: DovecotInstance, user: DovecotUser): Promise<string> {
  const file = path.join(dv.dir, `mv-users-${user.name}`);
  await writeFile(file, `${user.name}:x::::${user.home}::userdb_mail=${user.mailLocation}\n`);
  return file;
}

async function attachmentFiles(dv: DovecotInstance): Promise<string[]> {
  const entries = await readdir(dv.attachmentDir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile() && !e.parentPath.includes(`${path.sep}hashes`)).map((e) => path.join(e.parentPath, e.name));
}

if (requireDovecot(test)) {
  let dv!: DovecotInstance;
  dovecotForFile(test, (started) => (dv = started));

  test.serial('mail_location keys: what Dovecot rejects mailvault rejects; what mailvault does not implement it refuses', async (t) => {
    const u = await dv.addUser('loc', 'maildir');
    const dovecotAccepts = async (loc: string): Promise<boolean> => (await dv.doveadm(['-o', `mail_location=${loc}`, 'mailbox', 'list', '-u', u.name])).code === 0;
    const mailvault = (loc: string): 'accepts' | 'refuses' => {
      try {
        parseLocation(loc, { user: u.name, home: u.home });
        return 'accepts';
      } catch (e) {
        if (e instanceof UnsupportedLocationError) return 'refuses';
        throw e;
      }
    };
    // Dovecot: "Unknown setting" (keys are case-sensitive); Maildir++ (for dbox too) has no DIRNAME.
    for (const opt of ['layout=fs', 'utf-8', 'UTF8', 'Index=/tmp/x', 'FOO=1', 'DIRNAME=x']) {
      const loc = `maildir:~/Maildir:${opt}`;
      t.false(await dovecotAccepts(loc), `Dovecot rejects ${loc}`);
      t.is(mailvault(loc), 'refuses', loc);
    }
    for (const loc of ['sdbox:~/sdbox:LAYOUT=maildir++', 'mdbox:~/mdbox:LAYOUT=maildir++:DIRNAME=']) {
      t.false(await dovecotAccepts(loc), `Dovecot rejects ${loc}`);
      t.is(mailvault(loc), 'refuses', loc);
    }
    // Dovecot honours these; mailvault would read other files than Dovecot does.
    for (const opt of ['LAYOUT=fs:DIRNAME=mAildir', 'MAILBOXDIR=boxes', 'SUBSCRIPTIONS=subs', 'LAYOUT=fs:FULLDIRNAME=x']) {
      const loc = `maildir:~/Maildir:${opt}`;
      t.true(await dovecotAccepts(loc), `Dovecot accepts ${loc}`);
      t.is(mailvault(loc), 'refuses', loc);
    }
    t.true(await dovecotAccepts('sdbox:~/sdbox:MAILBOXDIR=boxes'));
    t.is(mailvault('sdbox:~/sdbox:MAILBOXDIR=boxes'), 'refuses');
    for (const loc of ['maildir:~/Maildir:LAYOUT=fs:UTF-8', 'maildir:~/Maildir:LAYOUT=FS', 'sdbox:~/sdbox:DIRNAME=dbox-Mails', 'maildir:~/Maildir:VOLATILEDIR=/tmp/v']) {
      t.true(await dovecotAccepts(loc), `Dovecot accepts ${loc}`);
      t.is(mailvault(loc), 'accepts', loc);
    }
  });

  test.serial('sdbox DIRNAME=: mailvault finds the mailboxes where Dovecot put them (empty means dbox-Mails)', async (t) => {
    const u = await dv.addUser('dirn', 'sdbox');
    for (const [root, opt] of [['sd-named', 'DIRNAME=Mails'], ['sd-empty', 'DIRNAME=']] as const) {
      const loc = `sdbox:~/${root}:${opt}`;
      const dovecot = (args: string[], input?: Buffer): Promise<string> => dv.doveadmOk(['-o', `mail_location=${loc}`, ...args], input);
      await dovecot(['mailbox', 'create', '-u', u.name, 'Work', 'Work/Sub']);
      await dovecot(['save', '-u', u.name, '-m', 'Work'], Buffer.from('Subject: one\n\nbody\n'));
      await dovecot(['save', '-u', u.name], Buffer.from('Subject: two\n\nbody\n'));
      const want = (await dovecot(['mailbox', 'list', '-u', u.name])).split('\n').filter((l) => l !== '').sort();
      const store = await openSdboxStore(parseLocation(loc, { user: u.name, home: u.home }), u.name, {});
      const got = await store.listMailboxes();
      t.deepEqual(got.filter((m) => m.selectable).map((m) => m.name).sort(), want, loc);
      t.is(got.find((m) => m.name === 'Work')?.messageCount, 1, loc);
    }
  });

  test.serial('SIS: an attachment file with extra bytes fails in Dovecot and is skipped by mailvault, never stored cut to size', async (t) => {
    const u = await dv.addUser('sisx', 'sdbox');
    const before = new Set(await attachmentFiles(dv));
    await dv.doveadmOk(['save', '-u', u.name], messageWithAttachment(1));
    await dv.doveadmOk(['save', '-u', u.name], messageWithAttachment(2));
    const victim = (await attachmentFiles(dv)).find((f) => !before.has(f) && f.endsWith('-2'));
    t.truthy(victim, 'UID 2 has its attachment stored outside');
    await appendFile(victim!, 'EXTRA');
    const served = await dv.doveadm(['fetch', '-u', u.name, 'text', 'mailbox', 'INBOX', 'uid', '2']);
    t.regex(served.stderr, /Stream is larger than expected/, 'Dovecot refuses to serve it');
    const dump = path.join(dv.dir, 'sisx.mvd');
    const b = await runCli(['backup', '--users-file', await usersFile(dv, u), '--user', u.name, '--attachment-dir', dv.attachmentDir, '-o', dump]);
    t.is(b.code, 3, b.stderr);
    t.regex(b.stderr, new RegExp(`UID 2: .*external attachment ${victim!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} has 3005 bytes, which encode to 4060 bytes .* needs exactly 4052`));
    const uids: number[] = [];
    for await (const e of readDump(createReadStream(dump))) {
      if (e.type !== 'message') continue;
      uids.push(e.record.uid);
      for await (const _ of e.openBody()) void _;
    }
    t.deepEqual(uids, [1], 'UID 1 is in the dump, UID 2 is not');
  });

  test.serial('zlib_save with SIS: Dovecot serves the message; mailvault names the compression and skips it', async (t) => {
    const u = await dv.addUser('sisz', 'sdbox');
    await dv.doveadmOk(['-o', 'mail_plugins=zlib', '-o', 'plugin/zlib_save=gz', 'save', '-u', u.name], messageWithAttachment(3));
    const served = await dv.doveadm(['-o', 'mail_plugins=zlib', 'fetch', '-u', u.name, 'text', 'mailbox', 'INBOX', 'uid', '1']);
    t.is(served.code, 0, served.stderr);
    t.regex(served.stdout, /Subject: attachment 3/);
    const b = await runCli(['backup', '--users-file', await usersFile(dv, u), '--user', u.name, '--attachment-dir', dv.attachmentDir, '-o', path.join(dv.dir, 'sisz.mvd')]);
    t.is(b.code, 3, b.stderr);
    t.regex(b.stderr, /UID 1: .*gzip-compressed \(Dovecot zlib plugin/);
  });

  test.serial('version-1 subscriptions: one trailing separator is dropped, as Dovecot lists them', async (t) => {
    const u = await dv.addUser('subs1', 'maildir-fs');
    await dv.doveadmOk(['mailbox', 'create', '-u', u.name, 'Work', 'Work/Sub']);
    const file = path.join(u.home, 'Maildir', 'subscriptions');
    await writeFile(file, 'Work/\nWork/Sub\n');
    await chown(file, dv.mailUid, dv.mailGid);
    const dovecot = (await dv.doveadmOk(['mailbox', 'list', '-s', '-u', u.name])).split('\n').filter((l) => l !== '').sort();
    t.deepEqual(dovecot, ['Work', 'Work/Sub']);
    const store = await openMaildirStore(parseLocation(u.mailLocation, { user: u.name, home: u.home }), u.name);
    t.deepEqual(await store.listSubscriptions(), dovecot);
    // Maildir++: Dovecot strips the namespace separator; under its default ("." for Maildir++) that is
    // the list separator mailvault strips.
    const pp = await dv.addUser('subs1pp', 'maildir');
    await dv.doveadmOk(['mailbox', 'create', '-u', pp.name, 'Work', 'Work/Sub']);
    const ppFile = path.join(pp.home, 'Maildir', 'subscriptions');
    await writeFile(ppFile, 'Work.\nWork.Sub\n');
    await chown(ppFile, dv.mailUid, dv.mailGid);
    const dotted = (await dv.doveadmOk(['-o', 'namespace/inbox/separator=.', 'mailbox', 'list', '-s', '-u', pp.name])).split('\n').filter((l) => l !== '').sort();
    t.deepEqual(dotted, ['Work', 'Work.Sub']);
    const ppStore = await openMaildirStore(parseLocation(pp.mailLocation, { user: pp.name, home: pp.home }), pp.name);
    t.deepEqual(await ppStore.listSubscriptions(), dotted.map((n) => n.replaceAll('.', '/')));
  });

  test.serial('LAYOUT=fs: names are limited per hierarchy level (255 bytes), as Dovecot limits them', async (t) => {
    const u = await dv.addUser('deep', 'maildir-fs');
    const level = 'Projekt-Entwürfe-' + 'x'.repeat(43); // 61 bytes
    const deep = [level, level, level, level, level].join('/');
    await dv.doveadmOk(['mailbox', 'create', '-u', u.name, `${deep}-dovecot`]);
    const store = await openMaildirStore(parseLocation(u.mailLocation, { user: u.name, home: u.home }), u.name, { create: true });
    await store.createMailbox({ name: deep });
    const listed = (await dv.doveadmOk(['mailbox', 'list', '-u', u.name])).split('\n');
    t.true(listed.includes(deep), 'Dovecot lists the mailbox mailvault created');
    const tooLong = `Work/${'y'.repeat(256)}`;
    const refused = await dv.doveadm(['mailbox', 'create', '-u', u.name, tooLong]);
    t.not(refused.code, 0);
    t.regex(refused.stderr, /Mailbox name too long/);
    await t.throwsAsync(store.createMailbox({ name: tooLong }), { instanceOf: MailboxNameError, message: /255/ });
  });
}
