/**
 * DumpWriterOptions.outputReleasesChunks: an uncompressed dump goes straight to the output and the
 * writer reuses its 512 KiB chunks once the output has called back for them. A chunk reused before
 * that would change bytes the output has not written yet.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { DiskFullError } from '../../../src/core/errors.js';
import { DumpWriter, type DumpWriterOptions } from '../../../src/archive/writer.js';
import type { DumpEntry } from '../../../src/archive/reader.js';
import { HEADER, chunked, collector, mailbox, message, readAll, type SampleMessage } from './sample-dump.js';

/** 24 messages of 60-300 KB of random bytes: about 4 MB, eight chunks and more. */
function bigMessages(): SampleMessage[] {
  const out: SampleMessage[] = [];
  for (let uid = 1; uid <= 24; uid++) out.push(message('u', 'INBOX', uid, randomBytes(60_000 + ((uid * 37_813) % 240_000))));
  return out;
}

async function writeDump(output: Writable, messages: SampleMessage[], options: DumpWriterOptions): Promise<void> {
  const writer = await DumpWriter.create(output, HEADER, options);
  await writer.writeUser({ user: 'u', subscriptions: [] });
  const box = mailbox('u', 'INBOX', messages);
  await writer.writeMailbox(box.record);
  for (const m of messages) await writer.writeMessage(m.input, Readable.from([m.body]));
  await writer.finish();
}

function bodiesOf(entries: DumpEntry[], bodies: Map<number, Buffer>): Buffer[] {
  return entries.filter((e) => e.type === 'message').map((e) => bodies.get(e.id)!);
}

test('chunks are reused only after the output called back: a slow output still gets every byte', async (t) => {
  const messages = bigMessages();
  const copies: Buffer[] = [];
  const seen = new Set<ArrayBufferLike>();
  let writes = 0;
  // Calls back late (after other work had a chance to run), and only then takes its copy, as a file
  // stream has written the bytes by the time it calls back.
  const slow = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _enc, cb) {
      writes++;
      seen.add(chunk.buffer);
      setTimeout(() => {
        copies.push(Buffer.from(chunk));
        cb();
      }, 2);
    },
  });
  await writeDump(slow, messages, { outputReleasesChunks: true });
  const { entries, bodies } = await readAll(chunked(Buffer.concat(copies)));
  t.is(entries.at(-1)?.type, 'trailer');
  const got = bodiesOf(entries, bodies);
  t.is(got.length, messages.length);
  got.forEach((b, i) => t.true(b.equals(messages[i]!.body), `body ${i + 1}`));
  // The test means something only if chunks were in fact reused.
  t.true(writes > 8, `${writes} writes`);
  t.true(seen.size < writes, `${seen.size} distinct chunks for ${writes} writes`);
});

test('without the option, an output that keeps what it is given gets fresh chunks', async (t) => {
  const messages = bigMessages();
  const keeper = collector();
  await writeDump(keeper.stream, messages, {});
  const { entries, bodies } = await readAll(chunked(keeper.bytes()));
  const got = bodiesOf(entries, bodies);
  got.forEach((b, i) => t.true(b.equals(messages[i]!.body), `body ${i + 1}`));
});

test('into a file stream: the dump is complete and the stream finished when finish() returns', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'mv-release-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'd.mvd');
  const messages = bigMessages();
  const out = createWriteStream(file);
  await writeDump(out, messages, { outputReleasesChunks: true });
  t.true(out.writableFinished);
  const { entries, bodies } = await readAll(createReadStream(file));
  t.is(entries.at(-1)?.type, 'trailer');
  bodiesOf(entries, bodies).forEach((b, i) => t.true(b.equals(messages[i]!.body), `body ${i + 1}`));
  t.is((await stat(file)).size % 512, 0);
});

test('an output that fails a write (disk full) fails the writer with a typed error', async (t) => {
  let written = 0;
  const full = new Writable({
    write(chunk: Buffer, _enc, cb) {
      written += chunk.length;
      if (written > 1024 * 1024) cb(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' }));
      else cb();
    },
  });
  const error = await t.throwsAsync(writeDump(full, bigMessages(), { outputReleasesChunks: true }));
  t.true(error instanceof DiskFullError, String(error));
  t.regex(error!.message, /no space left/);
});

test('with zstd the option changes nothing: the compressor copies, a keeping output gets a valid dump', async (t) => {
  const messages = bigMessages();
  const keeper = collector();
  await writeDump(keeper.stream, messages, { outputReleasesChunks: true, compression: { type: 'zstd', level: 1 } });
  const { entries, bodies } = await readAll(chunked(keeper.bytes()));
  t.is(entries.at(-1)?.type, 'trailer');
  bodiesOf(entries, bodies).forEach((b, i) => t.true(b.equals(messages[i]!.body), `body ${i + 1}`));
});

test('an output closed by someone else before the end fails the writer, naming the output', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'mv-release-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const out = createWriteStream(path.join(dir, 'd.mvd'));
  const messages = bigMessages();
  const writer = await DumpWriter.create(out, HEADER, { outputReleasesChunks: true });
  await writer.writeUser({ user: 'u', subscriptions: [] });
  await writer.writeMailbox(mailbox('u', 'INBOX', messages).record);
  out.destroy();
  const error = await t.throwsAsync(async () => {
    for (const m of messages) await writer.writeMessage(m.input, Readable.from([m.body]));
    await writer.finish();
  });
  t.regex(error!.message, /dump/);
  await writer.abort(error!);
});

test('abort() destroys a file output without an unhandled error event', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'mv-release-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const out = createWriteStream(path.join(dir, 'd.mvd'));
  const writer = await DumpWriter.create(out, HEADER, { outputReleasesChunks: true });
  await writer.writeUser({ user: 'u', subscriptions: [] });
  await writer.abort(new Error('the source went away'));
  // An 'error' event without a listener would throw here, on a later tick.
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.true(out.destroyed);
});
