import test from 'ava';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { DateTime } from 'luxon';
import { UidSequence, UidSequenceBuilder, UserCursors, readStateFile, writeStateFile, type MailboxCursor } from '../../../src/operations/cursors.js';
import { modseqAbove, planMailbox, resolveSince, scanMailbox, wantsBody, wantsFlagEntry, describeChange, flagTableChunks, IncrementalPlanner, type MailboxPlan } from '../../../src/operations/incremental.js';
import { UsageError } from '../../../src/core/errors.js';
import { MemoryStore } from '../../../src/storage/memory/index.js';
import type { MailboxReader, MessageInfo } from '../../../src/storage/types.js';
import { tempDir } from '../../helpers/temp.js';

test('UID sequences: parse, format, membership, difference', (t) => {
  const s = UidSequence.parse('1:5,7,9:120')!;
  t.is(s.toString(), '1:5,7,9:120');
  t.is(s.size, 5 + 1 + 112);
  t.true(s.has(1) && s.has(5) && s.has(7) && s.has(9) && s.has(120));
  t.false(s.has(6) || s.has(8) || s.has(121) || s.has(0));
  t.is(UidSequence.of([3, 1, 2, 2, 10]).toString(), '1:3,10');
  const b = new UidSequenceBuilder();
  for (const u of [1, 2, 3, 5, 6, 4000000000]) b.add(u);
  t.is(b.build().toString(), '1:3,5:6,4000000000');
  t.deepEqual([...UidSequence.parse('1:6')!.minus(UidSequence.parse('2,4:5')!)], [1, 3, 6]);
  t.is(UidSequence.parse('')!.size, 0);
  for (const bad of ['0', '5:3', '1,1', '3,2', '1:*', 'a', '1,,2', '2:3,3', '99999999999']) t.is(UidSequence.parse(bad), null, bad);
  t.throws(() => b.add(3));
});

const cursor = (over: Partial<MailboxCursor> = {}): MailboxCursor => ({ name: 'INBOX', guid: 'a'.repeat(32), uidValidity: 100, uidNext: 11, highestModseq: '50', uidSet: '1:10', ...over });

test('cursor lookup by GUID finds renamed mailboxes; a same name with another GUID is a new mailbox', (t) => {
  const cursors = new UserCursors([cursor(), cursor({ name: 'Old', guid: 'b'.repeat(32) }), cursor({ name: 'NoGuid', guid: null })]);
  t.is(cursors.find({ name: 'New', guid: 'b'.repeat(32) })?.name, 'Old');
  t.is(cursors.find({ name: 'INBOX', guid: 'c'.repeat(32) }), undefined);
  t.is(cursors.find({ name: 'NoGuid', guid: null })?.name, 'NoGuid');
});

test('planMailbox: same UIDVALIDITY -> UIDs >= base UIDNEXT and modseq flags; changed -> reset; unknown -> new; no cursors -> time', (t) => {
  const cursors = new UserCursors([cursor()]);
  const p = planMailbox({ name: 'INBOX', guid: 'a'.repeat(32), uidValidity: 100 }, cursors, true, 0);
  t.false(p.reset);
  t.is(p.minUid, 11);
  t.deepEqual(p.flags, { mode: 'modseq', changedSince: '50' });
  t.true(wantsBody(p, { uid: 11, saveDate: null, internalDate: 0 }));
  t.false(wantsBody(p, { uid: 10, saveDate: null, internalDate: 2e9 }));
  t.true(wantsFlagEntry(p, { uid: 3, saveDate: null, internalDate: 0, modseq: '51' }));
  t.false(wantsFlagEntry(p, { uid: 3, saveDate: null, internalDate: 0, modseq: '50' }));
  t.false(wantsFlagEntry(p, { uid: 12, saveDate: null, internalDate: 0, modseq: '99' }), 'a new message carries its flags in its record');
  t.true(wantsFlagEntry(p, { uid: 3, saveDate: null, internalDate: 0, modseq: '18446744073709551615' }), 'modseq compared as big integers');
  const noModseq = planMailbox({ name: 'INBOX', guid: 'a'.repeat(32), uidValidity: 100 }, cursors, false, 0);
  t.deepEqual(noModseq.flags, { mode: 'full' });
  t.true(wantsFlagEntry(noModseq, { uid: 3, saveDate: null, internalDate: 0, modseq: null }));
  const reset = planMailbox({ name: 'INBOX', guid: 'a'.repeat(32), uidValidity: 101 }, cursors, true, 0);
  t.true(reset.reset);
  t.is(reset.reason, 'uidvalidity');
  t.true(wantsBody(reset, { uid: 1, saveDate: null, internalDate: 0 }));
  const fresh = planMailbox({ name: 'Fresh', guid: 'f'.repeat(32), uidValidity: 1 }, cursors, true, 0);
  t.true(fresh.reset);
  t.is(fresh.reason, 'new');
  const byTime = planMailbox({ name: 'INBOX', guid: 'a'.repeat(32), uidValidity: 100 }, null, true, 1000);
  t.false(byTime.reset);
  t.true(wantsBody(byTime, { uid: 1, saveDate: 1000, internalDate: 0 }));
  t.false(wantsBody(byTime, { uid: 1, saveDate: 999, internalDate: 5000 }), 'save date wins over INTERNALDATE');
  t.true(wantsBody(byTime, { uid: 1, saveDate: null, internalDate: 1000 }), 'INTERNALDATE where there is no save date');
  t.true(wantsFlagEntry(byTime, { uid: 1, saveDate: 999, internalDate: 0, modseq: '1' }));
});

