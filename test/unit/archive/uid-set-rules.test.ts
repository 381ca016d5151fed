/**
 * A mailbox record's uidSet and uidNext against its messages and flag tables (formats/dump-v1.md
 * section 13), and the records an incremental must carry: the writer refuses what breaks them, the
 * one-pass reader rejects it. Broken dumps are written sound and then edited (reseal.ts), so the
 * broken rule is each one's only defect; the same dumps unedited read.
 */
import test from 'ava';
import { Readable } from 'node:stream';
import { ArchiveCorruptError, UsageError } from '../../../src/core/errors.js';
import { isUidSet, parseUidSetBounds, UidSetCursor } from '../../../src/archive/uid-set.js';
import { DumpWriter } from '../../../src/archive/writer.js';
import { UidSequence } from '../../../src/operations/cursors.js';
import { HEADER, chunked, collector, mailbox, message, readAll } from './sample-dump.js';
import { hasPython, readDumpPyBytes } from './read-dump-py.js';
import { reseal, sealRecord } from './reseal.js';

const USER = 'alice@example.org';
const DIR = `users/${USER}/mailboxes/INBOX`;
const INCREMENTAL = { ...HEADER, kind: 'incremental' as const, base: { runId: '00000000-0000-4000-8000-00000000000b', created: '2026-11-27T14:00:00Z' } };
/** Room in the mailbox record for edits that change its length (metadata is any string map). */
const PAD = 'x'.repeat(24);

/** An edit of the INBOX record that keeps its length by resizing the metadata pad. */
function editInbox(change: (o: Record<string, unknown>) => void): (m: { data: Buffer }) => Buffer {
  return (m) => {
    const o = JSON.parse(m.data.toString('utf8')) as Record<string, unknown>;
    change(o);
    o['metadata'] = { p: '' };
    delete o['check'];
    const short = m.data.length - (JSON.stringify(o).length + 76);
    o['metadata'] = { p: 'x'.repeat(short) };
    return sealRecord(o, m.data.length);
  };
}

/** Full dump: INBOX with messages 1, 2, 3, uidSet "1:3", uidNext 100. */
async function fullDump(): Promise<Buffer> {
  const out = collector();
  const writer = await DumpWriter.create(out.stream, HEADER);
  await writer.writeUser({ user: USER, subscriptions: [] });
  await writer.writeMailbox({ ...mailbox(USER, 'INBOX', []).record, metadata: { p: PAD }, uidSet: '1:3' });
  for (const uid of [1, 2, 3]) {
    const m = message(USER, 'INBOX', uid, `Subject: ${uid}\n\nbody ${uid}\n`);
    await writer.writeMessage(m.input, Readable.from([m.body]));
  }
  await writer.finish();
  return out.bytes();
}

/** Incremental: INBOX with a flag table for 3 and 5, message 50 new, uidSet "3,5,50". */
async function incrementalDump(): Promise<Buffer> {
  const out = collector();
  const writer = await DumpWriter.create(out.stream, INCREMENTAL, { incremental: true });
  await writer.writeUser({ user: USER, subscriptions: [] });
  await writer.writeMailbox({ ...mailbox(USER, 'INBOX', []).record, metadata: { p: PAD }, uidSet: '3,5,50', reset: false });
  await writer.writeFlagTable(USER, 'INBOX', [
    { uid: 3, flags: ['\\Seen'], keywords: [] },
    { uid: 5, flags: [], keywords: ['Work'] },
  ]);
  const m = message(USER, 'INBOX', 50, 'Subject: new\n\nhello\n');
  await writer.writeMessage(m.input, Readable.from([m.body]));
  await writer.finish();
  return out.bytes();
}

/** Both readers reject `dump`: mailvault's at `member` with `message`, read_dump.py with exit 65 naming `member` (a message's record). */
async function rejects(t: import('ava').ExecutionContext, dump: Buffer, member: string, message: RegExp, pyMessage: RegExp): Promise<void> {
  const err = await t.throwsAsync(readAll(chunked(dump, 700)), { instanceOf: ArchiveCorruptError });
  t.regex(err!.message, message);
  t.is(err!.context.member, member);
  if (!hasPython) return;
  const py = readDumpPyBytes(t, dump);
  t.is(py.status, 65, py.stdout);
  t.true(py.stderr.includes(member.replace(/\.eml$/, '.')), py.stderr); // it checks a message at its record
  t.regex(py.stderr, pyMessage);
}

