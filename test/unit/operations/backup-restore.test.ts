// backup -> dump -> restore through the real archive writer/reader and the memory driver: identity
// preservation, idempotency, selection, appends into non-empty mailboxes, and damaged dumps.
import test from 'ava';
import { PassThrough, Readable } from 'node:stream';
import { DumpWriter } from '../../../src/archive/writer.js';
import { ArchiveTruncatedError, ArchiveCorruptError, StorageCorruptError } from '../../../src/core/errors.js';
import { backup, defaultBackupOptions } from '../../../src/operations/backup.js';
import { defaultRestoreOptions, restore, restoreSummaryOf } from '../../../src/operations/restore.js';
import { UidSet } from '../../../src/operations/selection.js';
import { listDump } from '../../../src/operations/list.js';
import { verify } from '../../../src/operations/verify.js';
import { MemoryStore, createMemoryStoreData, type MemoryStoreData } from '../../../src/storage/memory/index.js';
import type { MessageSource, SystemFlag } from '../../../src/storage/types.js';

const T = 1_764_000_000;

function eml(n: number, subject: string, extra = ''): Buffer {
  return Buffer.from(`From: Sender ${n} <s${n}@example.org>\nSubject: ${subject}\nMessage-ID: <m${n}@example.org>\n${extra}\nBody of message ${n}.\n${'x'.repeat(n * 37)}\n`);
}

async function populate(): Promise<MemoryStoreData> {
  const data = createMemoryStoreData();
  const store = new MemoryStore('alice', data);
  const add = async (box: string, uidValidity: number, msgs: { uid: number; body: Buffer; flags: SystemFlag[]; keywords: string[] }[], uidNext?: number) => {
    await store.createMailbox({ name: box, guid: `${uidValidity.toString(16).padStart(8, '0')}${'ab'.repeat(12)}`, uidValidity });
    const tx = await store.beginSave(box);
    for (const m of msgs) await tx.save({ uid: m.uid, guid: `guid-${box}-${m.uid}`, flags: m.flags, keywords: m.keywords, internalDate: T + m.uid * 60, size: m.body.length }, Readable.from([m.body]));
    await tx.commit();
    if (uidNext) data.mailboxes.get(box)!.info = { ...data.mailboxes.get(box)!.info, uidNext };
  };
  await add('INBOX', 1001, [
    { uid: 1, body: eml(1, 'Hello'), flags: ['\\Seen'], keywords: [] },
    { uid: 2, body: eml(2, '=?utf-8?q?Gr=C3=BC=C3=9Fe?='), flags: ['\\Flagged', '\\Seen'], keywords: ['$Label1', 'Important'] },
    { uid: 5, body: eml(5, 'Gap before me'), flags: [], keywords: [] },
  ], 9);
  await add('Archive/2025', 1002, [{ uid: 3, body: eml(3, 'Old'), flags: ['\\Answered', '\\Seen'], keywords: ['Important'] }]);
  await add('Entwürfe/Ünïcødé ✓', 1003, [{ uid: 1, body: eml(4, 'Draft', 'X-8bit: Grüße\n'), flags: ['\\Draft'], keywords: [] }]);
  await add('Empty', 1004, []);
  await store.subscribe(['Archive', 'Archive/2025', 'Entwürfe/Ünïcødé ✓']);
  return data;
}

async function dumpOf(data: MemoryStoreData): Promise<Buffer> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const writer = await DumpWriter.create(out, {
    creator: 'mailvault test',
    created: '2026-11-28T00:00:00Z',
    runId: '00000000-0000-4000-8000-000000000000',
    kind: 'full',
    base: null,
    source: { driver: 'memory', location: 'memory:', host: 'test' },
    options: {},
  });
  const summary = await backup(['alice'], async () => new MemoryStore('alice', data) as MessageSource, writer, defaultBackupOptions());
  await writer.finish();
  if (summary.skipped.length) throw new Error(`skipped: ${JSON.stringify(summary.skipped)}`);
  return Buffer.concat(chunks);
}

async function snapshot(data: MemoryStoreData) {
  const store = new MemoryStore('alice', data);
  const boxes = [];
  for (const info of await store.listMailboxes()) {
    const box = data.mailboxes.get(info.name)!;
    boxes.push({
      name: info.name,
      guid: info.guid,
      uidValidity: info.uidValidity,
      uidNext: info.uidNext,
      messages: box.messages.map((m) => ({ uid: m.info.uid, guid: m.info.guid, flags: m.info.flags, keywords: m.info.keywords, internalDate: m.info.internalDate, body: m.body.toString('base64') })),
    });
  }
  return { boxes, subscriptions: await store.listSubscriptions() };
}

const sinkOf = (data: MemoryStoreData) => async (user: string) => new MemoryStore(user, data);

test('round trip: restore into an empty store reproduces mailboxes, identities, messages and subscriptions', async (t) => {
  const source = await populate();
  const dump = await dumpOf(source);
  const target = createMemoryStoreData();
  const summary = await restore(Readable.from([dump]), sinkOf(target), defaultRestoreOptions());
  t.is(summary.messages, 5);
  t.true(summary.dumpComplete);
  t.deepEqual(await snapshot(target), await snapshot(source));
});