test('IncrementalPlanner: renamed and deleted mailboxes', (t) => {
  const planner = new IncrementalPlanner({ since: 0, sinceIso: '', interpretation: '', base: { runId: 'r1', created: '2026-01-01T00:00:00Z', users: { alice: [cursor(), cursor({ name: 'Gone', guid: 'd'.repeat(32) }), cursor({ name: 'Old', guid: 'e'.repeat(32) })] } } }, true);
  const u = planner.forUser('alice');
  t.is(u.plan({ name: 'INBOX', guid: 'a'.repeat(32), uidValidity: 100, uidNext: 11, highestModseq: null, messageCount: 0, specialUse: [], selectable: true }, false).renamedFrom, null);
  t.is(u.plan({ name: 'New', guid: 'e'.repeat(32), uidValidity: 100, uidNext: 11, highestModseq: null, messageCount: 0, specialUse: [], selectable: true }, false).renamedFrom, 'Old');
  t.deepEqual(u.deleted().map((c) => c.name), ['Gone']);
  t.true(planner.forUser('bob').plan({ name: 'INBOX', guid: 'a'.repeat(32), uidValidity: 100, uidNext: 1, highestModseq: null, messageCount: 0, specialUse: [], selectable: true }, false).reset, 'a user the base did not have is backed up whole');
});

test('state file: written atomically, read back, missing -> null, damaged -> usage error naming it', async (t) => {
  const dir = await tempDir(t, 'mv-state-');
  const file = path.join(dir, 'state.json');
  t.is(await readStateFile(file), null);
  await writeStateFile(file, { runId: 'r1', created: '2026-11-28T00:00:00Z', users: { alice: [cursor()] } });
  t.deepEqual(await readdir(dir), ['state.json'], 'no temp file left');
  const back = await readStateFile(file);
  t.is(back?.runId, 'r1');
  t.deepEqual(back?.users['alice'], [cursor()]);
  await writeFile(file, (await readFile(file, 'utf8')).replace('"1:10"', '"10:1"'));
  const e = await t.throwsAsync(readStateFile(file), { instanceOf: UsageError });
  t.true(e!.message.includes(file));
});

test('resolveSince: ISO with and without offset, spans, @state-file; future and garbage are usage errors naming the value', async (t) => {
  const now = DateTime.fromISO('2026-11-28T12:00:00Z', { zone: 'utc' });
  const iso = await resolveSince('2026-11-27T10:00:00+01:00', now);
  t.is(iso.sinceIso, '2026-11-27T09:00:00Z');
  const local = await resolveSince('2026-11-27T10:00', now);
  t.is(local.sinceIso, '2026-11-27T10:00:00Z');
  t.regex(local.interpretation, /no UTC offset: taken as UTC/);
  const span = await resolveSince('24h', now);
  t.is(span.sinceIso, '2026-11-27T12:00:00Z');
  t.is(span.base, null);
  const future = await t.throwsAsync(resolveSince('2026-12-01', now), { instanceOf: UsageError });
  t.true(future!.message.includes('"2026-12-01"') && future!.message.includes('future'));
  const garbage = await t.throwsAsync(resolveSince('last tuesday', now), { instanceOf: UsageError });
  t.true(garbage!.message.includes('"last tuesday"'));
  const dir = await tempDir(t, 'mv-since-');
  const file = path.join(dir, 's.json');
  await writeStateFile(file, { runId: 'r7', created: '2026-11-28T03:00:00Z', users: {} });
  const at = await resolveSince(`@${file}`, now);
  t.is(at.base?.runId, 'r7');
  t.is(at.sinceIso, '2026-11-28T03:00:00Z');
  await t.throwsAsync(resolveSince(`@${dir}/nope`, now), { message: /no such dump or state file/ });
});

