import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Readable } from 'node:stream';
import test from 'ava';
import { openDumpFile } from '../../../src/archive/random-access.js';
import { readAll } from './sample-dump.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const FILE = path.join(ROOT, 'test/fixtures/dumps/v2-parts.mvd');
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('v2-parts.mvd is unchanged', async (t) => {
  t.is(sha(await readFile(FILE)), '5d0b0aa77f146255e1c26e88edded4817cb48c70af45e7f2d73d9cbdc3147163');
});

test('v2-parts.mvd reads in one pass and at random: every message rebuilds to its record sha256', async (t) => {
  const { entries, bodies } = await readAll(Readable.from([await readFile(FILE)]));
  const messages = entries.filter((e) => e.type === 'message');
  t.is(messages.length, 7);
  for (const m of messages) if (m.type === 'message') t.is(sha(bodies.get(m.id)!), m.record.sha256);
  t.is(messages.filter((m) => m.type === 'message' && m.record.parts !== undefined).length, 6);
  const f = await openDumpFile(FILE);
  t.is(f.header.version, 2);
  t.is(f.trailer.counts.blobs, 4);
  for (const m of messages) {
    if (m.type !== 'message') continue;
    const { body } = await f.readMessage(m.id);
    const parts: Buffer[] = [];
    for await (const c of body) parts.push(c as Buffer);
    t.true(Buffer.concat(parts).equals(bodies.get(m.id)!));
  }
  await f.close();
});
