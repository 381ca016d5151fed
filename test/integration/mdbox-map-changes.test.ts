/**
 * mdbox against a live Dovecot 2.3 when the map is not the one the mailbox was read with: a
 * `doveadm purge` that runs while a backup reads the mailbox moves messages to the end of a file the
 * reader already has open (mdbox_map_find_appendable_file); a map of another UIDVALIDITY than the
 * mailbox index records (mdbox_mail_lookup) names other messages by the same map_uids.
 */
import { cp, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { StorageCorruptError } from '../../src/core/errors.js';
import { openMdboxStore } from '../../src/storage/dbox/multi/index.js';
import { readMapIndex } from '../../src/storage/dbox/multi/map-index.js';
import { parseLocation } from '../../src/storage/location.js';
import type { MessageInfo } from '../../src/storage/types.js';
import { requireDovecot, dovecotForFile, type DovecotInstance, type DovecotUser } from '../helpers/dovecot.js';
import { storedMessage } from '../helpers/fingerprint.js';
import { readAll } from '../unit/storage/dbox/store-expectations.js';

const message = (tag: string): Buffer => Buffer.from(`From: a@example.org\nSubject: ${tag}\nMessage-ID: <${tag}@example.org>\n\nbody of ${tag}\n`);

const storageFiles = async (user: DovecotUser): Promise<string[]> => (await readdir(path.join(user.home, 'mdbox/storage'))).filter((f) => /^m\.\d+$/.test(f)).sort();

async function collect(reader: { messages(o?: { minUid?: number }): AsyncIterable<MessageInfo> }, minUid = 0): Promise<MessageInfo[]> {
  const out: MessageInfo[] = [];
  for await (const m of reader.messages({ minUid })) out.push(m);
  return out;
}

if (requireDovecot(test)) {
  let dv!: DovecotInstance;
  dovecotForFile(test, (started) => (dv = started));

  test('a purge that moves a message to the end of an m.N file the reader has open: the message is read from there', async (t) => {
    const user = await dv.addUser('purgemove', 'mdbox');
    // m.1: X (in Other, to be expunged) and C (INBOX UID 1). m.2: A (INBOX UID 2), started by a tiny
    // mdbox_rotate_size, so that the purge appends C to m.2 (the newest file with room).
    await dv.doveadmOk(['mailbox', 'create', '-u', user.name, 'Other']);
    await dv.doveadmOk(['save', '-u', user.name, '-m', 'Other'], message('x-expunged'));
    await dv.doveadmOk(['save', '-u', user.name, '-m', 'INBOX'], message('c-moved'));
    await dv.doveadmOk(['-o', 'mdbox_rotate_size=1', 'save', '-u', user.name, '-m', 'INBOX'], message('a-stays'));
    t.deepEqual(await storageFiles(user), ['m.1', 'm.2']);
    const want = new Map([[1, await storedMessage(dv, user.name, 'INBOX', 1)], [2, await storedMessage(dv, user.name, 'INBOX', 2)]]);

    const store = await openMdboxStore(parseLocation(user.mailLocation, { user: user.name, home: user.home }), user.name, { attachmentDir: null });
    const listing = await store.openMailbox('INBOX');
    const infos = await collect(listing);
    await listing.close();
    t.deepEqual(infos.map((m) => m.uid), [1, 2]);

    // The backup has read A, so it holds m.2 open with the size it had then.
    const reader = await store.openMailbox('INBOX');
    t.teardown(() => reader.close());
    t.deepEqual((await collect(reader, 2)).map((m) => m.uid), [2]);

    await dv.doveadmOk(['expunge', '-u', user.name, 'mailbox', 'Other', 'all']);
    await dv.doveadmOk(['purge', '-u', user.name]);
    t.deepEqual(await storageFiles(user), ['m.2'], 'the purge emptied m.1 and moved C into m.2');
    t.true((await storedMessage(dv, user.name, 'INBOX', 1)).equals(want.get(1)!), 'Dovecot serves C from its new place');

    for (const info of infos) {
      const got = await readAll(await reader.openMessage(info));
      t.true(got.equals(want.get(info.uid)!), `UID ${info.uid} as Dovecot serves it`);
    }
  });

  test('a purge that deletes the m.N file of listed messages after the listing: their bodies are read from where the map names now', async (t) => {
    const user = await dv.addUser('purgedel', 'mdbox');
    // One m.1: X (expunged later), then a small and a large message (3 MB: more than the reader takes
    // in with the message header, so its body is read from the file when it is asked for).
    const large = Buffer.concat([Buffer.from('From: a@example.org\nSubject: large\n\n'), Buffer.alloc(3 * 1024 * 1024, 'y\n')]);
    await dv.doveadmOk(['save', '-u', user.name, '-m', 'INBOX'], message('x-expunged'));
    await dv.doveadmOk(['save', '-u', user.name, '-m', 'INBOX'], message('small'));
    await dv.doveadmOk(['save', '-u', user.name, '-m', 'INBOX'], large);
    t.deepEqual(await storageFiles(user), ['m.1']);
    const want = new Map([[2, await storedMessage(dv, user.name, 'INBOX', 2)], [3, await storedMessage(dv, user.name, 'INBOX', 3)]]);

    const store = await openMdboxStore(parseLocation(user.mailLocation, { user: user.name, home: user.home }), user.name, { attachmentDir: null });
    const reader = await store.openMailbox('INBOX');
    t.teardown(() => reader.close());
    const infos = await collect(reader, 2);
    t.deepEqual(infos.map((m) => m.uid), [2, 3]);

    // As a nightly purge does: the file with an expunged message is rewritten into a new one and
    // deleted. The reader still has the old map and the old file open. Read last-first: the 3 MB body
    // is streamed from its file by path, finds it gone and is located again (withFile); that reads
    // the map anew, so the small one is then found in its new file without a retry of its own.
    await dv.doveadmOk(['expunge', '-u', user.name, 'mailbox', 'INBOX', 'uid', '1']);
    await dv.doveadmOk(['purge', '-u', user.name]);
    t.false((await storageFiles(user)).includes('m.1'), 'the purge deleted m.1');

    for (const info of [...infos].reverse()) {
      const got = await readAll(await reader.openMessage(info));
      t.true(got.equals(want.get(info.uid)!), `UID ${info.uid} as Dovecot serves it`);
      t.deepEqual(await reader.readMessage!(info), info.size <= 256 * 1024 ? want.get(info.uid)! : null, `UID ${info.uid} read whole`);
    }
  });

  test('a purge that deletes the m.N file of a listed SIS message with a large stub: it is rebuilt from where the map names now', async (t) => {
    const user = await dv.addUser('purgesis', 'mdbox');
    // 1.5 MB of text (the stub: more than the reader takes in with the header) and an attachment that
    // single-instance storage keeps apart.
    const attachment = Buffer.alloc(6000, 7).toString('base64').replace(/.{76}/g, '$&\n');
    const raw = Buffer.from(`From: a@example.org\nSubject: sis\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\n${'text line\n'.repeat(150_000)}--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n${attachment}\n--b--\n`);
    await dv.doveadmOk(['save', '-u', user.name, '-m', 'INBOX'], message('x-expunged'));
    await dv.doveadmOk(['save', '-u', user.name, '-m', 'INBOX'], raw);
    const want = await storedMessage(dv, user.name, 'INBOX', 2);
    const store = await openMdboxStore(parseLocation(user.mailLocation, { user: user.name, home: user.home }), user.name, { attachmentDir: dv.attachmentDir });
    const reader = await store.openMailbox('INBOX');
    t.teardown(() => reader.close());
    const [info] = await collect(reader, 2);
    t.truthy(info);
    t.truthy(await reader.openMessageParts!(info!), 'stored with its attachment apart (SIS)');
    await dv.doveadmOk(['expunge', '-u', user.name, 'mailbox', 'INBOX', 'uid', '1']);
    await dv.doveadmOk(['purge', '-u', user.name]);
    t.false((await storageFiles(user)).includes('m.1'), 'the purge deleted m.1');
    t.true((await readAll(await reader.openMessage(info!))).equals(want), 'as Dovecot serves it');
  });

  test('a map of another UIDVALIDITY than the mailbox records is refused with a typed error, not read as other mail', async (t) => {
    const first = await dv.addUser('mapfirst', 'mdbox');
    for (const n of [1, 2]) await dv.doveadmOk(['save', '-u', first.name, '-m', 'INBOX'], message(`first-${n}`));
    // Dovecot takes a new map's UIDVALIDITY from the clock (mdbox_map_generate_uid_validity): a second apart.
    await new Promise((r) => setTimeout(r, 1100));
    const second = await dv.addUser('mapsecond', 'mdbox');
    for (const n of [1, 2]) await dv.doveadmOk(['save', '-u', second.name, '-m', 'INBOX'], message(`second-${n}`));
    const loc = (u: DovecotUser) => parseLocation(u.mailLocation, { user: u.name, home: u.home });
    const mine = (await readMapIndex(loc(second))).uidValidity;
    const other = (await readMapIndex(loc(first))).uidValidity;
    t.not(mine, other);

    // storage/ restored from another copy than mailboxes/: the same map_uids 1 and 2 are other mail.
    const storage = path.join(second.home, 'mdbox/storage');
    await rm(storage, { recursive: true });
    await cp(path.join(first.home, 'mdbox/storage'), storage, { recursive: true });
    const store = await openMdboxStore(loc(second), second.name, { attachmentDir: null });
    const err = await t.throwsAsync(store.openMailbox('INBOX'), { instanceOf: StorageCorruptError });
    t.regex(err?.message ?? '', new RegExp(`mailbox "INBOX" was written for the map with UIDVALIDITY ${mine}, but the map index .* has UIDVALIDITY ${other}`));
    t.regex(err?.hint ?? '', /force-resync/);
    t.like(err?.context, { mailbox: 'INBOX' });
    const fetched = await dv.doveadm(['fetch', '-u', second.name, 'text', 'mailbox', 'INBOX', 'uid', '1']);
    t.notRegex(fetched.stdout, /first-1/, 'Dovecot does not serve the other map\'s message either');
  });
}
