/**
 * Points where mailvault must judge Dovecot's files as Dovecot 2.3 does, checked against a real instance:
 * - version-1 subscriptions ending with the separator (mailbox_list_subscription_fill_one);
 * - LAYOUT=fs name limits per hierarchy level (mailbox_verify_create_name).
 */
import { chown, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { UsageError } from '../../src/core/errors.js';
import { parseLocation } from '../../src/storage/location.js';
import { openMaildirStore } from '../../src/storage/maildir/index.js';
import { requireDovecot, startDovecot, type DovecotInstance } from '../helpers/dovecot.js';

if (requireDovecot(test)) {
  let dv: DovecotInstance;
  test.before(async () => {
    dv = await startDovecot();
  });
  test.after.always(async () => {
    await dv?.stop();
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
    await t.throwsAsync(store.createMailbox({ name: tooLong }), { instanceOf: UsageError, message: /255/ });
  });
}
