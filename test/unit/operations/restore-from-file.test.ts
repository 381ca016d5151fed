// Random-access restore of a dump FILE for narrow selections: same result as the one-pass restore,
// reads only the selected members (a damaged other message does not matter), works inside an internally
// zstd-compressed dump, and hands back to the one-pass path when the file cannot be read at random.
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { openDumpFile } from '../../../src/archive/random-access.js';
import { ArchiveCorruptError } from '../../../src/core/errors.js';
import { defaultRestoreOptions, restore } from '../../../src/operations/restore.js';
import { canRestoreAtRandom, restoreFromFile } from '../../../src/operations/restore-from-file.js';
import { UidSet, type Selection } from '../../../src/operations/selection.js';
import { MemoryStore, createMemoryStoreData } from '../../../src/storage/memory/index.js';
import { contents, dumpFile, ImapLikeSink, populate, removeDumpFiles, T } from './restore-fixtures.js';

test.after.always(removeDumpFiles);

const memorySink = (data: ReturnType<typeof createMemoryStoreData>) => async (user: string) => new MemoryStore(user, data);

for (const compress of ['none', 'zstd:3']) {
  test(`${compress}: a selection by Message-ID gives the same store as the one-pass restore, reading at random`, async (t) => {
    const file = await dumpFile(await populate(), compress);
    const selection: Selection = { messageIds: ['<m3@example.org>'] };
    const viaFile = createMemoryStoreData();
    const summary = await restoreFromFile(file, memorySink(viaFile), defaultRestoreOptions({ selection }));
    t.truthy(summary);
    t.is(summary!.access, 'random-access');
    t.is(summary!.messages, 1);
    t.is(summary!.users, 1);
    t.true(summary!.dumpComplete);
    const viaPass = createMemoryStoreData();
    await restore(Readable.from([await readFile(file)]), memorySink(viaPass), defaultRestoreOptions({ selection }));
    t.deepEqual([...viaFile.mailboxes.keys()], ['Archive/2025']);
    const box = viaFile.mailboxes.get('Archive/2025')!;
    t.deepEqual(box.info.uidValidity, viaPass.mailboxes.get('Archive/2025')!.info.uidValidity, 'mailbox identity read from the mailbox record');
    t.deepEqual(box.info.guid, viaPass.mailboxes.get('Archive/2025')!.info.guid);
    t.deepEqual(box.messages.map((m) => [m.info.uid, m.info.guid, m.info.flags, m.info.keywords, m.info.internalDate, m.body.toString()]), viaPass.mailboxes.get('Archive/2025')!.messages.map((m) => [m.info.uid, m.info.guid, m.info.flags, m.info.keywords, m.info.internalDate, m.body.toString()]));
    t.deepEqual(viaFile.subscriptions, viaPass.subscriptions);
    t.deepEqual([...viaFile.subscriptions], ['Archive/2025'], 'the restored mailbox was subscribed in the dump');
  });
}

test('filters (From, Subject, dates, UIDs) pick the same messages as the one-pass restore', async (t) => {
  const file = await dumpFile(await populate());
  const selections: Selection[] = [
    { from: 's2@EXAMPLE' },
    { subject: 'invoice' },
    { since: T + 2 * 60, before: T + 5 * 60 },
    { mailboxes: ['INBOX'], uids: UidSet.parse('2:5') },
    { users: ['bob'], uids: UidSet.parse('1') },
  ];
  for (const selection of selections) {
    const a = createMemoryStoreData();
    const b = createMemoryStoreData();
    await restoreFromFile(file, memorySink(a), defaultRestoreOptions({ selection }));
    await restore(Readable.from([await readFile(file)]), memorySink(b), defaultRestoreOptions({ selection }));
    t.deepEqual(contents(a), contents(b), JSON.stringify(selection));
  }
});

test('only the selected message is read: damage elsewhere in the file does not stop it', async (t) => {
  const file = await dumpFile(await populate());
  const dump = await openDumpFile(file);
  let other: { dataOffset: number } | null = null;
  for await (const e of dump.entries()) if (e.type === 'message' && e.uid === 1 && e.mailbox === 'INBOX') other = e;
  await dump.close();
  const bytes = await readFile(file);
  bytes[other!.dataOffset + 5] ^= 0xff; // flip a byte in INBOX UID 1's body
  await writeFile(file, bytes);
  const target = createMemoryStoreData();
  const summary = await restoreFromFile(file, memorySink(target), defaultRestoreOptions({ selection: { messageIds: ['m3@example.org'] } }));
  t.is(summary!.messages, 1);
  // the damaged message itself is refused, with a typed error and nothing half-written
  const broken = createMemoryStoreData();
  await t.throwsAsync(restoreFromFile(file, memorySink(broken), defaultRestoreOptions({ selection: { mailboxes: ['INBOX'], uids: UidSet.parse('1') } })), { instanceOf: ArchiveCorruptError, message: /UID 1 of mailbox "INBOX"/ });
  t.is(broken.mailboxes.get('INBOX')?.messages.length ?? 0, 0);
});

test('a file without trailer is handed back (null) to the one-pass path, saying why', async (t) => {
  const file = await dumpFile(await populate());
  const bytes = await readFile(file);
  await writeFile(file, bytes.subarray(0, bytes.length - 4096));
  const reasons: string[] = [];
  const summary = await restoreFromFile(file, memorySink(createMemoryStoreData()), { ...defaultRestoreOptions({ selection: { uids: UidSet.parse('1') } }), onFallback: (m) => reasons.push(m) });
  t.is(summary, null);
  t.regex(reasons.join('\n'), /one pass/);
  t.false(canRestoreAtRandom('-', defaultRestoreOptions({ selection: { uids: UidSet.parse('1') } })));
  t.false(canRestoreAtRandom(file, defaultRestoreOptions({ selection: { users: ['alice'] } })), 'a whole user is read in one pass');
  t.true(canRestoreAtRandom(file, defaultRestoreOptions({ selection: { messageIds: ['x'] } })));
});

test('list-file ids: a kept mailbox entry is created even without messages; unknown ids are reported', async (t) => {
  const file = await dumpFile(await populate());
  const dump = await openDumpFile(file);
  const ids = new Map<string, number>();
  for await (const e of dump.entries()) if (e.type === 'mailbox') ids.set(e.mailbox, e.id);
  await dump.close();
  const target = createMemoryStoreData();
  const summary = await restoreFromFile(file, memorySink(target), defaultRestoreOptions({ selection: { ids: new Set([ids.get('Twins')!, 9999]) } }));
  t.deepEqual([...target.mailboxes.keys()], ['Twins']);
  t.is(target.mailboxes.get('Twins')!.messages.length, 0);
  t.deepEqual(summary!.unknownIds, [9999]);
});

test('into an IMAP-like sink: rerun adds nothing; identical twins are restored twice, not once', async (t) => {
  const file = await dumpFile(await populate());
  const data = createMemoryStoreData();
  const sink = new ImapLikeSink('alice', data);
  const options = defaultRestoreOptions({ selection: { since: T - 10 } });
  const first = await restoreFromFile(file, async () => sink, options);
  t.is(first!.messages, 6);
  t.is(data.mailboxes.get('Twins')!.messages.length, 2);
  const second = await restoreFromFile(file, async () => sink, options);
  t.is(second!.messages, 0);
  t.is(second!.alreadyPresent, 6);
  t.is(contents(data).length, 6);
});
