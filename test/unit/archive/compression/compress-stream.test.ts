import test from 'ava';
import { once } from 'node:events';
import { createCompressStream, createDecompressStream, isZstdMagic } from '../../../../src/archive/compression/index.js';
import {
  SEEK_TABLE_FOOTER_SIZE,
  parseSeekTable,
  parseSeekTableFooter,
  type SeekTableEntry,
} from '../../../../src/archive/compression/zstd-format.js';
import { mailText, randomData, runThrough, zstdCli } from './helpers.js';

const F = 4096;

/** Parse the seek table at the end of `file`, checking the whole file is described by it. */
function readTable(file: Buffer): SeekTableEntry[] {
  const footer = parseSeekTableFooter(file.subarray(file.length - SEEK_TABLE_FOOTER_SIZE));
  if (footer === null) throw new Error('no seek table footer');
  const entries = parseSeekTable(file.subarray(file.length - footer.tableFrameSize), footer);
  if (entries === null) throw new Error('bad seek table');
  const compressed = entries.reduce((n, e) => n + e.compressedSize, 0);
  if (compressed !== file.length - footer.tableFrameSize) throw new Error('seek table does not span the file');
  return entries;
}

const sizes = [0, 1, F, F + 1, 7 * F + 123];
for (const useWorker of [false, true]) {
  for (const [kind, make] of [
    ['random', randomData],
    ['text', (n: number) => mailText(n)],
  ] as const) {
    for (const size of sizes) {
      test(`round trip of ${size} ${kind} bytes (${useWorker ? 'worker' : 'inline'}) with a valid seek table`, async (t) => {
        const input = make(size);
        const compressed = await runThrough(createCompressStream({ type: 'zstd', level: 3, frameSize: F, useWorker }), input, 1000);
        t.true(isZstdMagic(compressed));
        const entries = readTable(compressed);
        t.is(entries.length, Math.ceil(size / F));
        t.is(entries.reduce((n, e) => n + e.decompressedSize, 0), size);
        let offset = 0;
        for (const e of entries) {
          t.true(e.decompressedSize > 0 && e.decompressedSize <= F);
          // The seek-table checksum is the frame's own XXH64-based content checksum (its last 4 bytes).
          t.is(e.checksum, compressed.readUInt32LE(offset + e.compressedSize - 4));
          offset += e.compressedSize;
        }
        const output = await runThrough(createDecompressStream(), compressed, 777);
        t.true(output.equals(input));
      });
    }
  }
}

for (const useWorker of [false, true]) {
  test(`zstd -d reads our multi-frame output and zstd -t passes (${useWorker ? 'worker' : 'inline'})`, async (t) => {
    const input = Buffer.concat([mailText(50_000), randomData(20_000), mailText(30_000, 7)]);
    const compressed = await runThrough(createCompressStream({ type: 'zstd', level: 3, frameSize: 16_384, useWorker }), input);
    const decoded = zstdCli(['-d', '-c'], compressed);
    t.is(decoded.status, 0, decoded.stderr);
    t.true(decoded.stdout.equals(input));
    const tested = zstdCli(['-t'], compressed);
    t.is(tested.status, 0, tested.stderr);
  });
}

test('zstd -d and zstd -t accept the output for empty input (seek table only)', async (t) => {
  const compressed = await runThrough(createCompressStream({ type: 'zstd', level: 3 }), Buffer.alloc(0));
  t.deepEqual(readTable(compressed), []);
  const decoded = zstdCli(['-d', '-c'], compressed);
  t.is(decoded.status, 0, decoded.stderr);
  t.is(decoded.stdout.length, 0);
  t.is(zstdCli(['-t'], compressed).status, 0);
});

test('default frame size is 1 MiB', async (t) => {
  const input = mailText(1024 * 1024 + 10);
  const compressed = await runThrough(createCompressStream({ type: 'zstd', level: 1, useWorker: false }), input);
  t.deepEqual(
    readTable(compressed).map((e) => e.decompressedSize),
    [1024 * 1024, 10],
  );
});

test('one chunk spanning many frames keeps frame order through the worker', async (t) => {
  const input = Buffer.concat(Array.from({ length: 40 }, (_, i) => Buffer.alloc(F, i)));
  const compressed = await runThrough(createCompressStream({ type: 'zstd', level: 3, frameSize: F, useWorker: true }), input, input.length);
  t.is(readTable(compressed).length, 40);
  t.true((await runThrough(createDecompressStream(), compressed)).equals(input));
});

test('none is the identity', async (t) => {
  const input = randomData(100_000);
  t.true((await runThrough(createCompressStream({ type: 'none' }), input, 3000)).equals(input));
});

for (const useWorker of [false, true]) {
  test(`respects backpressure when nobody reads (${useWorker ? 'worker' : 'inline'})`, async (t) => {
    const stream = createCompressStream({ type: 'zstd', level: 1, frameSize: 65_536, useWorker });
    const chunk = randomData(1024 * 1024);
    let accepted = 0;
    while (accepted < 64 && stream.write(chunk)) accepted++;
    // Let in-flight frames finish: the stream must still refuse to take more.
    await new Promise((resolve) => setTimeout(resolve, 200));
    t.true(accepted <= 2, `accepted ${accepted} MiB without a reader`);
    t.true(stream.writableNeedDrain);
    t.true(stream.readableLength <= 8 * 65_536 + 1024 * 1024, `buffered ${stream.readableLength} bytes`);
    stream.destroy();
    await once(stream, 'close');
  });
}

for (const useWorker of [false, true]) {
  test(`a chunk spanning many frames is not compressed ahead of the reader (${useWorker ? 'worker' : 'inline'})`, async (t) => {
    const frameSize = 65_536;
    const stream = createCompressStream({ type: 'zstd', level: 1, frameSize, useWorker });
    const input = randomData(8 * 1024 * 1024); // incompressible: each frame stays ~64 KiB
    stream.write(input);
    await new Promise((resolve) => setTimeout(resolve, 300));
    // at most 6 frames, each up to frameSize plus the frame header and checksum of incompressible data
    t.true(stream.readableLength <= 6 * (frameSize + 64), `buffered ${stream.readableLength} bytes without a reader`);
    stream.end();
    const output = await runThrough(createDecompressStream(), Buffer.concat(await stream.toArray()));
    t.true(output.equals(input));
  });
}

test('destroying a stream mid-way stops the worker and settles', async (t) => {
  const stream = createCompressStream({ type: 'zstd', level: 3, frameSize: F, useWorker: true });
  stream.resume();
  stream.write(randomData(10 * F));
  await new Promise((resolve) => setImmediate(resolve));
  stream.destroy();
  await once(stream, 'close');
  t.true(stream.destroyed);
});
