import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import test, { type ExecutionContext } from 'ava';
import { IntegrityError, MailboxNameError, StorageCorruptError, StorageNotFoundError, UsageError } from '../../../../src/core/errors.js';
import { parseLocation } from '../../../../src/storage/location.js';
import { MAILDIR_CAPABILITIES, openMaildirStore } from '../../../../src/storage/maildir/index.js';
import { currentUmask, permissionsFromRoot } from '../../../../src/storage/maildir/permissions.js';
import { writeSmallFile } from '../../../../src/storage/maildir/save.js';
import type { MailStore, MessageInfo, SaveMetadata } from '../../../../src/storage/types.js';
import { tempDirSync } from '../../../helpers/temp.js';

function tmpRoot(t: ExecutionContext): string {
  const dir = tempDirSync(t, 'mv-maildir-');
  return dir;
}

async function open(root: string, extra = '', create = true): Promise<MailStore> {
  return openMaildirStore(parseLocation(`maildir:${root}${extra}`, { user: 'alice', home: root }), 'alice', { create, hostname: 'testhost', lockTimeoutMs: 2000 });
}

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

function meta(body: Buffer, m: Partial<SaveMetadata> = {}): SaveMetadata {
  return { flags: [], keywords: [], internalDate: 1_704_448_800, size: body.length, ...m };
}

const MSG1 = Buffer.from('From: a@example.org\nSubject: one\n\nHello\n');
const MSG2 = Buffer.from('From: b@example.org\r\nSubject: two\r\n\r\nCRLF body\r\n');
const MSG3 = Buffer.from('Subject: three\n\n' + 'x'.repeat(200_000) + '\n');

test('capabilities', (t) => {
  t.true(MAILDIR_CAPABILITIES.writable);
  t.true(MAILDIR_CAPABILITIES.preservesUids);
  t.false(MAILDIR_CAPABILITIES.hasModseq);
});

test('round trip: create, save with UIDs/flags/keywords/GUIDs, read back', async (t) => {
  const root = path.join(tmpRoot(t), 'Maildir');
  const store = await open(root);
  const guid = '0123456789abcdef0123456789abcdef';
  const created = await store.createMailbox({ name: 'Work/Entwürfe', guid, uidValidity: 1700000000 });
  t.like(created, { name: 'Work/Entwürfe', guid, uidValidity: 1700000000, uidNext: 1, messageCount: 0, selectable: true });
  t.true(fs.existsSync(path.join(root, '.Work.Entw&APw-rfe', 'maildirfolder')));
  t.is(fs.readFileSync(path.join(root, '.Work.Entw&APw-rfe', 'dovecot-uidlist'), 'utf8'), `3 V1700000000 N1 G${guid}\n`);

  const tx = await store.beginSave('Work/Entwürfe');
  const s1 = await tx.save(meta(MSG1, { uid: 5, flags: ['\\Seen', '\\Flagged'], keywords: ['$Label1', 'Important'], guid: 'msg-guid-1' }), Readable.from([MSG1]));
  t.deepEqual(s1, { uid: null, guid: 'msg-guid-1' });
  const s2 = await tx.save(meta(MSG2, { uid: 3, internalDate: 1_600_000_000 }), Readable.from([MSG2.subarray(0, 5), MSG2.subarray(5)]));
  t.regex(s2.guid!, /,S=\d+,W=\d+$/);
  await tx.save(meta(MSG3, { uid: 100, keywords: ['Important'] }), Readable.from([MSG3]));
  t.is(fs.readdirSync(path.join(root, '.Work.Entw&APw-rfe', 'tmp')).length, 3);
  t.deepEqual(fs.readdirSync(path.join(root, '.Work.Entw&APw-rfe', 'cur')), [], 'nothing visible before commit');
  const result = await tx.commit();
  t.deepEqual(result, { uids: [5, 6, 100], uidValidity: 1700000000 }, 'UID 3 < next 6 is renumbered');
  await t.throwsAsync(tx.commit(), { message: /already committed/ });

  const dir = path.join(root, '.Work.Entw&APw-rfe');
  t.deepEqual(fs.readdirSync(path.join(dir, 'tmp')), []);
  t.false(fs.existsSync(path.join(dir, 'dovecot-uidlist.lock')));
  t.is(fs.readFileSync(path.join(dir, 'dovecot-keywords'), 'utf8'), '0 $Label1\n1 Important\n');
  const lines = fs.readFileSync(path.join(dir, 'dovecot-uidlist'), 'utf8').split('\n');
  t.is(lines[0], `3 V1700000000 N1 G${guid}`, 'header left alone (stale N, like Dovecot appends)');
  t.regex(lines[1]!, new RegExp(`^5 Gmsg-guid-1 :\\d+\\.M\\d+P\\d+\\.testhost,S=${MSG1.length},W=${MSG1.length + 4}$`));
  t.regex(lines[2]!, new RegExp(`^6 :\\S+,S=${MSG2.length},W=${MSG2.length}$`), 'CRLF already counted: W = S');
  const cur = fs.readdirSync(path.join(dir, 'cur')).sort();
  t.is(cur.length, 2);
  t.true(cur.some((n) => n.endsWith(':2,FSab')));
  t.true(cur.some((n) => n.endsWith(':2,b')));
  t.is(fs.readdirSync(path.join(dir, 'new')).length, 1, 'no flags -> new/');

  const store2 = await open(root, '', false);
  const boxes = await store2.listMailboxes();
  t.deepEqual(boxes.map((b) => b.name), ['INBOX', 'Work/Entwürfe']);
  const box = boxes[1]!;
  t.like(box, { guid, uidValidity: 1700000000, uidNext: 101, messageCount: 3, highestModseq: null, selectable: true });
  const reader = await store2.openMailbox('Work/Entwürfe');
  const msgs = await collect(reader.messages());
  t.deepEqual(msgs.map((m) => m.uid), [5, 6, 100]);
  t.like(msgs[0], { guid: 'msg-guid-1', flags: ['\\Flagged', '\\Seen'], keywords: ['$Label1', 'Important'], internalDate: 1_704_448_800, size: MSG1.length, saveDate: null, modseq: null });
  t.like(msgs[1], { flags: [], keywords: [], internalDate: 1_600_000_000, size: MSG2.length, guid: s2.guid });
  t.deepEqual(msgs[2]!.keywords, ['Important']);
  t.deepEqual(await readAll(await reader.openMessage(msgs[0]!)), MSG1);
  t.deepEqual(await readAll(await reader.openMessage(msgs[1]!)), MSG2);
  t.deepEqual(await readAll(await reader.openMessage(msgs[2]!)), MSG3);
  t.deepEqual((await collect(reader.messages({ minUid: 6 }))).map((m) => m.uid), [6, 100]);
  t.deepEqual(await collect(store2.listMessageGuids('Work/Entwürfe')), [
    { uid: 5, guid: 'msg-guid-1' },
    { uid: 6, guid: s2.guid },
    { uid: 100, guid: msgs[2]!.guid },
  ]);

  // A second transaction appends after the highest UID and reuses the keyword letters.
  const tx2 = await store2.beginSave('Work/Entwürfe');
  await tx2.save(meta(MSG1, { keywords: ['important', 'New'] }), Readable.from([MSG1]));
  t.deepEqual((await tx2.commit()).uids, [101]);
  t.is(fs.readFileSync(path.join(dir, 'dovecot-keywords'), 'utf8'), '0 $Label1\n1 Important\n2 New\n');
  t.true(fs.readdirSync(path.join(dir, 'cur')).some((n) => n.endsWith(':2,bc')));
});