test('uidSet text: ascending ranges of UIDs, not touching, a:b with a < b, "" for none', (t) => {
  t.deepEqual(parseUidSetBounds(''), []);
  t.deepEqual(parseUidSetBounds('1:5,7,9:120'), [1, 5, 7, 7, 9, 120]);
  t.deepEqual(parseUidSetBounds('4294967295'), [4294967295, 4294967295]);
  for (const bad of ['0', '1:5,6', '1:5,5:7', '5:5', '5:1', '3,2', '1,,2', '*', '1:*', ' 1', '01', '4294967296', '1:4294967296', ',', '1,'])
    t.false(isUidSet(bad), bad);
  // The state file and the chain read the same grammar (operations/cursors.ts).
  t.is(UidSequence.parse('1:5,6'), null);
  t.is(UidSequence.parse('1:3,7')?.toString(), '1:3,7');
});

test('UidSetCursor answers ascending questions; a fork leaves the original where it was', (t) => {
  const c = UidSetCursor.of('2:4,10,20:21');
  t.deepEqual([1, 2, 4, 5, 9, 10, 11, 20, 21, 22].map((u) => c.has(u)), [false, true, true, false, false, true, false, true, true, false]);
  const d = UidSetCursor.of('5,9');
  const f = d.fork();
  t.true(f.has(9));
  t.true(d.has(5), 'the original is still before 5');
});

test('the sound dumps read, and an edit that changes nothing keeps them sound (the pad works)', async (t) => {
  t.deepEqual((await readAll(chunked(await fullDump()))).entries.map((e) => e.type), ['header', 'user', 'mailbox', 'message', 'message', 'message', 'trailer']);
  t.deepEqual((await readAll(chunked(await incrementalDump()))).entries.map((e) => e.type), ['header', 'user', 'mailbox', 'flags', 'message', 'trailer']);
  const same = await reseal(await fullDump(), { [`${DIR}/mailbox.json`]: editInbox(() => {}) });
  t.is((await readAll(chunked(same))).entries.length, 7);
});

