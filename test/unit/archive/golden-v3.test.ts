/**
 * The version 3 golden dump: an incremental written by the last writer of format 3 (8c3558c), with
 * flag tables and a message stored as stub + blob. mailvault now writes only version 4, so this file
 * is what keeps version 3 reading tested: the plain sha256 digest (spec 5.6), flag tables, stubs.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { readAll } from './sample-dump.js';
import { specDigest } from './spec-digest.js';

const V3 = 'test/fixtures/dumps/v3-incremental.mvd';
const V3_SHA256 = 'e9728990790a8a1b041e533e25ee83a9d26d5c618edb602f271fa986e8442416';

test('v3-incremental.mvd is unchanged', (t) => {
  t.is(createHash('sha256').update(readFileSync(V3)).digest('hex'), V3_SHA256);
});

test('v3-incremental.mvd reads completely: flag tables, the stub message rebuilt, the plain digest', async (t) => {
  const { entries, bodies } = await readAll(createReadStream(V3, { highWaterMark: 777 }));
  const header = entries[0]!;
  t.is(header.type === 'header' ? `${header.record.version} ${header.record.kind}` : '', '3 incremental');
  t.is(entries.filter((e) => e.type === 'flags').length, 4);
  const m = entries.find((e) => e.type === 'message');
  t.is(m?.type === 'message' ? `${m.record.mailbox} ${m.record.uid} ${m.record.size}` : '', 'INBOX 5 4538');
  const body = bodies.get(m?.type === 'message' ? m.id : -1)!;
  t.is(createHash('sha256').update(body).digest('hex'), m?.type === 'message' ? m.record.sha256 : '');
  const trailer = entries.at(-1)!;
  t.is(trailer.type === 'trailer' ? trailer.record.digest.algorithm : '', 'sha256');
  // Versions 1-3: the digest is the plain sha256 of every byte before the trailer member.
  t.is(specDigest(readFileSync(V3)).plain, trailer.type === 'trailer' ? trailer.record.digest.value : '');
});