/** Descriptors of this process open on files under `dir`. */
function openFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir)) out.push(target);
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

test('bodies given as bytes: same file and W= as a stream (LF, CRLF, bare CR, a lone LF first); descriptors held until commit, none after', async (t) => {
  const root = path.join(tmpRoot(t), 'Maildir');
  const store = await open(root);
  const bodies = [MSG1, MSG2, Buffer.from('\nA\r\nB\rC\n\r\n\n'), Buffer.alloc(0)];
  const viaStream = await store.beginSave('INBOX');
  for (const b of bodies) await viaStream.save(meta(b), Readable.from(b.length > 0 ? [b.subarray(0, 1), b.subarray(1)] : []));
  await viaStream.commit();
  const viaBytes = await store.beginSave('INBOX');
  for (const b of bodies) await viaBytes.save(meta(b), new Uint8Array(b));
  if (process.platform === 'linux') t.is(openFilesUnder(root).length, bodies.length, 'each file stays open for its fsync at commit');
  await viaBytes.commit();
  if (process.platform === 'linux') t.deepEqual(openFilesUnder(root), [], 'all closed after commit');
  const records = fs.readFileSync(path.join(root, 'dovecot-uidlist'), 'utf8').trim().split('\n').slice(1);
  const sizes = records.map((l) => /,S=\d+,W=\d+$/.exec(l)![0]);
  t.deepEqual(sizes.slice(4), sizes.slice(0, 4));
  t.deepEqual(sizes.slice(0, 4), [`,S=${MSG1.length},W=${MSG1.length + 4}`, `,S=${MSG2.length},W=${MSG2.length}`, ',S=11,W=14', ',S=0,W=0']);
  const reader = await (await open(root, '', false)).openMailbox('INBOX');
  const msgs = await collect(reader.messages());
  t.is(msgs.length, 8);
  for (const [i, m] of msgs.entries()) {
    t.deepEqual(await readAll(await reader.openMessage(m)), bodies[i % 4]!);
    t.is(m.internalDate, 1_704_448_800);
  }

  // Rollback closes what it held.
  const rolled = await store.beginSave('INBOX');
  await rolled.save(meta(MSG1), new Uint8Array(MSG1));
  await rolled.rollback();
  if (process.platform === 'linux') t.deepEqual(openFilesUnder(root), []);
  t.deepEqual(fs.readdirSync(path.join(root, 'tmp')), []);
});

test('name length: LAYOUT=fs limits each level (255 bytes, MAILBOX_MAX_HIERARCHY_NAME_LENGTH), Maildir++ the one directory', async (t) => {
  const level = 'ü'.repeat(30); // 60 bytes UTF-8, 82 bytes in mUTF-7
  const deep = [level, level, level, level, level].join('/'); // 5 x 82 bytes on disk, 414 with the separators
  const fs1 = await open(tmpRoot(t), ':LAYOUT=fs');
  const created = await fs1.createMailbox({ name: deep });
  t.is(created.name, deep);
  await t.throwsAsync(fs1.createMailbox({ name: `Work/${'x'.repeat(256)}` }), { instanceOf: MailboxNameError, message: /256 bytes, longer than the 255 Dovecot allows per level/ });
  t.truthy(await fs1.createMailbox({ name: `Work/${'x'.repeat(255)}` }), 'a level of exactly 255 bytes');
  await t.throwsAsync(fs1.createMailbox({ name: `Work/${'ü'.repeat(100)}` }), { instanceOf: MailboxNameError, message: /on disk, longer than the 255/ }, 'mUTF-7 on disk is longer than 255');
  const pp = await open(tmpRoot(t));
  t.truthy(await pp.createMailbox({ name: 'x'.repeat(254) }), '".x...x" is 255 bytes');
  await t.throwsAsync(pp.createMailbox({ name: 'x'.repeat(255) }), { instanceOf: MailboxNameError, message: /256 bytes, longer than the 255 a filesystem allows/ });
  await t.throwsAsync(pp.createMailbox({ name: [level, level, level, level].join('/') }), { instanceOf: MailboxNameError }, 'Maildir++: the whole name is one directory');
});

test('INBOX, new mailbox without given identity, uidvalidity sequence, GUID generation', async (t) => {
  const root = path.join(tmpRoot(t), 'Maildir');
  const store = await open(root);
  const inbox = await store.getMailbox('inbox');
  t.like(inbox, { name: 'INBOX', uidValidity: 0, guid: null, uidNext: 1, messageCount: 0 });
  const a = await store.createMailbox({ name: 'A' });
  const b = await store.createMailbox({ name: 'B' });
  t.regex(a.guid!, /^[0-9a-f]{32}$/);
  t.not(a.guid, b.guid);
  t.is(b.uidValidity, a.uidValidity + 1);
  t.is(fs.readFileSync(path.join(root, 'dovecot-uidvalidity'), 'ascii'), b.uidValidity.toString(16).padStart(8, '0'));
  t.true(fs.existsSync(path.join(root, `dovecot-uidvalidity.${b.uidValidity.toString(16).padStart(8, '0')}`)));
  await t.throwsAsync(store.createMailbox({ name: 'A' }), { instanceOf: UsageError, message: /already exists/ });
  await t.throwsAsync(store.createMailbox({ name: 'a.b' }), { instanceOf: MailboxNameError, message: /Maildir\+\+ hierarchy separator/ });

  // Saving into INBOX without a uidlist creates one.
  const tx = await store.beginSave('INBOX');
  await tx.save(meta(MSG1), Readable.from([MSG1]));
  const r = await tx.commit();
  t.deepEqual(r.uids, [1]);
  t.is(r.uidValidity, b.uidValidity + 1);
  t.regex(fs.readFileSync(path.join(root, 'dovecot-uidlist'), 'utf8'), /^3 V\d+ N2 G[0-9a-f]{32}\n1 :\S+\n$/);
  t.deepEqual((await store.listMailboxes()).map((m) => [m.name, m.messageCount]), [['A', 0], ['B', 0], ['INBOX', 1]].sort((x, y) => Buffer.compare(Buffer.from(x[0] as string), Buffer.from(y[0] as string))));
});

