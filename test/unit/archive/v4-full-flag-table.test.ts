/**
 * Version 4: flag tables belong in incremental dumps only (formats/dump-v1.md, sections 8 and 13).
 * The writer refuses one in a full dump, so the dump is written as an incremental with a flag table
 * and its header then made "full" (kind, base), with what depends on the header fixed: its check and
 * tar size, the header's TOC line, the trailer's toc hash and digest. The flag table is then the
 * dump's only defect: the same patch of an incremental without one gives a full dump that reads.
 */
import test from 'ava';
import { Readable } from 'node:stream';
import { ArchiveCorruptError } from '../../../src/core/errors.js';
import { TRAILER_BYTES } from '../../../src/archive/limits.js';
import { readDump } from '../../../src/archive/reader.js';
import { encodeRecord, sha256Hex } from '../../../src/archive/record-codec.js';
import { DumpWriter } from '../../../src/archive/writer.js';
import { HEADER, chunked, collector, mailbox, message, packMembers, readAll, splitMembers, type RawMember } from './sample-dump.js';
import { specDigest } from './spec-digest.js';

const USER = 'alice@example.org';
const FLAGS_MEMBER = 'users/alice@example.org/mailboxes/INBOX/flags.1.json';

/** An incremental of one mailbox: a flag table (if asked) for two older messages, and one new message. */
async function writeIncremental(withFlagTable: boolean): Promise<Buffer> {
  const out = collector();
  const header = { ...HEADER, kind: 'incremental' as const, base: { runId: '00000000-0000-4000-8000-00000000000b', created: '2026-11-27T14:00:00Z' } };
  const writer = await DumpWriter.create(out.stream, header, { incremental: true });
  await writer.writeUser({ user: USER, subscriptions: ['INBOX'] });
  await writer.writeMailbox({ ...mailbox(USER, 'INBOX', []).record, uidSet: '3,5,50', reset: false });
  if (withFlagTable) {
    await writer.writeFlagTable(USER, 'INBOX', [
      { uid: 3, flags: ['\\Seen'], keywords: [] },
      { uid: 5, flags: ['\\Answered', '\\Seen'], keywords: ['Work'] },
    ]);
  }
  const m = message(USER, 'INBOX', 50, 'Subject: new since the base\n\nhello\n');
  await writer.writeMessage(m.input, Readable.from([m.body]));
  await writer.finish();
  return out.bytes();
}

/** A record member re-encoded with a change (a valid check again). */
function editRecord(m: RawMember, change: (o: Record<string, unknown>) => void, padTo?: number): RawMember {
  const o = JSON.parse(m.data.toString('utf8')) as Record<string, unknown>;
  delete o['check'];
  change(o);
  return { ...m, data: encodeRecord(o, padTo) };
}

/** The dump with its header's kind "full" (base null), and the TOC and trailer made to agree. */
async function asFullDump(dump: Buffer): Promise<Buffer> {
  const members = await splitMembers(dump);
  const header = editRecord(members[0]!, (o) => {
    o['kind'] = 'full';
    o['base'] = null;
  });
  const tocIndex = members.length - 2;
  const toc = members[tocIndex]!;
  if (header.name !== 'mailvault/header.json' || toc.name !== 'mailvault/toc.jsonl') throw new Error('unexpected members');
  const lines = toc.data.toString('utf8').split('\n');
  const headerLine = JSON.parse(lines[0]!) as Record<string, unknown>;
  headerLine['size'] = header.data.length;
  headerLine['sha256'] = sha256Hex(header.data);
  lines[0] = JSON.stringify(headerLine);
  const newToc = { ...toc, data: Buffer.from(lines.join('\n')) };
  const withOldTrailer = [header, ...members.slice(1, tocIndex), newToc, members.at(-1)!];
  // The header keeps its one data block, so no other member moves and the TOC's offsets stay true.
  const moved = (await splitMembers(packMembers(withOldTrailer))).filter((m, i) => m.offset !== members[i]!.offset);
  if (moved.length > 0) throw new Error(`members moved: ${moved.map((m) => m.name).join(', ')}`);
  const digest = specDigest(packMembers(withOldTrailer)).computed;
  const trailer = editRecord(
    members.at(-1)!,
    (o) => {
      const t = o['toc'] as Record<string, unknown>;
      t['size'] = newToc.data.length;
      t['sha256'] = sha256Hex(newToc.data);
      (o['digest'] as Record<string, unknown>)['value'] = digest;
    },
    TRAILER_BYTES,
  );
  return packMembers([...withOldTrailer.slice(0, -1), trailer]);
}

test('the patch is sound: an incremental without flag tables, made full, reads as a full version 4 dump', async (t) => {
  const { entries } = await readAll(chunked(await asFullDump(await writeIncremental(false)), 700));
  t.deepEqual(entries.map((e) => e.type), ['header', 'user', 'mailbox', 'message', 'trailer']);
  const header = entries[0]!;
  t.is(header.type === 'header' ? `${header.record.version} ${header.record.kind} ${String(header.record.base)}` : '', '4 full null');
});

test('the incremental with its flag table reads (the table is allowed there)', async (t) => {
  const { entries } = await readAll(chunked(await writeIncremental(true)));
  t.deepEqual(entries.map((e) => e.type), ['header', 'user', 'mailbox', 'flags', 'message', 'trailer']);
});

test('version 4: a flag table in a full dump is ArchiveCorruptError naming the table and the cause', async (t) => {
  const dump = await asFullDump(await writeIncremental(true));
  const flags = (await splitMembers(dump)).find((m) => m.name === FLAGS_MEMBER)!;
  const seen: string[] = [];
  const err = await t.throwsAsync(async () => {
    for await (const e of readDump(chunked(dump, 512))) seen.push(e.type);
  }, { instanceOf: ArchiveCorruptError });
  t.deepEqual(seen, ['header', 'user', 'mailbox'], 'rejected at the flag table, before any message');
  t.true(err!.message.includes(`member "${FLAGS_MEMBER}" at offset ${flags.offset}: `), err!.message);
  t.regex(err!.message, /flag tables belong in incremental dumps only; this dump is a full one/);
  t.is(err!.context.member, FLAGS_MEMBER);
  t.is(err!.context.offset, flags.offset);
});

test('the writer refuses a flag table in a full dump', async (t) => {
  const writer = await DumpWriter.create(collector().stream, HEADER);
  t.false(writer.flagTablesAllowed);
  await writer.writeUser({ user: USER, subscriptions: [] });
  await writer.writeMailbox(mailbox(USER, 'INBOX', []).record);
  await t.throwsAsync(writer.writeFlagTable(USER, 'INBOX', [{ uid: 1, flags: [], keywords: [] }]), { message: /cannot write a flag table into a full dump/ });
  t.true(writer.usable, 'nothing was written');
  await writer.abort(new Error('test over'));
});
