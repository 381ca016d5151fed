/**
 * Worker threads take about 0.1 s to boot. A zstd stream whose worker was started early (the dump
 * writer does so for large backups) must give the same output whatever the worker's state when the
 * input ends: a single frame is compressed on the calling thread, more go to the worker.
 */
import test from 'ava';
import { once } from 'node:events';
import { createSeekableCompressStream } from '../../../src/archive/compression/compress-stream.js';
import { createDecompressStream } from '../../../src/archive/compression/index.js';
import { mailText, runThrough } from './compression/helpers.js';

for (const size of [0, 100, 4096, 4097, 3 * 4096 + 5]) {
  test(`zstd stream started early: ${size} bytes come out whole`, async (t) => {
    const stream = createSeekableCompressStream({ type: 'zstd', level: 3, frameSize: 4096, useWorker: true });
    stream.startWorker();
    const input = mailText(size, 7);
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    if (input.length > 0) {
      stream.write(input);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    stream.end();
    await once(stream, 'end');
    const back = await runThrough(createDecompressStream(), Buffer.concat(chunks));
    t.true(back.equals(input));
  });
}
