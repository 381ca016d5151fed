/**
 * A header's kind, base and version must agree (formats/dump-v1.md 5.2 and 13): a full dump has no
 * base, an incremental names the run it follows and exists from version 3. mailvault's backup never
 * wrote otherwise; a dump that says otherwise is corrupt, for the one-pass and the random-access
 * reader alike, before anything else is read.
 */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ArchiveCorruptError, UsageError } from '../../../src/core/errors.js';
import { openDumpFile } from '../../../src/archive/random-access.js';
import { DumpWriter } from '../../../src/archive/writer.js';
import { HEADER, chunked, collector, readAll } from './sample-dump.js';
import { reseal, sealRecord } from './reseal.js';
import { tempDirSync } from '../../helpers/temp.js';

const BASE = { runId: '00000000-0000-4000-8000-00000000000b', created: '2026-11-27T14:00:00Z' };

async function write(header: typeof HEADER): Promise<Buffer> {
  const out = collector();
  const writer = await DumpWriter.create(out.stream, header);
  await writer.writeUser({ user: 'alice@example.org', subscriptions: [] });
  await writer.finish();
  return out.bytes();
}

test('a sound full dump and a sound incremental read', async (t) => {
  for (const header of [HEADER, { ...HEADER, kind: 'incremental' as const, base: BASE }]) {
    t.deepEqual((await readAll(chunked(await write(header)))).entries.map((e) => e.type), ['header', 'user', 'trailer']);
  }
});

/** A sound incremental with its header changed by `change` (record resealed, spaces pad it). */
async function damaged(change: (o: Record<string, unknown>) => void): Promise<Buffer> {
  return reseal(await write({ ...HEADER, kind: 'incremental', base: BASE }), {
    'mailvault/header.json': (m) => {
      const o = JSON.parse(m.data.toString('utf8')) as Record<string, unknown>;
      change(o);
      return sealRecord(o, m.data.length, true);
    },
  });
}

test('the writer refuses a header whose kind and base disagree', async (t) => {
  await t.throwsAsync(DumpWriter.create(collector().stream, { ...HEADER, base: BASE }), { instanceOf: UsageError });
  await t.throwsAsync(DumpWriter.create(collector().stream, { ...HEADER, kind: 'incremental', base: null }), { instanceOf: UsageError });
});

for (const [what, make] of [
  ['a full dump with a base', () => damaged((o) => (o['kind'] = 'full'))],
  ['an incremental without a base', () => damaged((o) => (o['base'] = null))],
  ['an incremental of format version 2', () => damaged((o) => (o['version'] = 2))],
] as const) {
  test(`the header describing ${what} is ArchiveCorruptError in both readers`, async (t) => {
    const dump = await make();
    const err = await t.throwsAsync(readAll(chunked(dump)), { instanceOf: ArchiveCorruptError });
    t.regex(err!.message, /mailvault\/header\.json.*the header describes/);
    const file = join(tempDirSync(t, 'mailvault-hdr-'), 'd.mvd');
    writeFileSync(file, dump);
    await t.throwsAsync(openDumpFile(file), { instanceOf: ArchiveCorruptError, message: /the header describes/ });
  });
}
