import { createHash } from 'node:crypto';
import { createReadStream, renameSync, writeFileSync } from 'node:fs';
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
// (The trailer's header starts 2560 bytes before the end of the file: header block, 1024 bytes of
// trailer, 1024 zero bytes.)
const ways = [
  { name: 'inline', tuning: undefined },
  { name: 'worker, cut after what it hashed ahead (starts over)', tuning: { minBytes: 0, tailBytes: 0 } },
  { name: 'worker, hashes ahead to 4 KiB before the end, then on to the cut', tuning: { minBytes: 0, tailBytes: 4096 } },
  { name: 'worker, nothing ahead (waits for the cut)', tuning: { minBytes: 0, tailBytes: 1 << 30 } },
  { name: 'worker, at most 1 byte ahead of the reader', tuning: { minBytes: 0, tailBytes: 4096, leadBytes: 1 } },
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
  const use = async (input: Parameters<typeof FileDigest.forInput>[0], minBytes = 0): Promise<boolean> => {
    const d = await FileDigest.forInput(input, { minBytes });
    await d?.dispose();
    input.destroy();
    return d !== null;
  };
  t.true(await use(createReadStream(file)));
  t.false(await use(createReadStream(file), (await good).length + 1), 'below the minimum');
  t.false(await use(createReadStream(file, { start: 512 })), 'not from the start');
  t.false(await use(createReadStream(file, { end: 1000 })), 'not to the end');
  t.false(await use(chunked(await good)), 'not a file stream');
  const zstd = fileOf(t, Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(600)]));
  t.false(await use(createReadStream(zstd)), 'zstd magic: the stream is decompressed, the file is not the tar');
  t.false(await use(createReadStream('/dev/null')), 'not a regular file');
  t.false(await use(createReadStream(path.join(path.dirname(file), 'missing'))), 'a file that cannot be opened: the stream reports it');
});

test('the worker reads the file the stream opened, even when the path is replaced meanwhile', async (t) => {
  const bytes = await good;
  const file = fileOf(t, bytes);
  const input = createReadStream(file);
  const digest = (await FileDigest.forInput(input, { minBytes: 0, tailBytes: 1 << 30 }))!;
  t.teardown(() => input.destroy());
  const other = Buffer.from(bytes);
  other[100] = other[100]! ^ 1;
  writeFileSync(file + '.new', other);
  renameSync(file + '.new', file); // the path now names another file
  const inline = createHash('sha256').update(bytes.subarray(0, bytes.length - 2560)).digest('hex');
  t.is(await digest.digestBefore(bytes.length - 2560, 'mailvault/trailer.json'), inline);
});

test('a dump cut short after the reader opened it: the worker hashes fewer bytes and the reader says so', async (t) => {
  const bytes = await good;
  const file = fileOf(t, bytes);
  const input = createReadStream(file);
  const digest = (await FileDigest.forInput(input, { minBytes: 0, tailBytes: 1 << 30 }))!;
  t.teardown(() => input.destroy());
  writeFileSync(file, bytes.subarray(0, 1024)); // same inode, shorter
  const err = await t.throwsAsync(digest.digestBefore(bytes.length - 3072, 'mailvault/trailer.json'), { instanceOf: ArchiveCorruptError });
  t.regex(err!.message, /holds only 1024 bytes before it: it changed while it was read/);
});
