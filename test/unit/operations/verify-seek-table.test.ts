// verify checks a zstd dump's seek table against its frames (formats/dump-v1.md 9): a wrong table
// breaks random access only, so the other readers ignore it, but verify, which promises a complete
// check, reports it.
import test from 'ava';
import { Readable } from 'node:stream';
import { createCompressStream } from '../../../src/archive/compression/index.js';
import { verify } from '../../../src/operations/verify.js';
import { runThrough } from '../archive/compression/helpers.js';
import { writeSample } from '../archive/sample-dump.js';

test('verify reports a seek table whose sizes do not match the frames; the same dump with its table intact verifies', async (t) => {
  const dump = await runThrough(createCompressStream({ type: 'zstd', level: 3, frameSize: 4096 }), await writeSample());
  const good = await verify(Readable.from([dump]));
  t.true(good.ok, String(good.error));
  const damaged = Buffer.from(dump);
  const frames = damaged.readUInt32LE(damaged.length - 9);
  const entrySize = (damaged.readUInt8(damaged.length - 5) & 0x80) !== 0 ? 12 : 8;
  const at = damaged.length - 9 - frames * entrySize + 4; // entry 0, decompressed size
  damaged.writeUInt32LE(damaged.readUInt32LE(at) + 512, at);
  const bad = await verify(Readable.from([damaged]));
  t.false(bad.ok);
  t.regex(String((bad.error as { message?: string } | null)?.message ?? bad.error), /seek table is wrong: frame 0/);
});
