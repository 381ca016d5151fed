import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { ArchiveCorruptError, UsageError } from '../../../src/core/errors.js';
import { openDumpFile } from '../../../src/archive/random-access.js';
import { chunked, readAll, sampleUsers, splitMembers, writeSample } from './sample-dump.js';
import { makeTempDirSync, removeTempDir } from '../../helpers/temp.js';
import { reseal } from './reseal.js';

const dir = makeTempDirSync('mailvault-ra-test-');
test.after.always(() => removeTempDir(dir));

async function text(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

const expectedBodies = sampleUsers().flatMap((u) => u.mailboxes.flatMap((m) => m.messages));

for (const [label, options] of [
  ['plain', {}],
  ['zstd', { compression: { type: 'zstd', level: 3, frameSize: 4096 } }],
] as const) {
  test(`openDumpFile (${label}): TOC entries and any message by id`, async (t) => {
    const bytes = await writeSample(undefined, options);
    const path = join(dir, `${label}.mvd`);
    writeFileSync(path, bytes);
    const file = await openDumpFile(path);
    try {
      t.is(file.compressed, label === 'zstd');
      t.is(file.header.runId, file.trailer.runId);
      const entries = [];
      for await (const e of file.entries()) entries.push(e);
      t.deepEqual(entries.map((e) => e.type), ['header', 'user', 'mailbox', 'message', 'message', 'message', 'mailbox', 'message', 'mailbox', 'message', 'user', 'mailbox']);
      const messages = entries.filter((e) => e.type === 'message');
      // read in reverse order: random access
      for (const [i, entry] of [...messages.entries()].reverse()) {
        const { record, body } = await file.readMessage(entry.id);
        t.is(record.uid, expectedBodies[i]!.input.uid);
        t.true((await text(body)).equals(expectedBodies[i]!.body));
      }
      await t.throwsAsync(file.readMessage(2), { instanceOf: UsageError, message: /no message with id 2/ });
    } finally {
      await file.close();
    }
  });
}

test('readDump reads a zstd-compressed dump (detected by magic)', async (t) => {
  const bytes = await writeSample(undefined, { compression: { type: 'zstd', level: 1, frameSize: 2048 } });
  t.is(bytes.readUInt32LE(0) === 0xfd2fb528 || (bytes.readUInt32LE(0) & 0xfffffff0) === 0x184d2a50, true);
  const { entries, bodies } = await readAll(chunked(bytes, 333));
  t.is(entries.at(-1)!.type, 'trailer');
  t.true(bodies.get(4)!.equals(expectedBodies[1]!.body));
});

test('openDumpFile finds the trailer by scanning when it is not at its fixed place', async (t) => {
  const bytes = Buffer.concat([await writeSample(), Buffer.alloc(10240 - 1024)]);
  const path = join(dir, 'padded.mvd');
  writeFileSync(path, bytes);
  const file = await openDumpFile(path);
  t.is(file.trailer.counts.messages, 5);
  await file.close();
});

test('openDumpFile: a damaged body fails its stream with ArchiveCorruptError naming the message', async (t) => {
  const bytes = await writeSample();
  const body = (await splitMembers(bytes)).find((m) => m.name.endsWith('INBOX/7.eml'))!;
  bytes[body.dataOffset + 3] ^= 0x20;
  const path = join(dir, 'damaged.mvd');
  writeFileSync(path, bytes);
  const file = await openDumpFile(path);
  const { body: stream } = await file.readMessage(4);
  const err = await t.throwsAsync(text(stream), { instanceOf: ArchiveCorruptError });
  t.regex(err!.message, /UID 7 of mailbox "INBOX" \(user "alice@example.org"\), member "users\/alice@example.org\/mailboxes\/INBOX\/7.eml" at offset \d+/);
  await file.close();
});

test('openDumpFile: a dump without trailer is reported', async (t) => {
  const bytes = await writeSample();
  const trailer = (await splitMembers(bytes)).at(-1)!;
  const path = join(dir, 'cut.mvd');
  writeFileSync(path, bytes.subarray(0, trailer.offset));
  await t.throwsAsync(openDumpFile(path), { instanceOf: ArchiveCorruptError, message: /no trailer found/ });
});

test('openDumpFile: members with typeflag NUL (the pre-POSIX spelling of a regular file, which the one-pass reader takes) are read, the trailer too', async (t) => {
  const edited = Buffer.from(await writeSample());
  // every member's ustar block: typeflag '0' -> NUL, checksum recomputed; then the trailer's digest
  for (const m of await splitMembers(edited)) {
    const at = m.offset;
    if (edited[at + 156] !== 0x30) continue;
    edited[at + 156] = 0;
    edited.fill(0x20, at + 148, at + 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += edited[at + i]!;
    edited.write(`${sum.toString(8).padStart(6, '0')}\0 `, at + 148, 8, 'latin1');
  }
  const bytes = await reseal(edited, {});
  t.is(bytes[(await splitMembers(bytes)).find((m) => m.name === 'mailvault/trailer.json')!.offset + 156], 0);
  const path = join(dir, 'typeflag-nul.mvd');
  writeFileSync(path, bytes);
  t.is((await readAll(chunked(bytes))).entries.filter((e) => e.type === 'message').length, expectedBodies.length, 'the one-pass reader');
  const file = await openDumpFile(path);
  try {
    t.is(file.header.runId, file.trailer.runId);
    const first = (await (async () => { for await (const e of file.entries()) if (e.type === 'message') return e; return null; })())!;
    t.true((await text((await file.readMessage(first.id)).body)).equals(expectedBodies[0]!.body));
  } finally {
    await file.close();
  }
});
