/**
 * The version 4 golden dump: the same content as v1-basic.mvd, whose trailer digest takes bodies and
 * blobs by their sha256 (spec section 5.6). Besides reading it, the digest is recomputed here from
 * the spec's rule alone, walking the members the TOC lists (not the tar parser the reader uses).
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { createReadStream, readFileSync } from 'node:fs';
import { openDumpFile } from '../../../src/archive/random-access.js';
import { readAll } from './sample-dump.js';
import { specDigest } from './spec-digest.js';

const V4_BASIC = 'test/fixtures/dumps/v4-basic.mvd';
const V4_BASIC_SHA256 = 'ef813696972f39da6bf1cedbb609aa9bad243f3c1ef4319f907764342347f9d2';

test('v4-basic.mvd is unchanged', (t) => {
  t.is(createHash('sha256').update(readFileSync(V4_BASIC)).digest('hex'), V4_BASIC_SHA256);
});

test('v4-basic.mvd reads completely with readDump, as v1-basic.mvd', async (t) => {
  const { entries, bodies } = await readAll(createReadStream(V4_BASIC, { highWaterMark: 1000 }));
  t.deepEqual(entries.map((e) => (e.type === 'message' ? `${e.id}:${e.record.uid}` : e.type)), [
    'header', 'user', 'mailbox', '3:1', '4:2', '5:5', 'mailbox', '7:4', 'user', 'mailbox', 'trailer',
  ]);
  const header = entries[0]!;
  t.is(header.type === 'header' ? header.record.version : 0, 4);
  t.is(bodies.get(4)!.toString('latin1'), 'From: Alice <alice@example.org>\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\r\nCRLF line ends, a NUL \u0000 byte.\r\n');
  const trailer = entries.at(-1)!;
  t.is(trailer.type === 'trailer' ? trailer.record.digest.algorithm : '', 'sha256-hashed-content');
});

test('v4-basic.mvd: the trailer digest follows the spec rule (content members by their sha256)', (t) => {
  const d = specDigest(readFileSync(V4_BASIC));
  t.is(d.contentMembers.length, 5, 'one blob and four bodies');
  t.is(d.computed, d.trailer.value);
  // The plain sha256 of the same bytes (versions 1 to 3) is another value.
  t.not(d.plain, d.trailer.value);
});

test('v4-basic.mvd reads at random', async (t) => {
  const file = await openDumpFile(V4_BASIC);
  const { record, body } = await file.readMessage(7);
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c as Buffer);
  t.is(record.uid, 4);
  t.is(Buffer.concat(parts).length, 735);
  await file.close();
});

const hasPython = spawnSync('python3', ['--version']).status === 0;

(hasPython ? test : test.skip)('v4-basic.mvd passes the independent Python reader', (t) => {
  const r = spawnSync('python3', ['formats/examples/read_dump.py', V4_BASIC], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /OK \{"blobs": 1, "mailboxes": 3, "messageBytes": 955, "messages": 4, "users": 2\}/);
});
