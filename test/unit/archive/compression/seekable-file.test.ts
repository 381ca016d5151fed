import test from 'ava';
import { createReadStream } from 'node:fs';
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { ArchiveCorruptError, ArchiveTruncatedError, InputNotFoundError } from '../../../../src/core/errors.js';
import {
  SeekableZstdFile,
  createCompressStream,
  createDecompressStream,
  type RandomAccessFile,
} from '../../../../src/archive/compression/index.js';
import { parseSeekTable, parseSeekTableFooter } from '../../../../src/archive/compression/zstd-format.js';
import { mailText, randomData, runThrough, zstdCli } from './helpers.js';
import { makeTempDir, removeTempDir } from '../../../helpers/temp.js';

const F = 4096;
const original = Buffer.concat([mailText(6 * F + 100), randomData(4 * F + 400)]); // 11 frames, last one partial
let dir = '';
let compressed: Buffer = Buffer.alloc(0);
let seekablePath = '';

test.before(async () => {
  dir = await makeTempDir('mailvault-zstd-');
  compressed = await runThrough(createCompressStream({ type: 'zstd', level: 3, frameSize: F }), original);
  seekablePath = join(dir, 'dump.tar.zst');
  await writeFile(seekablePath, compressed);
});

test.after.always(() => removeTempDir(dir));

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

/** Opens files through fs.promises but counts every byte read. */
function countingOpener(): { openFile: (path: string) => Promise<RandomAccessFile>; bytesRead: () => number; reset: () => void } {
  let count = 0;
  return {
    openFile: async (path) => {
      const handle = await open(path, 'r');
      return {
        read: async (buffer, offset, length, position) => {
          const result = await handle.read(buffer, offset, length, position);
          count += result.bytesRead;
          return result;
        },
        stat: () => handle.stat(),
        close: () => handle.close(),
      };
    },
    bytesRead: () => count,
    reset: () => {
      count = 0;
    },
  };
}

/** Compressed sizes of our frames, from the seek table. */
function frameSizes(): number[] {
  const footer = parseSeekTableFooter(compressed.subarray(compressed.length - 9))!;
  return parseSeekTable(compressed.subarray(compressed.length - footer.tableFrameSize), footer)!.map((e) => e.compressedSize);
}

test('opens our output: frame count and decompressed size from the seek table', async (t) => {
  const file = await SeekableZstdFile.open(seekablePath);
  t.truthy(file);
  t.is(file!.frameCount, 11);
  t.is(file!.decompressedSize, original.length);
  await file!.close();
});

test('ranges equal slices of the original', async (t) => {
  const file = (await SeekableZstdFile.open(seekablePath))!;
  const n = original.length;
  const ranges: Array<[number, number]> = [
    [0, 1],
    [0, n],
    [n - 1, n],
    [F - 1, F + 1],
    [F, 2 * F],
    [3 * F + 5, 7 * F + 2],
    [10 * F, n],
    [123, 123],
    [n, n],
  ];
  let seed = 42;
  for (let i = 0; i < 25; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const a = seed % n;
    seed = (seed * 1103515245 + 12345) >>> 0;
    const b = seed % n;
    ranges.push([Math.min(a, b), Math.max(a, b) + 1]);
  }
  for (const [start, end] of ranges) {
    const data = await collect(file.createReadStream(start, end));
    t.true(data.equals(original.subarray(start, end)), `range [${start}, ${end})`);
  }
  await file.close();
});

test('reads only the frames that cover the range', async (t) => {
  const counter = countingOpener();
  const file = (await SeekableZstdFile.open(seekablePath, { openFile: counter.openFile }))!;
  const sizes = frameSizes();
  t.true(counter.bytesRead() < 200, 'open reads the seek table only');

  counter.reset();
  await collect(file.createReadStream(F + 10, F + 20));
  t.is(counter.bytesRead(), sizes[1]);

  counter.reset();
  await collect(file.createReadStream(2 * F - 1, 4 * F + 1)); // frames 1, 2, 3 and 4
  t.is(counter.bytesRead(), sizes[1]! + sizes[2]! + sizes[3]! + sizes[4]!);

  counter.reset();
  await collect(file.createReadStream(original.length - 1, original.length));
  t.is(counter.bytesRead(), sizes[10]);

  counter.reset();
  await collect(file.createReadStream(5, 5));
  t.is(counter.bytesRead(), 0);
  await file.close();
});

