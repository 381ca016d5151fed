import test from 'ava';
import { ArchiveCorruptError, ArchiveTruncatedError } from '../../../../src/core/errors.js';
import { createCompressStream, createDecompressStream, isZstdMagic } from '../../../../src/archive/compression/index.js';
import { mailText, randomData, runThrough, zstdCli } from './helpers.js';

const input = Buffer.concat([mailText(200_000), randomData(50_000)]);

function cliCompress(args: string[], data: Buffer): Buffer {
  const result = zstdCli([...args, '-c'], data);
  if (result.status !== 0) throw new Error(result.stderr);
  return result.stdout;
}

test('reads zstd -3 output', async (t) => {
  t.true((await runThrough(createDecompressStream(), cliCompress(['-3'], input))).equals(input));
});

test('reads zstd --no-check output', async (t) => {
  const compressed = cliCompress(['-3', '--no-check'], input);
  t.true((await runThrough(createDecompressStream(), compressed, 4096)).equals(input));
});

test('reads concatenated multi-frame CLI output, with and without checksums and content sizes', async (t) => {
  const parts = [mailText(10_000, 1), randomData(5_000), mailText(70_000, 2), Buffer.alloc(0)];
  const compressed = Buffer.concat([
    cliCompress(['-1'], parts[0]!),
    cliCompress(['-19', '--no-check'], parts[1]!),
    // streamed input: the frame header carries no content size
    cliCompress(['-3', '--no-content-size'], parts[2]!),
    cliCompress(['-3'], parts[3]!),
  ]);
  t.true((await runThrough(createDecompressStream(), compressed, 1000)).equals(Buffer.concat(parts)));
});

test('skips skippable frames anywhere in the stream', async (t) => {
  const skippable = Buffer.alloc(8 + 5);
  skippable.writeUInt32LE(0x184d2a53, 0);
  skippable.writeUInt32LE(5, 4);
  const a = mailText(3000, 3);
  const b = mailText(3000, 4);
  const compressed = Buffer.concat([skippable, cliCompress(['-3'], a), skippable, cliCompress(['-3'], b), skippable]);
  t.true(isZstdMagic(compressed));
  t.true((await runThrough(createDecompressStream(), compressed, 7)).equals(Buffer.concat([a, b])));
});

test('1-byte input chunks', async (t) => {
  const small = Buffer.concat([mailText(6000), randomData(3000)]);
  const compressed = await runThrough(createCompressStream({ type: 'zstd', level: 3, frameSize: 2048, useWorker: false }), small);
  t.true((await runThrough(createDecompressStream(), compressed, 1)).equals(small));
});

test('a corrupt byte gives ArchiveCorruptError with the frame offset', async (t) => {
  const compressed = await runThrough(createCompressStream({ type: 'zstd', level: 3, frameSize: 65_536, useWorker: false }), input);
  // Damage a byte in the middle of the third frame.
  const frames: number[] = [];
  for (let pos = 0; pos < compressed.length && frames.length < 3; ) {
    frames.push(pos);
    const next = compressed.indexOf(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), pos + 4);
    pos = next === -1 ? compressed.length : next;
  }
  const damaged = Buffer.from(compressed);
  const target = frames[2]! + 200;
  damaged[target] = damaged[target]! ^ 0x5a;
  const err = await t.throwsAsync(runThrough(createDecompressStream(), damaged), { instanceOf: ArchiveCorruptError });
  t.true(err!.message.includes(`compressed byte ${frames[2]}`), err!.message);
  t.truthy(err!.hint);
});

test('a corrupt byte in CLI output with checksums is caught by the checksum', async (t) => {
  const compressed = cliCompress(['-3'], input);
  const damaged = Buffer.from(compressed);
  damaged[damaged.length - 2] = damaged[damaged.length - 2]! ^ 0xff; // inside the content checksum
  await t.throwsAsync(runThrough(createDecompressStream(), damaged), { instanceOf: ArchiveCorruptError });
});

test('garbage that is not zstd gives ArchiveCorruptError at offset 0', async (t) => {
  const err = await t.throwsAsync(runThrough(createDecompressStream(), Buffer.from('From: someone\r\n\r\nhello')), {
    instanceOf: ArchiveCorruptError,
  });
  t.true(err!.message.includes('compressed byte 0'));
});

test('trailing garbage after valid frames gives ArchiveCorruptError at its offset', async (t) => {
  const compressed = cliCompress(['-3'], mailText(1000));
  const err = await t.throwsAsync(runThrough(createDecompressStream(), Buffer.concat([compressed, Buffer.from('junkjunk')])), {
    instanceOf: ArchiveCorruptError,
  });
  t.true(err!.message.includes(`compressed byte ${compressed.length}`), err!.message);
});

