/**
 * An index reset against a live Dovecot 2.3: `doveadm force-resync` rebuilds a mailbox index and starts
 * a new transaction log with prev_file_seq 0. A reader that still has the dovecot.index from before
 * (the window until Dovecot next rewrites it) must start over at that log, as Dovecot does, instead of
 * replaying it onto the old snapshot (where messages the rebuild dropped would stay as ghosts).
 */
import { copyFile, readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { openSdboxStore } from '../../src/storage/dbox/single/index.js';
import { parseLocation } from '../../src/storage/location.js';
import { requireDovecot, dovecotForFile, type DovecotInstance } from '../helpers/dovecot.js';
import { parseDoveadmTab, storedMessage } from '../helpers/fingerprint.js';
import { readAll } from '../unit/storage/dbox/store-expectations.js';

const message = (n: number): Buffer => Buffer.from(`From: a@example.org\nSubject: reset ${n}\nMessage-ID: <reset-${n}@example.org>\n\nbody ${n}\n`);

if (requireDovecot(test)) {
  let dv!: DovecotInstance;
  dovecotForFile(test, (started) => (dv = started));

  test('sdbox: after force-resync, an older dovecot.index is not the base for the reset log', async (t) => {
    const user = await dv.addUser('resetsd', 'sdbox');
    for (let i = 1; i <= 4; i++) await dv.doveadmOk(['save', '-u', user.name, '-m', 'INBOX'], message(i));
    await dv.doveadmOk(['flags', 'add', '-u', user.name, '\\Flagged', 'mailbox', 'INBOX', 'uid', '3']);
    const box = path.join(user.home, 'sdbox/mailboxes/INBOX/dbox-Mails');
    // Make Dovecot write dovecot.index (it does when it rotates the log), so that there is a snapshot
    // older than the log force-resync starts.
    const rotate = ['-o', 'mail_index_log_rotate_max_size=1k', '-o', 'mail_index_log_rotate_min_size=1', '-o', 'mail_index_log_rotate_min_age=0'];
    for (let i = 0; i < 40 && !(await readdir(box)).includes('dovecot.index'); i++) {
      await dv.doveadmOk([...rotate, 'flags', i % 2 ? 'remove' : 'add', '-u', user.name, '$Pass', 'mailbox', 'INBOX', 'uid', '1']);
    }
    await copyFile(path.join(box, 'dovecot.index'), path.join(user.home, 'index.before'));
    await copyFile(path.join(box, 'dovecot.index.log'), path.join(user.home, 'log.before'));
    // A message file lost on disk; the rebuild drops it and resets the index.
    await rm(path.join(box, 'u.2'));
    await dv.doveadmOk(['force-resync', '-u', user.name, 'INBOX']);
    const want = parseDoveadmTab(await dv.doveadmOk(['-f', 'tab', 'fetch', '-u', user.name, 'uid flags', 'mailbox', 'INBOX']));
    t.deepEqual(want.map((r) => r['uid']), ['1', '3', '4'], 'Dovecot after the rebuild');
    const bytes = new Map<number, Buffer>();
    for (const r of want) bytes.set(Number(r['uid']), await storedMessage(dv, user.name, 'INBOX', Number(r['uid'])));

    // The window before Dovecot rewrites dovecot.index: the old snapshot with the reset log after it.
    await copyFile(path.join(user.home, 'index.before'), path.join(box, 'dovecot.index'));
    const logHead = await readFile(path.join(box, 'dovecot.index.log'));
    t.is(logHead.readUInt32LE(12), 0, 'dovecot.index.log was started by a reset (prev_file_seq 0)');

    const flagsOf = (text: string): string => text.split(' ').filter((f) => f !== '' && f !== '\\Recent').sort().join(' ');
    const check = async (what: string): Promise<void> => {
      const store = await openSdboxStore(parseLocation(user.mailLocation, { user: user.name, home: user.home }), user.name, { attachmentDir: null });
      const reader = await store.openMailbox('INBOX');
      const got: Array<{ uid: string; flags: string }> = [];
      for await (const m of reader.messages()) {
        got.push({ uid: String(m.uid), flags: [...m.flags, ...m.keywords].sort().join(' ') });
        t.true((await readAll(await reader.openMessage(m))).equals(bytes.get(m.uid)!), `${what}: UID ${m.uid}`);
      }
      await reader.close();
      t.deepEqual(got, want.map((r) => ({ uid: r['uid']!, flags: flagsOf(r['flags']!) })), what);
      t.deepEqual(got.map((m) => m.flags), ['$Pass', '\\Flagged', ''], `${what}: flags and keywords survived the rebuild`);
    };
    // As Dovecot leaves it: a reset log does not rename the old .log to .log.2
    // (mail_transaction_log_file_create2: rename_existing = FALSE), so .log.2 is older still.
    await check('snapshot, stale .log.2, reset .log');
    // When the snapshot's own log is .log.2 (it was older than the last rotation before the reset),
    // replaying .log.2 and then the reset log onto it would keep UID 2 as a ghost.
    await copyFile(path.join(user.home, 'log.before'), path.join(box, 'dovecot.index.log.2'));
    t.is((await readFile(path.join(box, 'dovecot.index.log.2'))).readUInt32LE(8), (await readFile(path.join(box, 'dovecot.index.log'))).readUInt32LE(8) - 1);
    await check('snapshot, its .log.2, reset .log');
  });
}
