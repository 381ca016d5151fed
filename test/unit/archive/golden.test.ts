import test from 'ava';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { createReadStream, readFileSync } from 'node:fs';
import { openDumpFile } from '../../../src/archive/random-access.js';
import { readAll } from './sample-dump.js';

// Golden dumps never change and never leave test/fixtures/dumps/: every reader must read every one.
const V1_BASIC = 'test/fixtures/dumps/v1-basic.mvd';
const V1_BASIC_SHA256 = '51f09b9e31f27d6aff630117becd37c79de539ff7146d6d809b79d1ce4233e13';

test('v1-basic.mvd is unchanged', (t) => {
  t.is(createHash('sha256').update(readFileSync(V1_BASIC)).digest('hex'), V1_BASIC_SHA256);
});

test('v1-basic.mvd reads completely with readDump', async (t) => {
  const { entries, bodies } = await readAll(createReadStream(V1_BASIC, { highWaterMark: 1000 }));
  t.deepEqual(entries.map((e) => (e.type === 'message' ? `${e.id}:${e.record.uid}` : e.type)), [
    'header', 'user', 'mailbox', '3:1', '4:2', '5:5', 'mailbox', '7:4', 'user', 'mailbox', 'trailer',
  ]);
  const header = entries[0]!;
  if (header.type === 'header') t.is(header.record.runId, '00000000-0000-4000-8000-000000000001');
  t.is(bodies.get(4)!.toString('latin1'), 'From: Alice <alice@example.org>\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\r\nCRLF line ends, a NUL \u0000 byte.\r\n');
  t.is(bodies.get(5)!.length, 0);
  const long = entries.find((e) => e.type === 'mailbox' && e.record.name.startsWith('Projekte'));
  t.is(long?.type === 'mailbox' ? long.record.name : '', 'Projekte/2026/Nov/Kunden mit einem sehr langen Namen, der über hundert Bytes hinausgeht');
  const trailer = entries.at(-1)!;
  if (trailer.type === 'trailer') t.deepEqual(trailer.record.counts, { users: 2, mailboxes: 3, messages: 4, blobs: 1, messageBytes: 955 });
});

test('v1-basic.mvd reads at random', async (t) => {
  const file = await openDumpFile(V1_BASIC);
  const { record, body } = await file.readMessage(7);
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c as Buffer);
  t.is(record.uid, 4);
  t.is(Buffer.concat(parts).length, 735);
  await file.close();
});

const hasPython = spawnSync('python3', ['--version']).status === 0;

(hasPython ? test : test.skip)('v1-basic.mvd passes the independent Python reader', (t) => {
  const r = spawnSync('python3', ['formats/examples/read_dump.py', V1_BASIC], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /OK \{"blobs": 1, "mailboxes": 3, "messageBytes": 955, "messages": 4, "users": 2\}/);
});