test('resetMailboxIdentity: only on an empty mailbox; keeps unknown header fields', async (t) => {
  const root = tmpRoot(t);
  const store = await open(root);
  await store.createMailbox({ name: 'X' });
  const file = path.join(root, '.X', 'dovecot-uidlist');
  fs.writeFileSync(file, '3 V1 N1 G00000000000000000000000000000001 Xkeep\n');
  const info = await store.resetMailboxIdentity!('X', { uidValidity: 42, guid: 'ABCDEF0123456789abcdef0123456789' });
  t.like(info, { uidValidity: 42, guid: 'abcdef0123456789abcdef0123456789', uidNext: 1 });
  t.is(fs.readFileSync(file, 'utf8'), '3 V42 N1 Gabcdef0123456789abcdef0123456789 Xkeep\n');
  const tx = await store.beginSave('X');
  await tx.save(meta(MSG1), Readable.from([MSG1]));
  await tx.commit();
  await t.throwsAsync(store.resetMailboxIdentity!('X', { uidValidity: 7 }), { instanceOf: UsageError, message: /not empty/ });
  await t.throwsAsync(store.resetMailboxIdentity!('Nope', { uidValidity: 7 }), { instanceOf: StorageNotFoundError });
});

test('size mismatch and rollback leave no file', async (t) => {
  const root = tmpRoot(t);
  const store = await open(root);
  const tx = await store.beginSave('INBOX');
  await t.throwsAsync(tx.save(meta(MSG1, { size: MSG1.length + 1 }), Readable.from([MSG1])), { instanceOf: IntegrityError, message: new RegExp(`expected ${MSG1.length + 1} bytes, the body had ${MSG1.length}`) });
  await t.throwsAsync(tx.save(meta(MSG1, { size: 10 }), Readable.from([MSG1])), { instanceOf: IntegrityError, message: /more than 10/ });
  t.deepEqual(fs.readdirSync(path.join(root, 'tmp')), []);
  await tx.save(meta(MSG1), Readable.from([MSG1]));
  t.is(fs.readdirSync(path.join(root, 'tmp')).length, 1, 'transaction still open after a failed save');
  await tx.rollback();
  t.deepEqual(fs.readdirSync(path.join(root, 'tmp')), []);
  t.false(fs.existsSync(path.join(root, 'dovecot-uidlist')));
  await t.throwsAsync(tx.save(meta(MSG1), Readable.from([MSG1])), { message: /already committed or rolled back/ });
});

test('keywords beyond the 26 letters: every message is saved with the keywords that got a letter, the others are reported by the commit', async (t) => {
  const root = tmpRoot(t);
  const store = await open(root);
  const tx = await store.beginSave('INBOX');
  const kws = Array.from({ length: 20 }, (_, i) => `kw${String(i).padStart(2, '0')}`);
  const others = Array.from({ length: 10 }, (_, i) => `other${i}`);
  await tx.save(meta(MSG1, { keywords: kws }), Readable.from([MSG1]));
  await tx.save(meta(MSG1, { keywords: [...others, 'kw03'] }), Readable.from([MSG1]));
  const result = await tx.commit();
  t.deepEqual(result.uids, [1, 2]);
  // Letters go in save order: the first message's 20, then 6 of the second's 10 new ones.
  t.deepEqual(result.keywordsNotStored, [{ index: 1, uid: 2, keywords: ['other6', 'other7', 'other8', 'other9'] }]);
  t.is(fs.readFileSync(path.join(root, 'dovecot-keywords'), 'utf8').trim().split('\n').length, 26);
  const reader = await store.openMailbox('INBOX');
  const listed = [];
  for await (const m of reader.messages()) listed.push([m.uid, [...m.keywords]]);
  await reader.close();
  t.deepEqual(listed, [
    [1, kws],
    [2, ['kw03', 'other0', 'other1', 'other2', 'other3', 'other4', 'other5']],
  ]);
});

test('commit waits for the uidlist lock and times out naming its holder', async (t) => {
  const root = tmpRoot(t);
  const store = await open(root);
  const tx = await store.beginSave('INBOX');
  await tx.save(meta(MSG1), Readable.from([MSG1]));
  fs.writeFileSync(path.join(root, 'dovecot-uidlist.lock'), `${process.ppid}:testhost`);
  const e = await t.throwsAsync(tx.commit(), { message: /dovecot-uidlist\.lock/ });
  t.is(e!.constructor.name, 'StorageLockTimeoutError');
  t.regex(e!.message, new RegExp(`${process.ppid}:testhost`));
  t.deepEqual(fs.readdirSync(path.join(root, 'tmp')), [], 'a failed commit deletes its tmp files');
  t.false(fs.existsSync(path.join(root, 'new')) && fs.readdirSync(path.join(root, 'new')).length > 0);
  t.true(fs.existsSync(path.join(root, 'dovecot-uidlist.lock')), 'the holder\'s lock is untouched');
});

test('reader: a file without a record gets the next UID (as Dovecot\'s sync gives it), expunged records ignored, unknown letters, renames, S= mismatch', async (t) => {
  const root = tmpRoot(t);
  for (const d of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(root, d));
  fs.writeFileSync(path.join(root, 'dovecot-keywords'), '0 $Label1\n');
  fs.writeFileSync(
    path.join(root, 'dovecot-uidlist'),
    '3 V1795873145 N2 G903bfd3779d90a6bab34000083ecc375\n' +
      '1 :1795873155.M1P1.vm,S=6,W=7\n' +
      '2 :gone.M2P2.vm\n' +
      '4 G1234 :1795873156.M3P3.vm\n' +
      '7 :1795873157.M4P4.vm,S=99\n',
  );
  fs.writeFileSync(path.join(root, 'new', '1795873155.M1P1.vm,S=6,W=7:2,Sac'), 'hello\n');
  fs.writeFileSync(path.join(root, 'cur', '1795873156.M3P3.vm:2,T'), 'abc');
  fs.writeFileSync(path.join(root, 'cur', '1795873157.M4P4.vm,S=99:2,'), 'short');
  fs.writeFileSync(path.join(root, 'new', '1800000000.unassigned.host'), 'x');
  fs.writeFileSync(path.join(root, 'cur', '.hidden'), 'x');
  const when = new Date(1_704_448_800_000);
  fs.utimesSync(path.join(root, 'new', '1795873155.M1P1.vm,S=6,W=7:2,Sac'), when, when);
  const store = await open(root, '', false);
  const [inbox] = await store.listMailboxes();
  t.like(inbox, { name: 'INBOX', uidValidity: 1795873145, uidNext: 9, messageCount: 4 });
  t.true(fs.readFileSync(path.join(root, 'dovecot-uidlist'), 'utf8').endsWith('7 :1795873157.M4P4.vm,S=99\n8 :1800000000.unassigned.host\n'));
  const reader = await store.openMailbox('INBOX');
  const msgs = await collect(reader.messages());
  t.deepEqual(msgs.map((m) => m.uid), [1, 4, 7, 8]);
  t.deepEqual(reader.notListed, []);
  t.like(msgs[0], { guid: '1795873155.M1P1.vm,S=6,W=7', flags: ['\\Seen'], keywords: ['$Label1', 'unknown-2'], size: 6, internalDate: 1_704_448_800 });
  t.like(msgs[1], { guid: '1234', flags: ['\\Deleted'], size: 3 });

  // Dovecot renames the file (flag change, new/ -> cur/) after the listing: still found.
  fs.renameSync(path.join(root, 'new', '1795873155.M1P1.vm,S=6,W=7:2,Sac'), path.join(root, 'cur', '1795873155.M1P1.vm,S=6,W=7:2,RSac'));
  t.is((await readAll(await reader.openMessage(msgs[0]!))).toString(), 'hello\n');
  // Expunged after the listing.
  fs.unlinkSync(path.join(root, 'cur', '1795873156.M3P3.vm:2,T'));
  await t.throwsAsync(reader.openMessage(msgs[1] as MessageInfo), { instanceOf: StorageNotFoundError, message: /UID 4 in mailbox "INBOX"/ });
  // Wrong S= in the name.
  const e = await t.throwsAsync(reader.openMessage(msgs[2]!), { instanceOf: IntegrityError });
  t.regex(e!.message, /UID 7 in mailbox "INBOX".*expected 99 bytes.*has 5/);
});

