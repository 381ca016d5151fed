import { createReadStream, writeFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { FileDigest } from '../../../src/archive/file-digest.js';
import { ArchiveCorruptError } from '../../../src/core/errors.js';
import { tempDirSync } from '../../helpers/temp.js';
import { chunked, readAll, splitMembers, writeSample } from './sample-dump.js';

const good = writeSample();

/** The dump with one zero padding byte after the first body's data changed: only the digest covers it. */
async function paddingFlipped(): Promise<Buffer> {
  const bytes = Buffer.from(await good);
  const body = (await splitMembers(bytes)).find((m) => m.name.endsWith('.eml') && m.data.length % 512 !== 0)!;
  const at = body.dataOffset + body.data.length;
  bytes[at] = 0x01;
  return bytes;
}

function fileOf(t: Parameters<typeof tempDirSync>[0], bytes: Buffer): string {
  const file = path.join(tempDirSync(t, 'mv-fdigest-'), 'dump.mvd');
  writeFileSync(file, bytes);
  return file;
}

// Each way the digest can be computed: inline by the parser, by the worker reading the file (hashing
// ahead to the end and starting over from 0 for the cut, or waiting for the cut first).
const ways = [
  { name: 'inline', tuning: undefined },
  { name: 'worker, cut after what it hashed ahead (starts over)', tuning: { minBytes: 0, tailBytes: 0 } },
  { name: 'worker, cut before it (waits)', tuning: { minBytes: 0, tailBytes: 1 << 30 } },
];

for (const way of ways) {
  test(`${way.name}: a good dump file reads to its trailer`, async (t) => {
    const file = fileOf(t, await good);
    const { entries } = await readAll(createReadStream(file), way.tuning ? { digestWorker: way.tuning } : {});
    t.is(entries.at(-1)?.type, 'trailer');
  });

  test(`${way.name}: a changed padding byte (covered by nothing but the digest) is corrupt`, async (t) => {
    const file = fileOf(t, await paddingFlipped());
    const err = await t.throwsAsync(readAll(createReadStream(file), way.tuning ? { digestWorker: way.tuning } : {}), { instanceOf: ArchiveCorruptError });
    t.regex(err!.message, /digest [0-9a-f]{64} does not match the \d+ bytes read before it/);
  });
}

test('the worker is used only for a whole regular uncompressed file of the minimum size', async (t) => {
  const file = fileOf(t, await good);
  const use = (input: Parameters<typeof FileDigest.forInput>[0], minBytes = 0): boolean => {
    const d = FileDigest.forInput(input, { minBytes });
    void d?.dispose();
    return d !== null;
  };
  t.true(use(createReadStream(file)));
  t.false(use(createReadStream(file), (await good).length + 1), 'below the minimum');
  t.false(use(createReadStream(file, { start: 512 })), 'not from the start');
  t.false(use(createReadStream(file, { end: 1000 })), 'not to the end');
  t.false(use(chunked(await good)), 'not a file stream');
  const zstd = fileOf(t, Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(600)]));
  t.false(use(createReadStream(zstd)), 'zstd magic: the stream is decompressed, the file is not the tar');
  t.false(use(createReadStream('/dev/null')), 'not a regular file');
});

test('a dump cut short after the reader opened it: the worker hashes fewer bytes and the reader says so', async (t) => {
  const bytes = await good;
  const file = fileOf(t, bytes);
  const digest = FileDigest.forInput(createReadStream(file), { minBytes: 0, tailBytes: 1 << 30 })!;
  writeFileSync(file, bytes.subarray(0, 1024)); // same inode, shorter
  const err = await t.throwsAsync(digest.digestBefore(bytes.length - 3072, 'mailvault/trailer.json'), { instanceOf: ArchiveCorruptError });
  t.regex(err!.message, /holds only 1024 bytes before it: it changed while it was read/);
});