test('reader: a message whose UID is not in its mailbox record\'s uidSet is ArchiveCorruptError at that message', async (t) => {
  const dump = await reseal(await fullDump(), { [`${DIR}/mailbox.json`]: editInbox((o) => (o['uidSet'] = '1,3')) });
  await rejects(t, dump, `${DIR}/2.eml`, /UID 2 is not in the uidSet of its mailbox record/, /UID 2 is not below uidNext and in the mailbox's uidSet/);
});

test('reader: a message at or above its mailbox record\'s uidNext is ArchiveCorruptError', async (t) => {
  const dump = await reseal(await fullDump(), { [`${DIR}/mailbox.json`]: editInbox((o) => (o['uidNext'] = 3)) });
  await rejects(t, dump, `${DIR}/3.eml`, /UID 3 is not below the uidNext \(3\)/, /UID 3 is not below uidNext and in the mailbox's uidSet/);
});

test('reader: a flag-table entry whose UID is not in the uidSet is ArchiveCorruptError at the table', async (t) => {
  const dump = await reseal(await incrementalDump(), { [`${DIR}/mailbox.json`]: editInbox((o) => (o['uidSet'] = '3,6,50')) });
  await rejects(t, dump, `${DIR}/flags.1.json`, /UID 5 is not in the uidSet of its mailbox record/, /UID 5 is not in the mailbox's uidSet/);
});

test('reader: in an incremental, a selectable mailbox record without reset or without uidSet is ArchiveCorruptError', async (t) => {
  for (const key of ['reset', 'uidSet']) {
    const dump = await reseal(await incrementalDump(), {
      [`${DIR}/mailbox.json`]: editInbox((o) => delete o[key]),
    });
    await rejects(t, dump, `${DIR}/mailbox.json`, new RegExp(`selectable mailbox "INBOX" in an incremental dump lacks "${key}"`), /mailbox record of an incremental without reset or uidSet/);
  }
});

test('reader: a uidSet with touching ranges is ArchiveCorruptError (the grammar of section 13)', async (t) => {
  const dump = await reseal(await fullDump(), { [`${DIR}/mailbox.json`]: editInbox((o) => (o['uidSet'] = '1:2,3')) });
  await rejects(t, dump, `${DIR}/mailbox.json`, /uidSet/, /uidSet '1:2,3' has ranges not ascending or touching/);
});

test('reader: a flag table in a version 3 dump whose header says "full" is ArchiveCorruptError', async (t) => {
  const inc = await incrementalDump();
  const asV3 = (kind: string) =>
    reseal(inc, {
      'mailvault/header.json': (m) => {
        const o = JSON.parse(m.data.toString('utf8')) as Record<string, unknown>;
        o['version'] = 3;
        o['kind'] = kind;
        if (kind === 'full') o['base'] = null;
        return sealRecord(o, m.data.length, true);
      },
      // reseal then makes its toc hash and digest (version 3: the plain one) true.
      'mailvault/trailer.json': (m) => {
        const o = JSON.parse(m.data.toString('utf8')) as Record<string, unknown>;
        o['version'] = 3;
        (o['digest'] as Record<string, unknown>)['algorithm'] = 'sha256';
        return sealRecord(o, m.data.length, true);
      },
    });
  // Control: the same edit keeping "incremental" gives a version 3 incremental that reads.
  t.deepEqual((await readAll(chunked(await asV3('incremental')))).entries.map((e) => e.type), ['header', 'user', 'mailbox', 'flags', 'message', 'trailer']);
  await rejects(t, await asV3('full'), `${DIR}/flags.1.json`, /flag tables belong in incremental dumps only/, /a flag table in a full dump/);
});

test('writer: refuses, before writing anything, what the reader would reject; it stays usable', async (t) => {
  const writer = await DumpWriter.create(collector().stream, INCREMENTAL, { incremental: true });
  await writer.writeUser({ user: USER, subscriptions: [] });
  const inbox = mailbox(USER, 'INBOX', []).record;
  await t.throwsAsync(writer.writeMailbox({ ...inbox, uidSet: '1:2,3', reset: false }), { instanceOf: UsageError, message: /uidSet "1:2,3" is not ascending, non-touching ranges/ });
  await t.throwsAsync(writer.writeMailbox({ ...inbox, uidSet: '1:3' }), { instanceOf: UsageError, message: /without reset/ });
  await t.throwsAsync(writer.writeMailbox({ ...inbox, reset: false }), { instanceOf: UsageError, message: /without uidSet/ });
  await t.throwsAsync(writer.writeMailbox({ ...inbox, name: 'Archive', selectable: false, uidSet: '', reset: false }), { instanceOf: UsageError, message: /NoSelect mailbox "Archive" with reset or uidSet/ });
  t.true(writer.usable);
  await writer.writeMailbox({ ...inbox, uidSet: '3,5,50:51', reset: false, uidNext: 51 });
  await t.throwsAsync(writer.writeFlagTable(USER, 'INBOX', [{ uid: 3, flags: [], keywords: [] }, { uid: 4, flags: [], keywords: [] }]), { instanceOf: UsageError, message: /UID 4 is not in the mailbox record's uidSet/ });
  // The refused table moved nothing: 3 and 5 still go.
  await writer.writeFlagTable(USER, 'INBOX', [{ uid: 3, flags: [], keywords: [] }, { uid: 5, flags: [], keywords: [] }]);
  const m = (uid: number) => message(USER, 'INBOX', uid, 'Subject: x\n\nx\n');
  await t.throwsAsync(writer.writeMessage(m(7).input, m(7).body), { instanceOf: UsageError, message: /UID 7 .* not in the mailbox record's uidSet/ });
  await writer.writeMessage(m(50).input, m(50).body);
  await t.throwsAsync(writer.writeMessage(m(51).input, m(51).body), { instanceOf: UsageError, message: /UID 51 .* not below the mailbox record's uidNext \(51\)/ });
  t.true(writer.usable);
  await writer.abort(new Error('test over'));
});

test('writer: a full dump checks messages against the uidSet too, and takes a mailbox without one (older callers)', async (t) => {
  const writer = await DumpWriter.create(collector().stream, HEADER);
  await writer.writeUser({ user: USER, subscriptions: [] });
  await writer.writeMailbox({ ...mailbox(USER, 'Archive', []).record, uidSet: '2' });
  const m = (box: string, uid: number) => message(USER, box, uid, 'Subject: x\n\nx\n');
  await t.throwsAsync(writer.writeMessage(m('Archive', 1).input, m('Archive', 1).body), { instanceOf: UsageError, message: /not in the mailbox record's uidSet/ });
  await writer.writeMessage(m('Archive', 2).input, m('Archive', 2).body);
  await writer.writeMailbox(mailbox(USER, 'INBOX', []).record);
  await writer.writeMessage(m('INBOX', 7).input, m('INBOX', 7).body);
  t.true(writer.usable);
  await writer.abort(new Error('test over'));
});