test('reader: flag listings (listFlags, flagsOnly) agree with the full listing; openMessage reads into a given scratch buffer', async (t) => {
  const root = tmpRoot(t);
  for (const d of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(root, d));
  fs.writeFileSync(path.join(root, 'dovecot-keywords'), '0 $Label1\n1 Work\n');
  const names = ['1.M1P1.vm,S=5:2,S', '2.M2P2.vm,S=5:2,FS', '3.M3P3.vm,S=5:2,S', '5.M5P5.vm,S=5:2,Sba', '6.M6P6.vm,S=5'];
  let uidlist = '3 V1795873145 N1 G903bfd3779d90a6bab34000083ecc375\n';
  const uids = [1, 2, 3, 5, 6];
  names.forEach((n, k) => {
    uidlist += `${uids[k]} :${n.split(':')[0]}\n`;
    fs.writeFileSync(path.join(root, n.includes(':') ? 'cur' : 'new', n), `msg${k + 1}\n`);
  });
  uidlist += '7 :7.gone.vm,S=5\n'; // expunged: no file
  fs.writeFileSync(path.join(root, 'dovecot-uidlist'), uidlist);
  const store = await open(root, '', false);
  const reader = await store.openMailbox('INBOX');
  const full = await collect(reader.messages());
  const pick = (ms: readonly MessageInfo[]): Array<Pick<MessageInfo, 'uid' | 'flags' | 'keywords'>> => ms.map((m) => ({ uid: m.uid, flags: [...m.flags], keywords: [...m.keywords] }));
  t.deepEqual(pick(full).map((m) => m.uid), [1, 2, 3, 5, 6]);
  t.deepEqual(pick(full)[3], { uid: 5, flags: ['\\Seen'], keywords: ['$Label1', 'Work'] });
  const flagsOnly = await collect(reader.messages({ dates: false, flagsOnly: true }));
  t.deepEqual(pick(flagsOnly), pick(full));
  t.deepEqual(pick([...reader.listFlags!()]), pick(full));
  t.deepEqual((await collect(reader.messages({ dates: false, flagsOnly: true, minUid: 3 }))).map((m) => m.uid), [3, 5, 6]);
  // Messages with the same file-name suffix share frozen arrays: a caller cannot change another's flags.
  t.is(flagsOnly[0]!.flags, flagsOnly[2]!.flags);
  t.true(Object.isFrozen(flagsOnly[0]!.flags));
  t.true(Object.isFrozen(flagsOnly[3]!.keywords));
  // The full listing still hands out copies a caller may keep.
  t.not(full[0]!.flags, full[2]!.flags);

  // scratch: the body is read into it (a view of it comes back), the same buffer serves message after
  // message, and one too small is not used.
  const scratch = Buffer.alloc(64);
  for (const [k, m] of full.entries()) {
    const chunks: Buffer[] = [];
    for await (const c of await reader.openMessage(m, { scratch })) chunks.push(c as Buffer);
    t.is(chunks.length, 1);
    t.is(chunks[0]!.buffer, scratch.buffer, 'read into the scratch buffer');
    t.is(chunks[0]!.toString(), `msg${k + 1}\n`);
  }
  const small = Buffer.alloc(5); // size + 1 bytes are needed to notice a file longer than its S=
  const body = await readAll(await reader.openMessage(full[0]!, { scratch: small }));
  t.is(body.toString(), 'msg1\n');
  t.is(small.toString(), '\0\0\0\0\0', 'a scratch buffer too small is left alone');
});

test('corrupt uidlist surfaces as StorageCorruptError with a hint', async (t) => {
  const root = tmpRoot(t);
  fs.mkdirSync(path.join(root, 'cur'));
  fs.writeFileSync(path.join(root, 'dovecot-uidlist'), '3 V1 N1 G00000000000000000000000000000001\n2 :a\n1 :b\n');
  const store = await open(root, '', false);
  const e = await t.throwsAsync(store.openMailbox('INBOX'), { instanceOf: StorageCorruptError, message: /dovecot-uidlist at line 3/ });
  t.regex(e!.hint!, /doveadm force-resync -u alice 'INBOX'/);
});

test('missing root', async (t) => {
  const root = path.join(tmpRoot(t), 'nope');
  await t.throwsAsync(open(root, '', false), { instanceOf: StorageNotFoundError, message: /mail root .*nope.* does not exist/ });
  await open(root, '', true);
  t.true(fs.statSync(root).isDirectory());
});

test('LAYOUT=fs with UTF-8 names, \\NoSelect parents, CONTROL= tree, subscriptions', async (t) => {
  const tmp = tmpRoot(t);
  const root = path.join(tmp, 'Maildir');
  const control = path.join(tmp, 'control');
  const store = await open(root, `:LAYOUT=fs:UTF-8:CONTROL=${control}`);
  await store.createMailbox({ name: 'Entwürfe/Sub', uidValidity: 9, guid: 'f'.repeat(32) });
  await store.createMailbox({ name: 'a.b' });
  t.true(fs.existsSync(path.join(root, 'Entwürfe', 'Sub', 'cur')));
  t.false(fs.existsSync(path.join(root, 'Entwürfe', 'cur')));
  t.false(fs.existsSync(path.join(root, 'Entwürfe', 'Sub', 'maildirfolder')));
  t.true(fs.existsSync(path.join(control, 'Entwürfe', 'Sub', 'dovecot-uidlist')));
  t.false(fs.existsSync(path.join(root, 'Entwürfe', 'Sub', 'dovecot-uidlist')));
  const boxes = await store.listMailboxes();
  t.deepEqual(boxes.map((b) => [b.name, b.selectable]), [['Entwürfe', false], ['Entwürfe/Sub', true], ['INBOX', true], ['a.b', true]]);
  t.is(await store.getMailbox('Entwürfe'), null);
  await t.throwsAsync(store.openMailbox('Entwürfe'), { instanceOf: StorageNotFoundError, message: /NoSelect/ });
  await t.throwsAsync(store.createMailbox({ name: 'x/cur' }), { instanceOf: MailboxNameError });

  const tx = await store.beginSave('Entwürfe/Sub');
  await tx.save(meta(MSG1, { flags: ['\\Answered'] }), Readable.from([MSG1]));
  t.deepEqual(await tx.commit(), { uids: [1], uidValidity: 9 });
  const msgs = await collect((await store.openMailbox('Entwürfe/Sub')).messages());
  t.deepEqual(msgs.map((m) => m.flags), [['\\Answered']]);

  await store.subscribe(['Entwürfe/Sub', 'inbox', 'a.b']);
  t.is(fs.readFileSync(path.join(control, 'subscriptions'), 'utf8'), 'V\t2\n\nEntwürfe\tSub\nINBOX\na.b\n');
  t.deepEqual(await store.listSubscriptions(), ['Entwürfe/Sub', 'INBOX', 'a.b']);
});

