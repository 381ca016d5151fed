import test from 'ava';
import { Readable } from 'node:stream';
import { ArchiveOrderError, IntegrityError, UsageError, UnexpectedError } from '../../../src/core/errors.js';
import { DumpWriter } from '../../../src/archive/writer.js';
import type { DumpEntry } from '../../../src/archive/reader.js';
import { FORMAT_VERSION_WRITTEN } from '../../../src/archive/records.js';
import { chunked, collector, HEADER, mailbox, message, readAll, sampleUsers, splitMembers, writeSample } from './sample-dump.js';

function expectedFromSample() {
  const users = sampleUsers();
  const messages = users.flatMap((u) => u.mailboxes.flatMap((m) => m.messages));
  return { users, messages };
}

async function checkRoundTrip(t: import('ava').ExecutionContext, entries: DumpEntry[], bodies: Map<number, Buffer>): Promise<void> {
  const { users, messages } = expectedFromSample();
  t.deepEqual(entries.map((e) => e.type), [
    'header', 'user', 'mailbox', 'message', 'message', 'message', 'mailbox', 'message', 'mailbox', 'message', 'user', 'mailbox', 'trailer',
  ]);
  const header = entries[0]!;
  t.deepEqual(header.record, { type: 'header', format: 'mailvault-dump', version: FORMAT_VERSION_WRITTEN, ...HEADER, options: { compression: 'none', mailboxes: ['*'] } });
  const userRecords = entries.filter((e) => e.type === 'user').map((e) => e.record);
  t.deepEqual(userRecords, users.map((u) => ({ type: 'user', ...u.record })));
  const mailboxRecords = entries.filter((e) => e.type === 'mailbox').map((e) => e.record);
  t.deepEqual(mailboxRecords, users.flatMap((u) => u.mailboxes.map((m) => ({ type: 'mailbox', ...m.record }))));
  const got = entries.filter((e): e is Extract<DumpEntry, { type: 'message' }> => e.type === 'message');
  t.is(got.length, messages.length);
  got.forEach((entry, i) => {
    const want = messages[i]!;
    const { sha256, type, ...rest } = entry.record;
    t.is(type, 'message');
    t.deepEqual(rest, want.input);
    t.true(bodies.get(entry.id)!.equals(want.body), `body of UID ${want.input.uid} differs`);
    t.regex(sha256, /^[0-9a-f]{64}$/);
  });
  // ids: 1-based ordinal over users, mailboxes, messages in dump order
  t.deepEqual(got.map((e) => e.id), [3, 4, 5, 7, 9]);
  const trailer = entries.at(-1)!;
  t.is(trailer.type, 'trailer');
  if (trailer.type === 'trailer') {
    t.deepEqual(trailer.record.counts, { users: 2, mailboxes: 4, messages: 5, blobs: 0, messageBytes: messages.reduce((n, m) => n + m.body.length, 0) });
  }
}

test('round trip: every record and every body byte comes back', async (t) => {
  const bytes = await writeSample();
  const { entries, bodies } = await readAll(chunked(bytes));
  await checkRoundTrip(t, entries, bodies);
});

for (const size of [1, 2, 7]) {
  test(`round trip with ${size}-byte input chunks`, async (t) => {
    const bytes = await writeSample();
    const { entries, bodies } = await readAll(chunked(bytes, size));
    await checkRoundTrip(t, entries, bodies);
  });
}

test('the trailer starts at file length - 1024 - 1024 - 512 and is 1024 bytes of JSON', async (t) => {
  const bytes = await writeSample();
  const members = await splitMembers(bytes);
  const trailer = members.at(-1)!;
  t.is(trailer.name, 'mailvault/trailer.json');
  t.is(trailer.offset, bytes.length - 1024 - 1024 - 512);
  t.is(trailer.data.length, 1024);
  t.true(bytes.subarray(bytes.length - 1024).every((b) => b === 0));
});

test('determinism: two writes of the same input differ only in run fields', async (t) => {
  const a = await writeSample();
  const b = await writeSample();
  const ma = await splitMembers(a);
  const mb = await splitMembers(b);
  t.deepEqual(ma.map((m) => m.name), mb.map((m) => m.name));
  t.is(a.length, b.length);
  const trailerStart = ma.at(-1)!.offset;
  t.true(a.subarray(0, trailerStart).equals(b.subarray(0, trailerStart)), 'everything before the trailer is byte-equal');
  const ta = JSON.parse(ma.at(-1)!.data.toString());
  const tb = JSON.parse(mb.at(-1)!.data.toString());
  delete ta.completed; delete tb.completed; delete ta.check; delete tb.check;
  t.deepEqual(ta, tb);
});

test('wantBody=false: the body is still checked, openBody throws', async (t) => {
  const bytes = await writeSample();
  const seen: string[] = [];
  const { entries } = await readAll(chunked(bytes, 100), { wantBody: (ref) => { seen.push(`${ref.user}|${ref.mailbox}|${ref.uid}`); return false; } });
  t.true(seen.includes('alice@example.org|Töpfe/a.b c/%x|2'));
  const msg = entries.find((e) => e.type === 'message');
  t.truthy(msg);
  if (msg?.type === 'message') t.throws(() => msg.openBody(), { instanceOf: UsageError, message: /not kept/ });
});

test('a body over 8 MiB is spooled to a temp file and comes back unchanged', async (t) => {
  const big = Buffer.alloc(9 * 1024 * 1024 + 17);
  for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
  const users = [{ record: { user: 'u', subscriptions: [] }, mailboxes: [mailbox('u', 'INBOX', [message('u', 'INBOX', 1, big)])] }];
  const bytes = await writeSample(users);
  const { bodies } = await readAll(chunked(bytes, 1 << 20));
  t.true(bodies.get(3)!.equals(big));
});

