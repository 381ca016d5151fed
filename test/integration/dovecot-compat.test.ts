/**
 * Points where mailvault must judge Dovecot's files as Dovecot 2.3 does, checked against a real instance:
 * - version-1 subscriptions ending with the separator (mailbox_list_subscription_fill_one).
 */
import { chown, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
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
}