test('a second identical restore adds nothing', async (t) => {
  const source = await populate();
  const dump = await dumpOf(source);
  const target = createMemoryStoreData();
  await restore(Readable.from([dump]), sinkOf(target), defaultRestoreOptions());
  const before = await snapshot(target);
  const again = await restore(Readable.from([dump]), sinkOf(target), defaultRestoreOptions());
  t.is(again.messages, 0);
  t.is(again.alreadyPresent, 5);
  t.deepEqual(await snapshot(target), before);
});

test('the dump is deterministic for the same store state (all but the trailer, whose completion time is a run field)', async (t) => {
  const source = await populate();
  const [a, b] = [await dumpOf(source), await dumpOf(source)];
  t.is(a.length, b.length);
  // A dump written by mailvault ends with the trailer's header (512), its 1024 bytes and 1024 zero bytes.
  const beforeTrailer = a.length - 512 - 1024 - 1024;
  t.is(a.subarray(beforeTrailer, beforeTrailer + 100).toString('latin1').replace(/\0+$/, ''), 'mailvault/trailer.json');
  t.deepEqual(a.subarray(0, beforeTrailer), b.subarray(0, beforeTrailer));
});

test('single message by mailbox and UID comes back after it was expunged, with a new UID above UIDNEXT', async (t) => {
  const source = await populate();
  const dump = await dumpOf(source);
  // the live store lost INBOX UID 2
  const live = await populate();
  const inbox = live.mailboxes.get('INBOX')!;
  const lost = inbox.messages.find((m) => m.info.uid === 2)!;
  inbox.messages = inbox.messages.filter((m) => m.info.uid !== 2);
  const summary = await restore(Readable.from([dump]), sinkOf(live), defaultRestoreOptions({ selection: { users: ['alice'], mailboxes: ['INBOX'], uids: UidSet.parse('2') } }));
  t.is(summary.messages, 1);
  const back = inbox.messages.find((m) => m.info.guid === lost.info.guid)!;
  t.truthy(back, 'the message is back');
  t.is(back.info.uid, 9, 'UID 2 is below UIDNEXT 9, so a new UID is assigned');
  t.deepEqual(back.body, lost.body);
  t.deepEqual(back.info.flags, lost.info.flags);
  t.deepEqual(back.info.keywords, lost.info.keywords);
  t.is(back.info.internalDate, lost.info.internalDate);
  const again = await restore(Readable.from([dump]), sinkOf(live), defaultRestoreOptions({ selection: { users: ['alice'], mailboxes: ['INBOX'], uids: UidSet.parse('2') } }));
  t.is(again.messages, 0);
  t.is(inbox.messages.length, 3);
});

test('selection by Message-ID restores only that message and creates only its mailbox', async (t) => {
  const dump = await dumpOf(await populate());
  const target = createMemoryStoreData();
  const summary = await restore(Readable.from([dump]), sinkOf(target), defaultRestoreOptions({ selection: { messageIds: ['m3@example.org'] } }));
  t.is(summary.messages, 1);
  t.deepEqual([...target.mailboxes.keys()], ['Archive/2025']);
});

test('into a mailbox that already holds other mail, messages are appended with new UIDs', async (t) => {
  const dump = await dumpOf(await populate());
  const target = createMemoryStoreData();
  const store = new MemoryStore('alice', target);
  await store.createMailbox({ name: 'INBOX', uidValidity: 42 });
  const tx = await store.beginSave('INBOX');
  const other = Buffer.from('Subject: other\n\nother\n');
  await tx.save({ flags: [], keywords: [], internalDate: T, size: other.length }, Readable.from([other]));
  await tx.commit();
  await restore(Readable.from([dump]), sinkOf(target), defaultRestoreOptions({ selection: { mailboxes: ['INBOX'] } }));
  const inbox = target.mailboxes.get('INBOX')!;
  t.is(inbox.info.uidValidity, 42, 'the existing mailbox keeps its identity');
  t.deepEqual(inbox.messages.map((m) => m.info.uid), [1, 2, 3, 4]);
});

test('--to-user and --to-mailbox put everything selected into that place', async (t) => {
  const dump = await dumpOf(await populate());
  const target = createMemoryStoreData();
  const users: string[] = [];
  await restore(Readable.from([dump]), async (u) => { users.push(u); return new MemoryStore(u, target); }, defaultRestoreOptions({ toUser: 'bob', toMailbox: 'Restored' }));
  t.deepEqual([...new Set(users)], ['bob']);
  t.deepEqual([...target.mailboxes.keys()], ['Restored']);
  t.is(target.mailboxes.get('Restored')!.messages.length, 5);
});

