import test from 'ava';
import { readFile, rm, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { IntegrityError, StorageCorruptError, StorageNotFoundError } from '../../../../src/core/errors.js';
import { parseLocation } from '../../../../src/storage/location.js';
import { openSdboxStore, SDBOX_CAPABILITIES } from '../../../../src/storage/dbox/single/index.js';
import type { MessageInfo, MessagePart } from '../../../../src/storage/types.js';
import { encodeBase64Lines } from '../../../../src/core/base64-lines.js';
import { STORES, copyFixture } from './fixture-copy.js';
import { assertStoreMatches, loadExpected, readAll } from './store-expectations.js';

const FIX = path.join(STORES, 'sdbox');
const loc = (dir: string) => parseLocation(`sdbox:${dir}/root`, { user: 'carol' });

test('sdbox fixture: every mailbox and message equals what Dovecot reported', async (t) => {
  const store = await openSdboxStore(loc(FIX), 'carol', { attachmentDir: path.join(FIX, 'attachments') });
  t.true(store.capabilities.sis);
  t.false(store.capabilities.writable);
  const n = await assertStoreMatches(t, store, loadExpected(path.join(FIX, 'expected.json')), { saveDate: false });
  t.is(n, 17);
});

test('sdbox lists the \\NoSelect parent "Work" and decodes mUTF-7 names', async (t) => {
  const store = await openSdboxStore(loc(FIX), 'carol', { attachmentDir: null });
  const boxes = await store.listMailboxes();
  t.like(boxes.find((b) => b.name === 'Work'), { selectable: false });
  t.truthy(boxes.find((b) => b.name === 'Entwürfe'));
  t.false(store.capabilities.sis);
  t.deepEqual({ ...store.capabilities, sis: false }, SDBOX_CAPABILITIES);
  await t.throwsAsync(store.openMailbox('Work'), { instanceOf: StorageNotFoundError });
  await t.throwsAsync(store.openMailbox('Nope'), { instanceOf: StorageNotFoundError, message: /Nope/ });
});

async function messagesOf(store: Awaited<ReturnType<typeof openSdboxStore>>, box: string): Promise<{ reader: Awaited<ReturnType<typeof store.openMailbox>>; list: MessageInfo[] }> {
  const reader = await store.openMailbox(box);
  const list: MessageInfo[] = [];
  for await (const m of reader.messages()) list.push(m);
  return { reader, list };
}

async function joinParts(parts: MessagePart[]): Promise<Buffer> {
  const out: Buffer[] = [];
  for (const p of parts) {
    if (p.kind === 'inline') out.push(p.data);
    else {
      const content = await p.open();
      const encoded = p.encoding.type === 'raw' ? await readAll(content) : await readAll(encodeBase64Lines(content, p.encoding.lineLength, p.encoding.crlf));
      out.push(encoded.subarray(0, p.size));
    }
  }
  return Buffer.concat(out);
}

test('openMessageParts joins to the same bytes as openMessage, and shares attachment content', async (t) => {
  const store = await openSdboxStore(loc(FIX), 'carol', { attachmentDir: path.join(FIX, 'attachments') });
  const { reader, list } = await messagesOf(store, 'INBOX');
  let withAttachments = 0;
  const contents = new Set<string>();
  for (const m of list) {
    const parts = await reader.openMessageParts!(m);
    const whole = await readAll(await reader.openMessage(m));
    if (parts === null) continue;
    withAttachments++;
    t.deepEqual(await joinParts(parts), whole, `UID ${m.uid}`);
    for (const p of parts) if (p.kind === 'attachment') contents.add((await readAll(await p.open())).toString('hex'));
  }
  t.is(withAttachments, 6); // UIDs 2,3,4,5,6,9 (4 has two); plain 1 and 8 are stored whole
  t.is(contents.size, 4); // 3000-byte file x3, 2500 x2, irregular raw, raw 7bit
});

test('bodies opened concurrently are each their own (the locator reuses one read buffer), with or without scratch', async (t) => {
  const store = await openSdboxStore(loc(FIX), 'carol', { attachmentDir: path.join(FIX, 'attachments') });
  const { reader, list } = await messagesOf(store, 'INBOX');
  const expected = new Map<number, Buffer>();
  for (const m of list) expected.set(m.uid, await readAll(await reader.openMessage(m)));
  // Every stream opened before any is read: each open reads its file into the locator's one buffer,
  // so a body still pointing into it would show the next message's bytes.
  const opened = [];
  for (const m of list) opened.push([m.uid, await reader.openMessage(m)] as const);
  for (const [uid, stream] of opened) t.deepEqual(await readAll(stream), expected.get(uid), `UID ${uid}`);
  // All at once: describes interleave (a locate that finds the buffer busy reads into its own).
  const all = await Promise.all(list.map(async (m) => [m.uid, await readAll(await reader.openMessage(m))] as const));
  for (const [uid, body] of all) t.deepEqual(body, expected.get(uid), `UID ${uid}`);
  // Listed one after another, then each opened with a scratch the caller reuses (as the backup does).
  const scratch = Buffer.alloc(1024 * 1024 + 1);
  for await (const m of reader.messages()) {
    const body = Buffer.from(await readAll(await reader.openMessage(m, { scratch })));
    t.deepEqual(body, expected.get(m.uid), `UID ${m.uid} with scratch`);
  }
  await reader.close();
  await store.close();
});

test('a message with external attachments needs the attachment dir; plain ones do not', async (t) => {
  const store = await openSdboxStore(loc(FIX), 'carol', { attachmentDir: null });
  const { reader, list } = await messagesOf(store, 'INBOX');
  t.is(reader.openMessageParts, undefined);
  t.is((await readAll(await reader.openMessage(list[0]!))).length, list[0]!.size);
  await t.throwsAsync(reader.openMessage(list[1]!), { instanceOf: StorageNotFoundError, message: /UID 2 in mailbox "INBOX".*attachment directory/ });
});

test('a missing attachment file fails that message only, naming mailbox, UID and path', async (t) => {
  const { dir, cleanup } = await copyFixture('sdbox');
  t.teardown(cleanup);
  await rm(path.join(dir, 'attachments/41'), { recursive: true });
  const store = await openSdboxStore(loc(dir), 'carol', { attachmentDir: path.join(dir, 'attachments') });
  const { reader, list } = await messagesOf(store, 'INBOX');
  const err = await t.throwsAsync(reader.openMessage(list.find((m) => m.uid === 5)!), { instanceOf: StorageNotFoundError });
  t.regex(err!.message, /UID 5 in mailbox "INBOX".*attachments\/41\/79\/4179d079/);
  t.is(err!.context.uid, 5);
  t.is((await readAll(await reader.openMessage(list.find((m) => m.uid === 2)!))).length, 4385);
});

test('a truncated u.N file fails that message in messages() and the listing continues', async (t) => {
  const { dir, cleanup } = await copyFixture('sdbox');
  t.teardown(cleanup);
  await truncate(path.join(dir, 'root/mailboxes/INBOX/dbox-Mails/u.3'), 200);
  const store = await openSdboxStore(loc(dir), 'carol', { attachmentDir: path.join(dir, 'attachments') });
  const reader = await store.openMailbox('INBOX');
  const it = reader.messages()[Symbol.asyncIterator]();
  const uids: number[] = [];
  const errors: unknown[] = [];
  for (;;) {
    try {
      const r = await it.next();
      if (r.done) break;
      uids.push(r.value.uid);
    } catch (e) {
      errors.push(e);
    }
  }
  t.deepEqual(uids, [1, 2, 4, 5, 6, 8, 9]);
  t.is(errors.length, 1);
  t.true(errors[0] instanceof StorageCorruptError);
  t.regex((errors[0] as Error).message, /u\.3 at offset \d+: .*truncated/);
});

test('unknown metadata keys (POP3 UIDL) are carried in extra', async (t) => {
  const { dir, cleanup } = await copyFixture('sdbox');
  t.teardown(cleanup);
  const file = path.join(dir, 'root/mailboxes/INBOX/dbox-Mails/u.1');
  const buf = await readFile(file);
  t.is(buf.subarray(-2).toString(), '\n\n');
  await writeFile(file, Buffer.concat([buf.subarray(0, -1), Buffer.from('Pmy-uidl-1\nO7\nPsecond\n\n')]));
  const store = await openSdboxStore(loc(dir), 'carol', { attachmentDir: null });
  const { list } = await messagesOf(store, 'INBOX');
  t.deepEqual(list[0]!.extra, { 'dbox.P': 'my-uidl-1', 'dbox.O': '7', 'dbox.P.2': 'second' });
});

test('a size that differs from the listing fails openMessage; a file cut short after listing is served as listed while held whole, else fails', async (t) => {
  const { dir, cleanup } = await copyFixture('sdbox');
  t.teardown(cleanup);
  const store = await openSdboxStore(loc(dir), 'carol', { attachmentDir: null });
  const { reader, list } = await messagesOf(store, 'a.b');
  await t.throwsAsync(reader.openMessage({ ...list[0]!, size: list[0]!.size + 1 }), { instanceOf: IntegrityError, message: /UID 1 in mailbox "a.b"/ });
  await t.throwsAsync(reader.readMessage!({ ...list[0]!, size: list[0]!.size + 1 }), { instanceOf: IntegrityError, message: /UID 1 in mailbox "a.b"/ });
  const listed = await readAll(await reader.openMessage(list[0]!));
  await truncate(path.join(dir, 'root/mailboxes/a.b/dbox-Mails/u.1'), 100);
  // The reader still holds u.1 whole, as read when it was listed (the last message described): a
  // snapshot of that moment, served without reading the file again.
  t.deepEqual(await readAll(await reader.openMessage(list[0]!)), listed);
  t.deepEqual(await reader.readMessage!(list[0]!), listed);
  await reader.close();
  // Once another message of the mailbox was described (the locator's buffer holds that file now), a
  // file cut short is read again and found so.
  const inbox = await messagesOf(store, 'INBOX');
  const [first, second] = inbox.list;
  const firstBytes = await readAll(await inbox.reader.openMessage(first!));
  await truncate(path.join(dir, `root/mailboxes/INBOX/dbox-Mails/u.${first!.uid}`), 100);
  t.deepEqual(await readAll(await inbox.reader.openMessage(first!)), firstBytes, 'still held whole');
  // Describe another message: its file goes into the buffer (UID 2 has SIS references, so the read
  // itself fails for want of the attachment directory, after the file was read).
  await t.throwsAsync(inbox.reader.readMessage!(second!), { instanceOf: StorageNotFoundError, message: /UID 2 .*no attachment directory/ });
  await t.throwsAsync(inbox.reader.openMessage(first!), { instanceOf: StorageCorruptError, message: /u\.1 at offset \d+: .*truncated/ });
  await t.throwsAsync(inbox.reader.readMessage!(first!), { instanceOf: StorageCorruptError, message: /u\.1 at offset \d+: .*truncated/ });
});

test('flagsOnly lists UIDs, flags, keywords and modseqs from the index alone: no message file is opened', async (t) => {
  const { dir, cleanup } = await copyFixture('sdbox');
  t.teardown(cleanup);
  const store = await openSdboxStore(loc(dir), 'carol', { attachmentDir: null });
  const { list: full } = await messagesOf(store, 'a.b');
  t.true(full.length > 0);
  // With every message file gone, a flags-only listing still gives the same state...
  const mails = path.join(dir, 'root/mailboxes/a.b/dbox-Mails');
  for (const m of full) await rm(path.join(mails, `u.${m.uid}`));
  const reader = await store.openMailbox('a.b');
  const quick: MessageInfo[] = [];
  for await (const m of reader.messages({ flagsOnly: true, dates: false })) quick.push(m);
  const state = (m: MessageInfo) => ({ uid: m.uid, flags: m.flags, keywords: m.keywords, modseq: m.modseq });
  t.deepEqual(quick.map(state), full.map(state));
  // ...while a full listing needs the files.
  await t.throwsAsync(reader.messages()[Symbol.asyncIterator]().next(), { instanceOf: StorageNotFoundError });
  await reader.close();
});