test('Maildir++ mUTF-7 listing, subscriptions in mUTF-7, INBOX children, invalid names kept raw', async (t) => {
  const root = tmpRoot(t);
  for (const d of ['.Entw&APw-rfe.Sub', '.R&-D', '.INBOX.Child', '..DOVECOT-TRASH', '.bad&name']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.writeFileSync(path.join(root, '.notadir'), '');
  fs.writeFileSync(path.join(root, 'subscriptions'), 'V\t2\n\nEntw&APw-rfe\tSub\nR&-D\n');
  const store = await open(root, '', false);
  t.deepEqual((await store.listMailboxes()).map((m) => m.name), ['Entwürfe/Sub', 'INBOX', 'INBOX/Child', 'R&D', 'bad&name']);
  t.deepEqual(await store.listSubscriptions(), ['Entwürfe/Sub', 'R&D']);
  const r = await store.openMailbox('bad&name');
  t.is(r.info.messageCount, 0);
  await store.subscribe(['Entwürfe/Sub', 'Gelöscht']);
  t.is(fs.readFileSync(path.join(root, 'subscriptions'), 'utf8'), 'V\t2\n\nEntw&APw-rfe\tSub\nR&-D\nGel&APY-scht\n');
});

/** A dovecot.index with just the base header (version 7.3, uid_validity, next_uid), as index-header.ts reads it. */
function writeIndexHeader(dir: string, uidValidity: number, nextUid: number): void {
  const idx = Buffer.alloc(120);
  idx[0] = 7;
  idx[1] = 3;
  idx[12] = 1;
  idx.writeUInt32LE(uidValidity, 24);
  idx.writeUInt32LE(nextUid, 28);
  fs.writeFileSync(path.join(dir, 'dovecot.index'), idx);
}

test('requested UID must be >= the index next_uid too', async (t) => {
  const root = tmpRoot(t);
  const store = await open(root);
  await store.createMailbox({ name: 'Y', uidValidity: 77 });
  writeIndexHeader(path.join(root, '.Y'), 77, 50);
  const tx = await store.beginSave('Y');
  await tx.save(meta(MSG1, { uid: 10 }), Readable.from([MSG1]));
  await tx.save(meta(MSG1, { uid: 60 }), Readable.from([MSG1]));
  t.deepEqual((await tx.commit()).uids, [50, 60]);
});

test('created files follow the root mode', async (t) => {
  const root = tmpRoot(t);
  fs.chmodSync(root, 0o750);
  const store = await open(root);
  await store.createMailbox({ name: 'M' });
  const tx = await store.beginSave('M');
  await tx.save(meta(MSG1), Readable.from([MSG1]));
  await tx.commit();
  t.is(fs.statSync(path.join(root, '.M')).mode & 0o777, 0o750);
  t.is(fs.statSync(path.join(root, '.M', 'dovecot-uidlist')).mode & 0o777, 0o640);
  const [f] = fs.readdirSync(path.join(root, '.M', 'new'));
  t.is(fs.statSync(path.join(root, '.M', 'new', f!)).mode & 0o777, 0o640);
});

// Needs root to chown; skipped otherwise.
(process.getuid?.() === 0 ? test : test.skip)('as root, everything created belongs to the mail root owner', async (t) => {
  const root = tmpRoot(t);
  fs.chownSync(root, 5000, 5001);
  const store = await open(root);
  await store.createMailbox({ name: 'Own' });
  const tx = await store.beginSave('Own');
  await tx.save(meta(MSG1, { keywords: ['k'] }), Readable.from([MSG1]));
  await tx.commit();
  await store.subscribe(['Own']);
  const walk = (d: string): string[] => fs.readdirSync(d).flatMap((n) => {
    const p = path.join(d, n);
    return fs.statSync(p).isDirectory() ? [p, ...walk(p)] : [p];
  });
  const foreign = walk(root).filter((p) => {
    const st = fs.statSync(p);
    return st.uid !== 5000 || st.gid !== 5001;
  });
  t.deepEqual(foreign, []);
});

test('messages above 1 MiB are streamed: bytes as saved; a file longer than its S= size is an IntegrityError', async (t) => {
  const root = path.join(tmpRoot(t), 'Maildir');
  const store = await open(root);
  const big = Buffer.concat([Buffer.from('Subject: big\n\n'), Buffer.alloc(3 * 1024 * 1024 + 17, 0x61), Buffer.from('\n')]);
  const tx = await store.beginSave('INBOX');
  await tx.save(meta(big, { uid: 1 }), Readable.from([big.subarray(0, 1000), big.subarray(1000)]));
  await tx.save(meta(big, { uid: 2 }), Readable.from([big]));
  await tx.commit();
  const reader = await store.openMailbox('INBOX');
  const msgs = await collect(reader.messages());
  t.deepEqual(msgs.map((m) => [m.uid, m.size]), [[1, big.length], [2, big.length]]);
  t.true((await readAll(await reader.openMessage(msgs[0]!))).equals(big));
  t.is(await reader.readMessage!(msgs[0]!), null, 'over 1 MiB: readMessage declines, openMessage streams');
  // The file of UID 2 grows behind the S= in its name.
  const record = fs.readFileSync(path.join(root, 'dovecot-uidlist'), 'utf8').split('\n').find((l) => l.startsWith('2 '))!;
  const base = record.slice(record.indexOf(':') + 1);
  const file = ['new', 'cur'].filter((sub) => fs.existsSync(path.join(root, sub))).flatMap((sub) => fs.readdirSync(path.join(root, sub)).map((n) => path.join(root, sub, n))).find((f) => path.basename(f).startsWith(base))!;
  fs.appendFileSync(file, 'tail');
  const e = await t.throwsAsync(async () => readAll(await reader.openMessage(msgs[1]!)), { instanceOf: IntegrityError });
  t.regex(e!.message, /UID 2 .*expected \d+ bytes/);
});

test('readMessage: a small message whole, into the scratch buffer when given; renamed by a flag change; a size other than S= fails', async (t) => {
  const root = path.join(tmpRoot(t), 'Maildir');
  const store = await open(root);
  const tx = await store.beginSave('INBOX');
  await tx.save(meta(MSG1, { uid: 1 }), Readable.from([MSG1]));
  await tx.save(meta(MSG1, { uid: 2 }), Readable.from([MSG1]));
  await tx.commit();
  const reader = await store.openMailbox('INBOX');
  const msgs = await collect(reader.messages());
  const scratch = Buffer.alloc(64 * 1024);
  const whole = await reader.readMessage!(msgs[0]!, { scratch });
  t.true(whole!.equals(MSG1));
  t.is(whole!.buffer, scratch.buffer, 'a view of the scratch buffer');
  t.true((await reader.readMessage!(msgs[0]!))!.equals(MSG1), 'without scratch too');
  // Dovecot renames the file when a flag changes: found again in cur/.
  const sub = fs.existsSync(path.join(root, 'new')) && fs.readdirSync(path.join(root, 'new')).length > 0 ? 'new' : 'cur';
  const files = fs.readdirSync(path.join(root, sub)).sort();
  fs.mkdirSync(path.join(root, 'cur'), { recursive: true });
  fs.renameSync(path.join(root, sub, files[0]!), path.join(root, 'cur', `${files[0]!.split(':')[0]}:2,S`));
  t.true((await reader.readMessage!(msgs[0]!))!.equals(MSG1), 'after a rename');
  // UID 2's file is cut short behind its S= size.
  const second = fs.readdirSync(path.join(root, sub)).concat(fs.readdirSync(path.join(root, 'cur'))).find((n) => !n.startsWith(files[0]!.split(':')[0]!))!;
  const file = fs.existsSync(path.join(root, sub, second)) ? path.join(root, sub, second) : path.join(root, 'cur', second);
  fs.truncateSync(file, MSG1.length - 5);
  const e = await t.throwsAsync(reader.readMessage!(msgs[1]!), { instanceOf: IntegrityError });
  t.regex(e!.message, new RegExp(`UID 2 .*expected ${MSG1.length} bytes.* has ${MSG1.length - 5}`));
});

test('permissions: no chmod after the open only where the umask leaves the file mode whole', (t) => {
  const st = (mode: number): fs.Stats => ({ mode: 0o040000 | mode, uid: 1, gid: 1 }) as fs.Stats;
  t.like(permissionsFromRoot(st(0o700), 0o022), { fileMode: 0o600, fileModeOnCreate: true });
  t.like(permissionsFromRoot(st(0o750), 0o022), { fileMode: 0o640, fileModeOnCreate: true }, 'the umask clears only write bits, which 0640 lacks for group and others');
  t.like(permissionsFromRoot(st(0o750), 0o077), { fileMode: 0o640, fileModeOnCreate: false }, 'the umask clears g+r');
  t.like(permissionsFromRoot(st(0o770), 0o022), { fileMode: 0o660, fileModeOnCreate: false }, 'the umask clears g+w');
  t.like(permissionsFromRoot(st(0o700), null), { fileModeOnCreate: false }, 'umask unknown');
  t.is(currentUmask(() => 'Name:\tnode\nUmask:\t0027\nState:\tR\n'), 0o027);
  t.is(currentUmask(() => 'Name:\tnode\n'), null);
  t.is(currentUmask(() => {
    throw new Error('no /proc');
  }), null);
});

test.serial('created files get the group write bit of a 0770 root although the umask (022) clears it at the open', async (t) => {
  const old = process.umask(0o022);
  try {
    const root = tmpRoot(t);
    fs.chmodSync(root, 0o770);
    const store = await open(root);
    const tx = await store.beginSave('INBOX');
    await tx.save(meta(MSG1), Readable.from([MSG1]));
    await tx.commit();
    const [f] = fs.readdirSync(path.join(root, 'new'));
    t.is(fs.statSync(path.join(root, 'new', f!)).mode & 0o777, 0o660);
  } finally {
    process.umask(old);
  }
});

test.serial('a file that does not get its mode from the open (a default ACL, a umask changed since) is chmodded: the first file of a transaction is checked', async (t) => {
  const old = process.umask(0o022);
  try {
    const root = tmpRoot(t);
    fs.chmodSync(root, 0o750);
    const store = await open(root); // 0640 files; umask 022 leaves them whole, so no chmod is planned
    process.umask(0o077); // now the open gives 0600, as a default ACL with group::--- would
    const tx = await store.beginSave('INBOX');
    await tx.save(meta(MSG1, { uid: 1 }), Readable.from([MSG1]));
    await tx.save(meta(MSG2, { uid: 2 }), Readable.from([MSG2]));
    await tx.commit();
    const files = fs.readdirSync(path.join(root, 'new'));
    t.is(files.length, 2);
    for (const f of files) t.is(fs.statSync(path.join(root, 'new', f)).mode & 0o777, 0o640, f);
  } finally {
    process.umask(old);
  }
});

test('a keyword letter without a name while Dovecot holds the uidlist lock: the name written before the lock goes is used, not unknown-N', async (t) => {
  const root = tmpRoot(t);
  for (const d of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(root, d));
  fs.writeFileSync(path.join(root, 'dovecot-uidlist'), '3 V1795873145 N2 G903bfd3779d90a6bab34000083ecc375\n1 :1795873155.M1P1.vm,S=6\n');
  fs.writeFileSync(path.join(root, 'dovecot-keywords'), '0 $Label1\n');
  // Dovecot, mid-sync: letter b is in the file name, its name not yet in dovecot-keywords.
  fs.writeFileSync(path.join(root, 'cur', '1795873155.M1P1.vm,S=6:2,Sab'), 'hello\n');
  fs.writeFileSync(path.join(root, 'dovecot-uidlist.lock'), `${process.pid}:testhost`);
  const done = new Promise<void>((resolve) =>
    setTimeout(() => {
      fs.writeFileSync(path.join(root, 'dovecot-keywords'), '0 $Label1\n1 Work\n');
      fs.unlinkSync(path.join(root, 'dovecot-uidlist.lock'));
      resolve();
    }, 150),
  );
  const store = await open(root, '', false);
  const reader = await store.openMailbox('INBOX');
  const [m] = await collect(reader.messages());
  await done;
  t.deepEqual(m!.keywords, ['$Label1', 'Work']);
  // A letter that stays unnamed (no lock to wait for) is unknown-N, as in Dovecot.
  fs.renameSync(path.join(root, 'cur', '1795873155.M1P1.vm,S=6:2,Sab'), path.join(root, 'cur', '1795873155.M1P1.vm,S=6:2,Sac'));
  const again = await (await open(root, '', false)).openMailbox('INBOX');
  t.deepEqual((await collect(again.messages()))[0]!.keywords, ['$Label1', 'unknown-2']);
});

test('a file without a record whose name is not valid UTF-8 gets no (wrong) record: it is reported, the others get UIDs', async (t) => {
  const root = tmpRoot(t);
  for (const d of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(root, d));
  fs.writeFileSync(path.join(root, 'dovecot-uidlist'), '3 V1795873145 N2 G903bfd3779d90a6bab34000083ecc375\n1 :1795873155.M1P1.vm\n');
  fs.writeFileSync(path.join(root, 'new', '1795873155.M1P1.vm'), 'one\n');
  fs.writeFileSync(path.join(root, 'new', '1800000000.M2P2.mx'), 'two\n');
  // "1800000001.M3P3.h\xe9st": Latin-1 bytes, as an old migration tool may have written them.
  fs.writeFileSync(Buffer.concat([Buffer.from(path.join(root, 'new', '1800000001.M3P3.h')), Buffer.from([0xe9]), Buffer.from('st')]), 'three\n');
  const store = await open(root, '', false);
  const reader = await store.openMailbox('INBOX');
  t.deepEqual((await collect(reader.messages())).map((m) => m.uid), [1, 2]);
  t.is(reader.notListed?.length, 1);
  t.regex(reader.notListed![0]!.message, /new\/1800000001\.M3P3\.h\uFFFDst in mailbox "INBOX" .* its name is not valid UTF-8/);
  t.is(reader.info.changeToken, null, 'the next incremental reads the mailbox again');
  t.is(fs.readFileSync(path.join(root, 'dovecot-uidlist'), 'utf8'), '3 V1795873145 N2 G903bfd3779d90a6bab34000083ecc375\n1 :1795873155.M1P1.vm\n2 :1800000000.M2P2.mx\n');
});

test('a message whose uidlist record and file name are not valid UTF-8 (Dovecot lists it) is read by its bytes, not taken as expunged', async (t) => {
  const root = tmpRoot(t);
  for (const d of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(root, d));
  // Dovecot keeps names as bytes: "h\xe9st" (Latin-1) in the record and the file, one small and one over 1 MiB.
  const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');
  const big = Buffer.from(`Subject: big\n\n${'x'.repeat(1_200_000)}\n`);
  fs.writeFileSync(path.join(root, 'dovecot-uidlist'), Buffer.concat([
    latin1('3 V1795873145 N4 G903bfd3779d90a6bab34000083ecc375\n1 :1795873155.M1P1.vm,S=4\n'),
    latin1(`2 :1795873156.M2P2.h\xe9st,S=6\n3 :1795873157.M3P3.h\xe9st,S=${big.length}\n`),
  ]));
  fs.writeFileSync(path.join(root, 'cur', '1795873155.M1P1.vm,S=4:2,S'), 'one\n');
  fs.writeFileSync(Buffer.concat([Buffer.from(`${root}/cur/`), latin1('1795873156.M2P2.h\xe9st,S=6:2,FS')]), 'two!!\n');
  fs.writeFileSync(Buffer.concat([Buffer.from(`${root}/new/`), latin1(`1795873157.M3P3.h\xe9st,S=${big.length}`)]), big);
  const store = await open(root, '', false);
  const reader = await store.openMailbox('INBOX');
  t.is(reader.info.messageCount, 3);
  const messages = await collect(reader.messages());
  t.deepEqual(messages.map((m) => [m.uid, m.flags]), [[1, ['\\Seen']], [2, ['\\Flagged', '\\Seen']], [3, []]]);
  t.is((await reader.readMessage!(messages[1]!))!.toString(), 'two!!\n');
  t.true((await readAll(await reader.openMessage(messages[2]!))).equals(big));
  t.deepEqual(reader.notListed ?? [], []);
  // Read ahead in the worker (names as one string) too: the worker gets the others, this one is read here.
  const withBodies: number[] = [];
  for await (const m of reader.messagesWithBodies!()) withBodies.push(m.info.uid);
  t.deepEqual(withBodies, [1, 2, 3]);
});

test('readOnly (backup --read-only): files without a record are reported and given no UID; the store is not written', async (t) => {
  const root = tmpRoot(t);
  for (const d of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(root, d));
  const uidlist = '3 V1795873145 N2 G903bfd3779d90a6bab34000083ecc375\n1 :1795873155.M1P1.vm\n';
  fs.writeFileSync(path.join(root, 'dovecot-uidlist'), uidlist);
  fs.writeFileSync(path.join(root, 'new', '1795873155.M1P1.vm'), 'one\n');
  fs.writeFileSync(path.join(root, 'new', '1800000000.M2P2.mx'), 'two\n');
  const before = fs.readdirSync(root).sort();
  const store = await openMaildirStore(parseLocation(`maildir:${root}`, { user: 'u' }), 'u', { readOnly: true });
  const reader = await store.openMailbox('INBOX');
  t.deepEqual((await collect(reader.messages())).map((m) => m.uid), [1]);
  t.is(reader.notListed?.length, 1);
  t.regex(reader.notListed![0]!.message, /new\/1800000000\.M2P2\.mx .* has no UID yet .*--read-only, which changes nothing in the store/);
  t.regex(reader.notListed![0]!.hint ?? '', /back up without --read-only/);
  t.is(reader.info.changeToken, null, 'the next incremental reads the mailbox again');
  t.is(fs.readFileSync(path.join(root, 'dovecot-uidlist'), 'utf8'), uidlist);
  t.deepEqual(fs.readdirSync(root).sort(), before, 'no lock file, no new file');
});

/** Runs `run` with fs[name] replaced by `wrap(real)` (the driver calls fs.<name> through the module object). */
async function withFsPatched<T>(name: 'statSync' | 'openSync', wrap: (real: (...a: unknown[]) => unknown) => (...a: unknown[]) => unknown, run: () => Promise<T>): Promise<T> {
  const target = fs as unknown as Record<string, (...a: unknown[]) => unknown>;
  const real = target[name]!;
  target[name] = wrap(real);
  try {
    return await run();
  } finally {
    target[name] = real;
  }
}

// Review of 2026-12-06 (fourth session): the size probe of files without a recorded size must never
// end the listing, must follow renames, and a file it could not look at must not be read as a message.
test('files without a recorded size: one that cannot be probed (a directory) does not end the listing; the others are read', async (t) => {
  const root = tmpRoot(t);
  for (const d of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(root, d));
  fs.writeFileSync(path.join(root, 'dovecot-uidlist'), '3 V1795873145 N4 G903bfd3779d90a6bab34000083ecc375\n1 :1795873155.M1P1.mta\n2 :1795873156.M2P2.mta\n3 :1795873157.M3P3.mta\n');
  fs.writeFileSync(path.join(root, 'new', '1795873155.M1P1.mta'), 'Subject: one\n\none\n');
  fs.mkdirSync(path.join(root, 'new', '1795873156.M2P2.mta')); // EISDIR when read
  fs.writeFileSync(path.join(root, 'new', '1795873157.M3P3.mta'), gzipSync(Buffer.from('Subject: three\n\nthree\n')));
  const reader = await (await open(root, '', false)).openMailbox('INBOX');
  const listed = await collect(reader.messages());
  t.deepEqual(listed.map((m) => m.uid), [1, 2, 3]);
  t.is((await reader.readMessage!(listed[0]!))!.toString(), 'Subject: one\n\none\n');
  await t.throwsAsync(reader.readMessage!(listed[1]!));
  t.is((await reader.readMessage!(listed[2]!))!.toString(), 'Subject: three\n\nthree\n');
});

test('a compressed file without a recorded size renamed between its stat and its probe is still read decompressed', async (t) => {
  const root = tmpRoot(t);
  for (const d of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(root, d));
  const body = Buffer.from(`Subject: hi\n\n${'hello world\n'.repeat(50)}`);
  fs.writeFileSync(path.join(root, 'dovecot-uidlist'), '3 V1795873145 N2 G903bfd3779d90a6bab34000083ecc375\n1 :1795873155.M1P1.mta\n');
  const oldName = path.join(root, 'new', '1795873155.M1P1.mta');
  fs.writeFileSync(oldName, gzipSync(body));
  const reader = await (await open(root, '', false)).openMailbox('INBOX');
  let moved = false;
  // Dovecot moves it new/ -> cur/ right after the stat.
  const listed = await withFsPatched('statSync', (real) => (p, ...rest) => {
    const r = real(p, ...rest);
    if (!moved && String(p) === oldName) {
      moved = true;
      fs.renameSync(oldName, path.join(root, 'cur', '1795873155.M1P1.mta:2,S'));
    }
    return r;
  }, () => collect(reader.messages()));
  t.true(moved);
  t.is(listed[0]!.size, body.length);
  t.true((await reader.readMessage!(listed[0]!))!.equals(body));
});

test('a compressed file without a recorded size that could not be probed is refused when read, not taken as the message', async (t) => {
  const root = tmpRoot(t);
  for (const d of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(root, d));
  fs.writeFileSync(path.join(root, 'dovecot-uidlist'), '3 V1795873145 N2 G903bfd3779d90a6bab34000083ecc375\n1 :1795873155.M1P1.mta\n');
  const file = path.join(root, 'new', '1795873155.M1P1.mta');
  fs.writeFileSync(file, gzipSync(Buffer.from('Subject: hi\n\nhi\n')));
  const reader = await (await open(root, '', false)).openMailbox('INBOX');
  let failed = false;
  // The probe's open fails once (EACCES for a non-root backup user, or EIO); the read later works.
  const listed = await withFsPatched('openSync', (real) => (p, ...rest) => {
    if (!failed && String(p) === file) {
      failed = true;
      throw Object.assign(new Error(`EACCES: permission denied, open '${file}'`), { code: 'EACCES', syscall: 'open', path: file });
    }
    return real(p, ...rest);
  }, () => collect(reader.messages()));
  t.true(failed);
  await t.throwsAsync(reader.readMessage!(listed[0]!), { instanceOf: IntegrityError, message: /starts as gzip data, no size is recorded .* could not be looked at/ });
  await t.throwsAsync(async () => readAll(await reader.openMessage(listed[0]!)), { instanceOf: IntegrityError });
});

test('a message whose name is not valid UTF-8, renamed (a flag change) after the listing, is found again by its bytes', async (t) => {
  const root = tmpRoot(t);
  for (const d of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(root, d));
  const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');
  fs.writeFileSync(path.join(root, 'dovecot-uidlist'), latin1('3 V1795873145 N3 G903bfd3779d90a6bab34000083ecc375\n1 :1795873155.M1P1.vm,S=4\n2 :1795873156.M2P2.h\xe9st,S=6\n'));
  fs.writeFileSync(path.join(root, 'cur', '1795873155.M1P1.vm,S=4:2,S'), 'one\n');
  const dir = Buffer.from(`${root}/cur/`);
  fs.writeFileSync(Buffer.concat([dir, latin1('1795873156.M2P2.h\xe9st,S=6:2,S')]), 'two!!\n');
  const reader = await (await open(root, '', false)).openMailbox('INBOX');
  t.deepEqual([...reader.listFlags!()].map((m) => m.uid), [1, 2]);
  fs.renameSync(Buffer.concat([dir, latin1('1795873156.M2P2.h\xe9st,S=6:2,S')]), Buffer.concat([dir, latin1('1795873156.M2P2.h\xe9st,S=6:2,FS')]));
  const listed = await collect(reader.messages());
  t.deepEqual(listed.map((m) => m.uid), [1, 2]);
  t.is((await reader.readMessage!(listed[1]!))!.toString(), 'two!!\n');
});

test('writeSmallFile: a name taken by another writer (EEXIST) is left alone; a file it created and could not finish is removed', (t) => {
  const dir = tmpRoot(t);
  const taken = path.join(dir, 'taken');
  fs.writeFileSync(taken, 'another writer\n');
  const perms = { dirMode: 0o700, fileMode: 0o600, owner: null };
  t.throws(() => writeSmallFile(taken, MSG1, 1_700_000_000, perms, 'always'), { code: 'EEXIST' });
  t.is(fs.readFileSync(taken, 'utf8'), 'another writer\n');
  // Fails after the open (an owner the call refuses): nothing of the new file stays.
  const fresh = path.join(dir, 'fresh');
  t.throws(() => writeSmallFile(fresh, MSG1, 1_700_000_000, { ...perms, owner: { uid: -5, gid: -5 } }, 'always'));
  t.false(fs.existsSync(fresh));
  const ok = writeSmallFile(path.join(dir, 'ok'), MSG1, 1_700_000_000, perms, 'always');
  fs.closeSync(ok.fd);
  t.true(fs.readFileSync(path.join(dir, 'ok')).equals(MSG1));
});

test('keywords differing only in the case of non-ASCII letters are two keywords (letters, reading back); ASCII case variants one', async (t) => {
  const root = tmpRoot(t);
  const store = await open(root);
  const tx = await store.beginSave('INBOX');
  await tx.save(meta(MSG1, { keywords: ['Ärger', 'ärger', 'Work', 'work'] }), Readable.from([MSG1]));
  await tx.save(meta(MSG2, { keywords: ['WORK', 'ärger'] }), Readable.from([MSG2]));
  await tx.commit();
  t.is(fs.readFileSync(path.join(root, 'dovecot-keywords'), 'utf8'), '0 Ärger\n1 ärger\n2 Work\n');
  const reader = await (await open(root, '', false)).openMailbox('INBOX');
  const msgs = await collect(reader.messages());
  t.deepEqual(msgs.map((m) => m.keywords), [['Work', 'Ärger', 'ärger'], ['Work', 'ärger']]);
});

test('an INTERNALDATE before 1970 is the file mtime as it is (Node would take a negative number of seconds for "now")', async (t) => {
  const root = tmpRoot(t);
  const store = await open(root);
  const tx = await store.beginSave('INBOX');
  await tx.save(meta(MSG1, { internalDate: -315_619_200 }), new Uint8Array(MSG1));
  await tx.save(meta(MSG3, { internalDate: -1 }), Readable.from([MSG3]));
  await tx.commit();
  const reader = await (await open(root, '', false)).openMailbox('INBOX');
  t.deepEqual((await collect(reader.messages())).map((m) => m.internalDate), [-315_619_200, -1]);
});