test('files without a seek table give null: zstd CLI output, plain files, empty files', async (t) => {
  const cliPath = join(dir, 'cli.zst');
  await writeFile(cliPath, zstdCli(['-3', '-c'], original).stdout);
  t.is(await SeekableZstdFile.open(cliPath), null);
  const plainPath = join(dir, 'plain.tar');
  await writeFile(plainPath, original.subarray(0, 5000));
  t.is(await SeekableZstdFile.open(plainPath), null);
  const emptyPath = join(dir, 'empty');
  await writeFile(emptyPath, Buffer.alloc(0));
  t.is(await SeekableZstdFile.open(emptyPath), null);
});

test('two seekable files concatenated give null (the last table does not span the file); sequential reading works', async (t) => {
  const path = join(dir, 'concat.zst');
  await writeFile(path, Buffer.concat([compressed, compressed]));
  t.is(await SeekableZstdFile.open(path), null);
  const data = await runThrough(createDecompressStream(), Buffer.concat([compressed, compressed]));
  t.true(data.equals(Buffer.concat([original, original])));
});

test('a truncated file has no usable seek table, and reading it sequentially gives ArchiveTruncatedError', async (t) => {
  const path = join(dir, 'cut.zst');
  await writeFile(path, compressed.subarray(0, Math.floor(compressed.length / 2)));
  t.is(await SeekableZstdFile.open(path), null);
  await t.throwsAsync(
    async () => {
      for await (const _ of createReadStream(path).pipe(createDecompressStream())) void _;
    },
    { instanceOf: ArchiveTruncatedError },
  );
});

test('a corrupt byte in a frame gives ArchiveCorruptError for ranges over it, other frames still read', async (t) => {
  const sizes = frameSizes();
  const frame3Start = sizes[0]! + sizes[1]! + sizes[2]!;
  const damaged = Buffer.from(compressed);
  damaged[frame3Start + 50] = damaged[frame3Start + 50]! ^ 0x33;
  const path = join(dir, 'corrupt.zst');
  await writeFile(path, damaged);
  const file = (await SeekableZstdFile.open(path))!;
  const err = await t.throwsAsync(collect(file.createReadStream(3 * F + 1, 3 * F + 2)), { instanceOf: ArchiveCorruptError });
  t.true(err!.message.includes('frame 3'), err!.message);
  t.true(err!.message.includes(String(frame3Start)), err!.message);
  t.true((await collect(file.createReadStream(F, 2 * F))).equals(original.subarray(F, 2 * F)));
  await file.close();
});

test('a seek table whose checksum disagrees with the frame gives ArchiveCorruptError', async (t) => {
  const damaged = Buffer.from(compressed);
  const footer = parseSeekTableFooter(damaged.subarray(damaged.length - 9))!;
  const entry0Checksum = damaged.length - footer.tableFrameSize + 8 + 8;
  damaged[entry0Checksum] = damaged[entry0Checksum]! ^ 1;
  const path = join(dir, 'badsum.zst');
  await writeFile(path, damaged);
  const file = (await SeekableZstdFile.open(path))!;
  await t.throwsAsync(collect(file.createReadStream(0, 10)), { instanceOf: ArchiveCorruptError, message: /checksum/ });
  await file.close();
});

test('a range beyond the end gives ArchiveCorruptError; a missing file InputNotFoundError', async (t) => {
  const file = (await SeekableZstdFile.open(seekablePath))!;
  t.throws(() => file.createReadStream(0, original.length + 1), { instanceOf: ArchiveCorruptError });
  await file.close();
  await t.throwsAsync(SeekableZstdFile.open(join(dir, 'nope.zst')), { instanceOf: InputNotFoundError });
});
