/**
 * A message whose record or TOC line would be over the format's 1 MiB limit (formats/dump-v1.md: only
 * keywords and extra fields can make them that long) is refused before its body is written: the
 * writer stays usable, the caller skips that message, and the dump stays readable. Before, the record
 * was refused after the body (the writer failed, ending the whole dump), and a record just under the
 * limit was written with a TOC line over it, which the reader then rejected.
 */
import test from 'ava';
import { Readable } from 'node:stream';
import { UsageError } from '../../../src/core/errors.js';
import { DumpWriter } from '../../../src/archive/writer.js';
import { HEADER, chunked, collector, mailbox, message, readAll } from './sample-dump.js';

const USER = 'alice@example.org';

async function writeAround(keywords: string[]): Promise<{ error: unknown; types: string[]; uids: number[] }> {
  const out = collector();
  const writer = await DumpWriter.create(out.stream, HEADER);
  await writer.writeUser({ user: USER, subscriptions: [] });
  await writer.writeMailbox(mailbox(USER, 'INBOX', []).record);
  const before = message(USER, 'INBOX', 1, 'Subject: before\n\nsmall\n');
  await writer.writeMessage(before.input, Readable.from([before.body]));
  const big = message(USER, 'INBOX', 2, 'Subject: keywords\n\nbody\n', { keywords });
  let error: unknown = null;
  let opened = false;
  const body = new Readable({
    read() {
      opened = true;
      this.push(big.body);
      this.push(null);
    },
  });
  try {
    await writer.writeMessage(big.input, body);
  } catch (e) {
    error = e;
  }
  if (error !== null && opened) throw new Error('the body was read although the message was refused');
  const after = message(USER, 'INBOX', 3, 'Subject: after\n\nsmall\n');
  await writer.writeMessage(after.input, Readable.from([after.body]));
  await writer.finish();
  const { entries } = await readAll(chunked(out.bytes(), 64 * 1024));
  return { error, types: entries.map((e) => e.type), uids: entries.flatMap((e) => (e.type === 'message' ? [e.record.uid] : [])) };
}

test('a message whose record would be over 1 MiB (keywords) is refused before its body; the writer goes on', async (t) => {
  const keywords = Array.from({ length: 60000 }, (_, i) => `keyword-${String(i).padStart(8, '0')}`);
  const r = await writeAround(keywords);
  t.true(r.error instanceof UsageError, String(r.error));
  t.regex((r.error as Error).message, /UID 2 .*over the format's 1048576-byte limit/);
  t.deepEqual(r.uids, [1, 3]);
  t.deepEqual(r.types, ['header', 'user', 'mailbox', 'message', 'message', 'trailer']);
});

test('a record just under 1 MiB whose TOC line would be over it is refused too (the reader would reject the TOC)', async (t) => {
  // A record of about 1,048,460 bytes; the TOC line carries the keywords too, plus the member spans
  // (about 128 bytes more here).
  const keywords = Array.from({ length: 95260 }, (_, i) => `k${String(i).padStart(7, '0')}`);
  keywords.push('x'.repeat(100));
  const r = await writeAround(keywords);
  t.true(r.error instanceof UsageError, String(r.error));
  const m = /record would take (\d+) bytes and its TOC line (\d+)/.exec((r.error as Error).message);
  t.truthy(m, (r.error as Error).message);
  t.true(Number(m![1]) <= 1048576 && Number(m![2]) > 1048576, 'the record alone would fit: only the TOC line is over');
  t.deepEqual(r.uids, [1, 3]);
});

test('many keywords under the limit are written as before', async (t) => {
  const keywords = Array.from({ length: 20000 }, (_, i) => `keyword-${String(i).padStart(8, '0')}`);
  const r = await writeAround(keywords);
  t.is(r.error, null);
  t.deepEqual(r.uids, [1, 2, 3]);
});
