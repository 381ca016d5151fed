/**
 * Records over 256 KiB are not encoded in place in the writer's output chunk (writeRecordMember hands
 * them to writeBufferMember, as a 600 KiB one also crosses a chunk boundary). They are still records:
 * in the version 4 digest (formats/dump-v1.md 5.6) their bytes go in as they are, only bodies, stubs
 * and blobs by their sha256. readDump and the digest recomputed by the spec's rule must both agree
 * with the trailer; a writer that took such a record for content would fail both.
 */
import test, { type ExecutionContext } from 'ava';
import { Readable } from 'node:stream';
import { DumpWriter } from '../../../src/archive/writer.js';
import { HEADER, chunked, collector, mailbox, message, readAll, splitMembers } from './sample-dump.js';
import { specDigest } from './spec-digest.js';

const USER = 'alice@example.org';
const BIG = 256 * 1024;

/** `n` distinct strings of about 50 characters. */
function words(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(6, '0')}-${'x'.repeat(36)}`);
}

/** Checks shared by both dumps: the named members are records over 256 KiB, and the digest holds. */
async function checkDump(t: ExecutionContext, dump: Buffer, bigRecords: readonly string[], expectedTypes: readonly string[]): Promise<void> {
  const members = await splitMembers(dump);
  for (const name of bigRecords) {
    const m = members.find((x) => x.name === name);
    t.true(m !== undefined && m.data.length > BIG, `${name} is a record over 256 KiB (${m?.data.length ?? 'missing'} bytes)`);
  }
  const d = specDigest(dump);
  t.is(d.computed, d.trailer.value, 'the spec rule gives the trailer digest');
  t.is(d.trailer.algorithm, 'sha256-hashed-content');
  for (const name of bigRecords) t.false(d.contentMembers.includes(name));
  const { entries } = await readAll(chunked(dump, 64 * 1024));
  t.deepEqual(entries.map((e) => e.type), expectedTypes, 'readDump reads it all (digest checked at the trailer)');
}

test('version 4 digest: a mailbox record (300 KiB of metadata) and a message record (600 KiB of keywords) enter as bytes', async (t) => {
  const out = collector();
  const writer = await DumpWriter.create(out.stream, HEADER);
  await writer.writeUser({ user: USER, subscriptions: [] });
  const inbox = mailbox(USER, 'INBOX', []).record;
  const metadata = Object.fromEntries(words('/private/comment', 6000).map((k) => [k, 'v']));
  await writer.writeMailbox({ ...inbox, metadata });
  const small = message(USER, 'INBOX', 1, 'Subject: before\n\nsmall\n');
  await writer.writeMessage(small.input, Readable.from([small.body]));
  // The body right before the big record is content: the digest switches from its sha256 back to bytes.
  const big = message(USER, 'INBOX', 2, Buffer.alloc(3000, 0x61), { keywords: words('kw', 12000) });
  await writer.writeMessage(big.input, Readable.from([big.body]));
  const after = message(USER, 'INBOX', 3, 'Subject: after\n\nsmall\n');
  await writer.writeMessage(after.input, Readable.from([after.body]));
  await writer.finish();
  const dir = 'users/alice@example.org/mailboxes/INBOX';
  await checkDump(t, out.bytes(), [`${dir}/mailbox.json`, `${dir}/2.json`], ['header', 'user', 'mailbox', 'message', 'message', 'message', 'trailer']);
});

test('version 4 digest: a flag table over 256 KiB (2000 entries with keywords) enters as bytes', async (t) => {
  const out = collector();
  const header = { ...HEADER, kind: 'incremental' as const, base: { runId: '00000000-0000-4000-8000-00000000000b', created: '2026-11-27T14:00:00Z' } };
  const writer = await DumpWriter.create(out.stream, header, { incremental: true });
  await writer.writeUser({ user: USER, subscriptions: [] });
  await writer.writeMailbox({ ...mailbox(USER, 'INBOX', []).record, uidNext: 2002, uidSet: '1:2001', reset: false });
  const keywords = words('kw', 3);
  await writer.writeFlagTable(USER, 'INBOX', Array.from({ length: 2000 }, (_, i) => ({ uid: i + 1, flags: ['\\Seen'], keywords: keywords.slice(0, (i % 3) + 1) })));
  const m = message(USER, 'INBOX', 2001, 'Subject: new\n\nhello\n');
  await writer.writeMessage(m.input, Readable.from([m.body]));
  await writer.finish();
  await checkDump(t, out.bytes(), ['users/alice@example.org/mailboxes/INBOX/flags.1.json'], ['header', 'user', 'mailbox', 'flags', 'message', 'trailer']);
});