async function newWriter() {
  const out = collector();
  return { writer: await DumpWriter.create(out.stream, HEADER), out };
}

test('writer checks order: users, mailboxes, UIDs', async (t) => {
  const { writer } = await newWriter();
  await writer.writeUser({ user: 'b', subscriptions: [] });
  await t.throwsAsync(writer.writeUser({ user: 'a', subscriptions: [] }), { instanceOf: ArchiveOrderError, message: /user "a" after user "b"/ });
  await t.throwsAsync(writer.writeMailbox(mailbox('x', 'INBOX', []).record), { instanceOf: ArchiveOrderError, message: /current user is "b"/ });
  await writer.writeMailbox(mailbox('b', 'M', []).record);
  await t.throwsAsync(writer.writeMailbox(mailbox('b', 'A', []).record), { instanceOf: ArchiveOrderError, message: /ascending/ });
  const m5 = message('b', 'M', 5, 'x');
  await writer.writeMessage(m5.input, Readable.from([m5.body]));
  const m4 = message('b', 'M', 4, 'x');
  await t.throwsAsync(writer.writeMessage(m4.input, Readable.from([m4.body])), { instanceOf: ArchiveOrderError, message: /UID 4 after UID 5/ });
  const other = message('b', 'N', 6, 'x');
  await t.throwsAsync(writer.writeMessage(other.input, Readable.from([other.body])), { instanceOf: ArchiveOrderError, message: /current mailbox is "M"/ });
  // order errors write nothing: the writer is still usable
  const trailer = await writer.finish();
  t.is(trailer.counts.messages, 1);
});

test('writer rejects empty name segments with UsageError', async (t) => {
  const { writer } = await newWriter();
  await writer.writeUser({ user: 'u', subscriptions: [] });
  await t.throwsAsync(writer.writeMailbox(mailbox('u', 'a//b', []).record), { instanceOf: UsageError, message: /empty part/ });
  await t.throwsAsync(writer.writeMailbox(mailbox('u', 'a/', []).record), { instanceOf: UsageError, message: /empty part/ });
  await writer.abort(new Error('test done'));
});

test('writer: a body shorter or longer than declared is an IntegrityError naming mailbox, UID, expected and got; the writer is failed', async (t) => {
  for (const [declared, actual] of [[10, 'short'], [3, 'longer body']] as const) {
    const { writer } = await newWriter();
    await writer.writeUser({ user: 'u', subscriptions: [] });
    await writer.writeMailbox(mailbox('u', 'INBOX', []).record);
    const m = message('u', 'INBOX', 42, actual, { size: declared });
    const err = await t.throwsAsync(writer.writeMessage(m.input, Readable.from([Buffer.from(actual)])), { instanceOf: IntegrityError });
    t.regex(err!.message, /UID 42 of mailbox "INBOX" \(user "u"\)/);
    t.regex(err!.message, new RegExp(`expected ${declared}`));
    await t.throwsAsync(writer.finish(), { instanceOf: UsageError, message: /failed earlier/ });
    await writer.abort(err!);
  }
});

test('writer: a body failing before its first byte writes nothing; the writer goes on', async (t) => {
  const { writer, out } = await newWriter();
  await writer.writeUser({ user: 'u', subscriptions: [] });
  await writer.writeMailbox(mailbox('u', 'INBOX', []).record);
  const bad = message('u', 'INBOX', 1, 'xx');
  const failing = new Readable({ read() { this.destroy(new Error('EIO: disk went away')); } });
  await t.throwsAsync(writer.writeMessage(bad.input, failing), { instanceOf: UnexpectedError, message: /UID 1 .*EIO/ });
  const good = message('u', 'INBOX', 2, 'fine');
  await writer.writeMessage(good.input, Readable.from([good.body]));
  await writer.finish();
  const { entries, bodies } = await readAll(chunked(out.bytes()));
  const msgs = entries.filter((e) => e.type === 'message');
  t.is(msgs.length, 1);
  t.is(bodies.get(3)!.toString(), 'fine');
});

test('the TOC spool has no name on disk; abort destroys the output and closes the spool', async (t) => {
  const { existsSync } = await import('node:fs');
  const { writer, out } = await newWriter();
  const internals = writer as unknown as { tocDir: string; tocSpool: unknown };
  t.false(existsSync(internals.tocDir), 'a killed backup would leave the TOC in the temp directory');
  t.not(internals.tocSpool, null);
  await writer.writeUser({ user: 'u', subscriptions: [] });
  await writer.abort(new Error('stop'));
  t.true(out.stream.destroyed);
  t.is(internals.tocSpool, null);
  await t.throwsAsync(writer.writeUser({ user: 'v', subscriptions: [] }), { instanceOf: UsageError, message: /failed earlier \(stop\)/ });
});

test('readDump stops with InterruptedError when the signal is aborted', async (t) => {
  const { InterruptedError } = await import('../../../src/core/errors.js');
  const { readDump } = await import('../../../src/archive/reader.js');
  const bytes = await writeSample();
  const controller = new AbortController();
  const types: string[] = [];
  await t.throwsAsync(async () => {
    for await (const e of readDump(chunked(bytes, 512), { signal: controller.signal })) {
      types.push(e.type);
      if (e.type === 'user') controller.abort();
    }
  }, { instanceOf: InterruptedError });
  t.deepEqual(types, ['header', 'user']);
});
