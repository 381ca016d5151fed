/**
 * sdbox files cut short after a whole message body, written by a live Dovecot 2.3 and then truncated as
 * a full disk or a crash leaves them: the metadata block missing, or ending before its end line.
 * Dovecot still serves such a body (without mail_attachment_dir it reads no metadata to do so); the
 * backup takes it too, with what the index knows, and names it as a warning in the summary.
 */
import { readFile, truncate } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { StorageCorruptError } from '../../src/core/errors.js';
import { BufferFile, readDboxFileHeader, readDboxMessage } from '../../src/storage/dbox/common/dbox-file.js';
import { openSdboxStore } from '../../src/storage/dbox/single/index.js';
import { parseLocation } from '../../src/storage/location.js';
import type { MessageInfo } from '../../src/storage/types.js';
import { runCli, writeUsersFile } from '../helpers/cli.js';
import { requireDovecot, dovecotForFile, type DovecotInstance } from '../helpers/dovecot.js';
import { storedMessage } from '../helpers/fingerprint.js';
import { readAll } from '../unit/storage/dbox/store-expectations.js';

const message = (n: number): Buffer => Buffer.from(`From: a@example.org\nSubject: cut ${n}\nMessage-ID: <cut-${n}@example.org>\n\nbody ${n}\n`);

/** Offset of the metadata block of the (only) message in an sdbox file. */
async function metadataOffset(file: string): Promise<number> {
  const bytes = await readFile(file);
  const src = new BufferFile(bytes);
  const hdr = await readDboxFileHeader(src, file);
  const m = await readDboxMessage(src, file, hdr, hdr.firstMessageOffset, bytes.length);
  return m.bodyOffset + m.bodySize;
}

if (requireDovecot(test)) {
  let dv!: DovecotInstance;
  dovecotForFile(test, (started) => (dv = started));

  test('a body whose metadata was cut off is backed up with a warning, as Dovecot still serves it', async (t) => {
    const user = await dv.addUser('metacut', 'sdbox');
    for (let i = 1; i <= 3; i++) await dv.doveadmOk(['save', '-u', user.name, '-m', 'INBOX'], message(i));
    const want = new Map<number, Buffer>();
    for (const uid of [1, 2, 3]) want.set(uid, await storedMessage(dv, user.name, 'INBOX', uid));
    const box = path.join(user.home, 'sdbox/mailboxes/INBOX/dbox-Mails');
    // UID 1: the file ends with the body. UID 2: it ends after the magic and one whole metadata line.
    await truncate(path.join(box, 'u.1'), await metadataOffset(path.join(box, 'u.1')));
    const u2 = path.join(box, 'u.2');
    const meta2 = await metadataOffset(u2);
    const firstLineEnd = (await readFile(u2)).indexOf(0x0a, meta2 + 4);
    await truncate(u2, firstLineEnd + 1);

    const loc = parseLocation(user.mailLocation, { user: user.name, home: user.home });
    const store = await openSdboxStore(loc, user.name, { attachmentDir: null });
    const reader = await store.openMailbox('INBOX');
    const got: MessageInfo[] = [];
    for await (const m of reader.messages()) {
      got.push(m);
      t.true((await readAll(await reader.openMessage(m))).equals(want.get(m.uid)!), `UID ${m.uid}: the whole body`);
    }
    await reader.close();
    t.deepEqual(got.map((m) => m.uid), [1, 2, 3]);
    t.regex(got[0]!.warning ?? '', /^the file ends right after the message body: the metadata block is missing .*INTERNALDATE is the save date/);
    t.regex(got[1]!.warning ?? '', /^the file ends inside the metadata block \(after 1 complete lines/);
    t.is(got[2]!.warning, undefined);
    t.is(got[0]!.size, want.get(1)!.length);

    // With attachment storage, Dovecot reads the metadata first (X) and fails the message: so does the backup.
    const sis = await (await openSdboxStore(loc, user.name, { attachmentDir: dv.attachmentDir })).openMailbox('INBOX');
    const it = sis.messages()[Symbol.asyncIterator]();
    await t.throwsAsync(it.next(), { instanceOf: StorageCorruptError, message: /UID 1 .*metadata block is missing.*attachment storage/ });
    await sis.close();

    // The summary says so; the run is complete (exit 0), the messages are in the dump.
    const dump = path.join(dv.dir, 'metacut.mvd');
    const b = await runCli(['backup', '--users-file', await writeUsersFile(dv.dir, [user]), '--user', user.name, '-o', dump, '--json']);
    t.is(b.code, 0, b.stderr);
    t.regex(b.stderr, /warning: metacut INBOX UID 1: the file ends right after the message body/);
    t.regex(b.stderr, /warning: metacut INBOX UID 2: /);
    const summary = JSON.parse(b.stdout.toString()) as { messages: number; warnings: Array<{ uid: number }>; skipped: unknown[] };
    t.is(summary.messages, 3);
    t.deepEqual(summary.warnings.map((w) => w.uid), [1, 2]);
    t.deepEqual(summary.skipped, []);

    // Last, as a failed read makes Dovecot rebuild the mailbox. Without mail_attachment_dir (which this
    // instance sets for all users) Dovecot serves both bodies; with it, it fails them, as above.
    const noSis = ['-o', 'mail_attachment_dir='];
    for (const uid of [1, 2]) {
      const r = await dv.doveadm([...noSis, '-f', 'pager', 'fetch', '-u', user.name, 'text', 'mailbox', 'INBOX', 'uid', String(uid)]);
      t.true(r.stdoutBytes.equals(Buffer.concat([Buffer.from('text:\n'), want.get(uid)!])), `Dovecot serves UID ${uid} after the cut: ${r.stderr}`);
    }
  });
  test('a zlib-compressed body whose metadata was cut off (Z lost with it) is refused, not backed up as its compressed bytes', async (t) => {
    const user = await dv.addUser('metacutz', 'sdbox');
    const zlib = ['-o', 'mail_plugins=zlib', '-o', 'plugin/zlib_save=gz'];
    await dv.doveadmOk([...zlib, 'save', '-u', user.name, '-m', 'INBOX'], message(7));
    const u1 = path.join(user.home, 'sdbox/mailboxes/INBOX/dbox-Mails/u.1');
    const at = await metadataOffset(u1);
    const bytes = await readFile(u1);
    t.true(bytes.length > at, 'the file has metadata to cut');
    await truncate(u1, at);
    const dump = path.join(dv.dir, 'metacutz.mvd');
    const b = await runCli(['backup', '--users-file', await writeUsersFile(dv.dir, [user]), '--user', user.name, '-o', dump, '--json']);
    t.is(b.code, 3, b.stderr);
    t.regex(b.stderr, /UID 1 .*the metadata block is missing.*and the body is gzip-compressed \(mail_plugins zlib\), which is not supported/);
    const summary = JSON.parse(b.stdout.toString()) as { messages: number };
    t.is(summary.messages, 0);
  });
}