test('a truncated dump: what is complete and verified is restored, then a typed error with a summary', async (t) => {
  const dump = await dumpOf(await populate());
  // cut in the middle of the last mailbox's records (before the trailer)
  const cut = dump.subarray(0, Math.floor(dump.length * 0.7));
  const target = createMemoryStoreData();
  const err = await t.throwsAsync(restore(Readable.from([cut]), sinkOf(target), defaultRestoreOptions()));
  t.true(err instanceof ArchiveTruncatedError || err instanceof ArchiveCorruptError, `got ${err?.constructor.name}`);
  const summary = restoreSummaryOf(err);
  t.truthy(summary);
  t.false(summary!.dumpComplete);
  const restored = [...target.mailboxes.values()].reduce((n, b) => n + b.messages.length, 0);
  t.is(restored, summary!.messages, 'everything counted as restored is in the store');
  t.true(restored >= 1 && restored < 5, `restored ${restored}`);
});

test('a flipped byte in a body is never restored', async (t) => {
  const source = await populate();
  const dump = Buffer.from(await dumpOf(source));
  const at = dump.indexOf('Body of message 2.');
  dump[at] = dump[at]! ^ 0x20;
  const target = createMemoryStoreData();
  await t.throwsAsync(restore(Readable.from([dump]), sinkOf(target), defaultRestoreOptions()), { instanceOf: ArchiveCorruptError });
  for (const box of target.mailboxes.values()) for (const m of box.messages) t.false(m.body.includes('body of message 2.'));
});

test('list yields one item per message with the envelope summary; verify accepts the dump', async (t) => {
  const dump = await dumpOf(await populate());
  const items = [];
  for await (const i of listDump(Readable.from([dump]))) if (i.kind === 'message') items.push(i);
  t.is(items.length, 5);
  t.deepEqual(items.map((i) => i.summary.subject), ['Old', 'Draft', 'Hello', 'Grüße', 'Gap before me']);
  t.deepEqual(items.map((i) => i.id), [...items.map((i) => i.id)].sort((a, b) => a - b));
  const v = await verify(Readable.from([dump]));
  t.true(v.ok, JSON.stringify(v.error));
  t.is(v.messages, 5);
});

test('a body failing before the writer took a byte is one skipped message; failing midway aborts the run with that error', async (t) => {
  const data = await populate();
  const big = Buffer.concat([eml(9, 'Big'), Buffer.alloc(1536 * 1024, 'y\n')]);
  const box = new MemoryStore('alice', data);
  const tx = await box.beginSave('INBOX');
  await tx.save({ uid: 10, guid: 'guid-big', flags: [], keywords: [], internalDate: T, size: big.length }, Readable.from([big]));
  await tx.commit();
  /** The memory store, but the body of `uid` in INBOX fails after `after` bytes. */
  const failing = (uid: number, after: number) => async (): Promise<MessageSource> => {
    const s = new MemoryStore('alice', data);
    return Object.assign(Object.create(s) as MessageSource, {
      openMailbox: async (name: string) => {
        const reader = await s.openMailbox(name);
        return Object.assign(Object.create(reader) as typeof reader, {
          info: reader.info,
          messages: (o?: Parameters<typeof reader.messages>[0]) => reader.messages(o),
          openMessage: async (m: Parameters<typeof reader.openMessage>[0], o?: Parameters<typeof reader.openMessage>[1]) => {
            if (name !== 'INBOX' || m.uid !== uid) return reader.openMessage(m, o);
            const whole = await reader.openMessage(m, o);
            whole.destroy();
            return Readable.from((async function* () {
              // In 8 KiB pieces: the streams between here and the writer buffer a few hundred KiB at most
              // (backpressure), so at 600 KB the writer has taken bytes for sure.
              for (let at = 0; at < after; at += 8192) yield big.subarray(at, Math.min(after, at + 8192));
              throw new StorageCorruptError(`disk read error at byte ${after}`, { mailbox: 'INBOX', uid });
            })());
          },
          close: () => reader.close(),
        });
      },
    });
  };
  const writerOf = async (out: PassThrough) => DumpWriter.create(out, { creator: 't', created: '2026-11-28T00:00:00Z', runId: '00000000-0000-4000-8000-000000000001', kind: 'full', base: null, source: { driver: 'memory', location: 'memory:', host: 'test' }, options: {} });

  for (const [uid, after] of [[2, 0], [10, 0]] as const) {
    const out = new PassThrough();
    out.resume();
    const writer = await writerOf(out);
    const summary = await backup(['alice'], failing(uid, after), writer, defaultBackupOptions());
    t.deepEqual(summary.skipped.map((s) => `${s.mailbox} ${s.uid}`), [`INBOX ${uid}`], `UID ${uid} fails before its first byte`);
    t.regex(summary.skipped[0]!.reason, /disk read error at byte 0/);
    t.is(summary.messages, 5);
    await writer.finish();
  }
  const out = new PassThrough();
  out.resume();
  const writer = await writerOf(out);
  await t.throwsAsync(backup(['alice'], failing(10, 600_000), writer, defaultBackupOptions()), { message: /disk read error at byte 600000/ }, 'the body error itself, not a later "writer failed earlier"');
  t.false(writer.usable);
});