/** A reader over a memory mailbox that adds modseqs and counts body opens. */
function withModseq(reader: MailboxReader, modseqs: Map<number, string>): MailboxReader & { opened: number } {
  const wrapped = {
    info: reader.info,
    opened: 0,
    async *messages(): AsyncIterable<MessageInfo> {
      for await (const m of reader.messages()) yield { ...m, modseq: modseqs.get(m.uid) ?? '1' };
    },
    async openMessage(m: MessageInfo) {
      wrapped.opened++;
      return reader.openMessage(m);
    },
    close: () => reader.close(),
  };
  return wrapped;
}

test('scanMailbox: UID set, flag table by modseq, no body opened; messages above the recorded UIDNEXT are left for the next run', async (t) => {
  const store = new MemoryStore('alice');
  await store.createMailbox({ name: 'INBOX', guid: 'a'.repeat(32), uidValidity: 100 });
  const tx = await store.beginSave('INBOX');
  for (const uid of [1, 2, 3, 5, 8, 9, 12]) await tx.save({ uid, flags: uid === 2 ? ['\\Seen'] : [], keywords: [], internalDate: 1, size: 1 }, Readable.from([Buffer.from('x')]));
  await tx.commit();
  const reader = withModseq(await store.openMailbox('INBOX'), new Map([[2, '60'], [3, '40'], [9, '70']]));
  const plan: MailboxPlan = planMailbox(reader.info, new UserCursors([cursor({ uidNext: 9, uidSet: '1:8' })]), true, 0);
  const scan = await scanMailbox(reader, plan, 12);
  t.is(scan.uidSet.toString(), '1:3,5,8:9');
  t.deepEqual(scan.flagEntries, [{ uid: 2, flags: ['\\Seen'], keywords: [] }]);
  t.is(scan.bodies, 1, 'UID 9 only (12 arrived after the mailbox was opened)');
  t.is(reader.opened, 0);
  const change = describeChange('alice', reader.info, plan, scan);
  t.is(change.expunged, 3, 'UIDs 4, 6 and 7');
  t.is(change.status, 'changed');
  t.deepEqual(flagTableChunks(Array.from({ length: 4500 }, (_, i) => ({ uid: i + 1, flags: [], keywords: [] }))).map((c) => c.length), [2000, 2000, 500]);
});

test('modseqAbove: numeric order of decimal modseqs beyond 2^53, without BigInt for canonical ones; unknown is carried', (t) => {
  const cases: Array<[string | null, string, boolean]> = [
    ['51', '50', true], ['50', '50', false], ['9', '10', false], ['10', '9', true], ['100', '99', true],
    ['18446744073709551615', '18446744073709551614', true], ['18446744073709551614', '18446744073709551615', false],
    ['0', '0', false], ['1', '0', true], ['007', '7', false], ['8', '007', true], ['x', '5', true], [null, '5', true],
  ];
  for (const [m, than, want] of cases) t.is(modseqAbove(m, than), want, `${m} > ${than}`);
});

test('flag digests are used only for a cursor of the same name (a copied folder shares the GUID of its original)', (t) => {
  const digest = 'fd1 128 0:0123456789abcdef';
  const cursor: MailboxCursor = { name: 'Orig', guid: 'aa'.repeat(16), uidValidity: 7, uidNext: 10, highestModseq: null, uidSet: '1:9', flagDigest: digest };
  const cursors = new UserCursors([cursor]);
  const same = planMailbox({ name: 'Orig', guid: 'aa'.repeat(16), uidValidity: 7 }, cursors, false, 0);
  const copy = planMailbox({ name: 'Copy', guid: 'aa'.repeat(16), uidValidity: 7 }, cursors, false, 0);
  t.true(same.flags.mode === 'full' && same.flags.digests instanceof Map && same.flags.digests.get(0) === '0123456789abcdef');
  t.true(copy.flags.mode === 'full' && copy.flags.digests === undefined, 'matched by GUID, but another name: the whole table');
  t.is(copy.base, cursor);
});