for (const cut of [1, 4, 100, 9, -1, -4]) {
  test(`input cut mid-frame (${cut > 0 ? `first ${cut} bytes` : `last ${-cut} bytes dropped`}) gives ArchiveTruncatedError`, async (t) => {
    const compressed = cliCompress(['-3'], input);
    const truncated = cut > 0 ? compressed.subarray(0, cut) : compressed.subarray(0, compressed.length + cut);
    await t.throwsAsync(runThrough(createDecompressStream(), truncated, 333), { instanceOf: ArchiveTruncatedError });
  });
}

test('our seekable output cut inside the seek table gives ArchiveTruncatedError', async (t) => {
  const compressed = await runThrough(createCompressStream({ type: 'zstd', level: 3, frameSize: 65_536, useWorker: false }), input);
  await t.throwsAsync(runThrough(createDecompressStream(), compressed.subarray(0, compressed.length - 5)), {
    instanceOf: ArchiveTruncatedError,
  });
});

test('empty input gives ArchiveTruncatedError (as zstd -d does)', async (t) => {
  await t.throwsAsync(runThrough(createDecompressStream(), Buffer.alloc(0)), { instanceOf: ArchiveTruncatedError });
});

test('output respects backpressure: a highly compressible chunk is not inflated all at once', async (t) => {
  const zeros = Buffer.alloc(64 * 1024 * 1024);
  const compressed = cliCompress(['-3'], zeros); // a few KB expanding to 64 MiB
  const stream = createDecompressStream();
  stream.end(compressed);
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.true(stream.readableLength < 4 * 1024 * 1024, `buffered ${stream.readableLength} bytes without a reader`);
  let total = 0;
  for await (const chunk of stream) total += (chunk as Buffer).length;
  t.is(total, zeros.length);
});

test('isZstdMagic', (t) => {
  t.true(isZstdMagic(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])));
  t.true(isZstdMagic(Buffer.from([0x50, 0x2a, 0x4d, 0x18, 0])));
  t.true(isZstdMagic(Buffer.from([0x5f, 0x2a, 0x4d, 0x18])));
  t.false(isZstdMagic(Buffer.from([0x60, 0x2a, 0x4d, 0x18])));
  t.false(isZstdMagic(Buffer.from('ustar')));
  t.false(isZstdMagic(Buffer.from([0x28, 0xb5, 0x2f])));
  t.false(isZstdMagic(Buffer.alloc(0)));
});

/** Our seekable output for `data` (frames of 64 KiB), with entry `index`'s field at `field` (0: compressed size, 4: decompressed size, 8: checksum) changed by `delta`. */
async function seekableWithEditedTable(data: Buffer, index: number, field: 0 | 4 | 8, delta: number): Promise<Buffer> {
  const out = Buffer.from(await runThrough(createCompressStream({ type: 'zstd', level: 3, frameSize: 64 * 1024 }), data));
  const frames = out.readUInt32LE(out.length - 9);
  const entrySize = (out.readUInt8(out.length - 5) & 0x80) !== 0 ? 12 : 8;
  const at = out.length - 9 - frames * entrySize + index * entrySize + field;
  if (delta !== 0) out.writeUInt32LE((out.readUInt32LE(at) + delta) >>> 0, at);
  return out;
}

test('checkSeekTable: a seek table that does not describe the frames (a size or a checksum) is corrupt; without the option the data reads', async (t) => {
  const data = Buffer.concat([mailText(300_000, 5), randomData(100_000)]);
  t.true((await runThrough(createDecompressStream({ checkSeekTable: true }), await seekableWithEditedTable(data, 0, 0, 0), 5000)).equals(data));
  for (const [field, what] of [[0, 'compressed'], [4, 'holding'], [8, 'checksum']] as const) {
    const damaged = await seekableWithEditedTable(data, 2, field, 1);
    await t.throwsAsync(runThrough(createDecompressStream({ checkSeekTable: true }), damaged, 5000), { instanceOf: ArchiveCorruptError, message: new RegExp(`seek table is wrong: frame 2.*${what}`) }, what);
    t.true((await runThrough(createDecompressStream(), damaged, 5000)).equals(data), `${what}: a one-pass read ignores the table`);
  }
  // zstd CLI output has no seek table: nothing to check
  t.true((await runThrough(createDecompressStream({ checkSeekTable: true }), cliCompress(['-3'], data))).equals(data));
});
