import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StorageCorruptError, StorageNotFoundError } from '../../../../src/core/errors.js';
import { parseLocation } from '../../../../src/storage/location.js';
import { MDBOX_CAPABILITIES, openMdboxStore } from '../../../../src/storage/dbox/multi/index.js';
import { readMapIndex } from '../../../../src/storage/dbox/multi/map-index.js';
import { STORES, copyFixture } from './fixture-copy.js';
import { assertStoreMatches, loadExpected, readAll } from './store-expectations.js';

const FIX = path.join(STORES, 'mdbox');
const loc = (dir: string) => parseLocation(`mdbox:${dir}/root`, { user: 'dave' });

test('mdbox fixture: every mailbox and message equals what Dovecot reported, save dates included', async (t) => {
  const store = await openMdboxStore(loc(FIX), 'dave', { attachmentDir: path.join(FIX, 'attachments') });
  t.deepEqual({ ...store.capabilities, sis: false }, MDBOX_CAPABILITIES);
  const n = await assertStoreMatches(t, store, loadExpected(path.join(FIX, 'expected.json')), { saveDate: true });
  t.is(n, 16);
});

test('mdbox map index: copies share one map record with refcount 2, purged file ids', async (t) => {
  const map = await readMapIndex(loc(FIX));
  const store = await openMdboxStore(loc(FIX), 'dave', { attachmentDir: null });
  const reader = await store.openMailbox('Work/Projects');
  const uids: number[] = [];
  for await (const m of reader.messages()) uids.push(m.uid);
  t.deepEqual(uids, [2, 3]);
  // Every live record points into m.2 (the purge rewrote m.1 into m.2).
  const fileIds = new Set<number>();
  let shared = 0;
  for (let mapUid = 1; mapUid < 40; mapUid++) {
    const r = map.lookup(mapUid);
    if (!r) continue;
    fileIds.add(r.fileId);
    if (r.refcount === 2) shared++;
  }
  t.deepEqual([...fileIds], [2]);
  t.is(shared, 2);
});

test('mdbox: a GUID in the file that does not match the index guid record fails that message', async (t) => {
  const { dir, cleanup } = await copyFixture('mdbox');
  t.teardown(cleanup);
  const file = path.join(dir, 'root/storage/m.2');
  const buf = await readFile(file);
  const expected = loadExpected(path.join(dir, 'expected.json'));
  const guid = expected.mailboxes['a.b']!.messages[0]!.guid;
  const at = buf.indexOf(`G${guid}`);
  t.true(at > 0);
  buf.write('0', at + 1, 'latin1');
  await writeFile(file, buf);
  const store = await openMdboxStore(loc(dir), 'dave', { attachmentDir: null });
  const reader = await store.openMailbox('a.b');
  const it = reader.messages()[Symbol.asyncIterator]();
  await t.throwsAsync(it.next(), { instanceOf: StorageCorruptError, message: /UID 1 in mailbox "a.b": GUID .* does not match/ });
});

test('mdbox: a storage file that is gone fails its messages with StorageNotFoundError', async (t) => {
  const { dir, cleanup } = await copyFixture('mdbox');
  t.teardown(cleanup);
  const { rm } = await import('node:fs/promises');
  await rm(path.join(dir, 'root/storage/m.2'));
  const store = await openMdboxStore(loc(dir), 'dave', { attachmentDir: null });
  const reader = await store.openMailbox('INBOX');
  const it = reader.messages()[Symbol.asyncIterator]();
  await t.throwsAsync(it.next(), { instanceOf: StorageNotFoundError, message: /UID 1 in mailbox "INBOX": storage file m\.2/ });
});

test('mdbox: SIS message bytes are rebuilt without the sdbox suffix', async (t) => {
  const store = await openMdboxStore(loc(FIX), 'dave', { attachmentDir: path.join(FIX, 'attachments') });
  const reader = await store.openMailbox('INBOX');
  const list = [];
  for await (const m of reader.messages()) list.push(m);
  const m4 = list.find((m) => m.uid === 4)!;
  const body = await readAll(await reader.openMessage(m4));
  t.is(body.length, 7909);
  const parts = (await reader.openMessageParts!(m4))!;
  t.deepEqual(parts.map((p) => (p.kind === 'inline' ? 'inline' : `${p.encoding.type}:${p.contentSize}`)), ['inline', 'base64:3000', 'inline', 'base64:2500', 'inline']);
  await t.throwsAsync(store.openMailbox('Work'), { instanceOf: StorageNotFoundError });
});

test('mdbox: message files without a map index fail the mailbox with one error naming where the map was looked for', async (t) => {
  const { dir, cleanup } = await copyFixture('mdbox');
  t.teardown(cleanup);
  const { readdir, rm } = await import('node:fs/promises');
  for (const f of await readdir(path.join(dir, 'root/storage'))) if (f.startsWith('dovecot.map.index')) await rm(path.join(dir, 'root/storage', f));
  const store = await openMdboxStore(loc(dir), 'dave', { attachmentDir: null });
  await t.throwsAsync(store.openMailbox('INBOX'), { instanceOf: StorageCorruptError, message: /has message files in .*storage but no map index \(.*root\/storage\/dovecot\.map\.index/ });
});
