import test from 'ava';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { Readable } from 'node:stream';
import { BodySpool } from '../../../src/archive/body-spool.js';

async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function bodySpoolDirs(): Promise<string[]> {
  return (await readdir(tmpdir())).filter((n) => n.startsWith('mailvault-body-'));
}

test('a body over the memory limit goes to a temp file with no name, and reads back whole, twice', async (t) => {
  const before = new Set(await bodySpoolDirs());
  const spool = new BodySpool(1000);
  const parts = [Buffer.alloc(600, 'a'), Buffer.alloc(600, 'b'), Buffer.alloc(70_000, 'c')];
  for (const p of parts) await spool.write(p);
  t.deepEqual((await bodySpoolDirs()).filter((d) => !before.has(d)), [], 'the spool file must hold no name on disk (a killed reader would leave the mail behind)');
  const want = Buffer.concat(parts);
  t.true((await bytesOf(spool.open())).equals(want));
  t.true((await bytesOf(spool.open())).equals(want), 'a second stream reads from the start again');
  await spool.dispose();
});

test('a body within the memory limit stays in memory', async (t) => {
  const spool = new BodySpool(1000);
  await spool.write(Buffer.from('hello '));
  await spool.write(Buffer.from('world'));
  t.is((await bytesOf(spool.open())).toString(), 'hello world');
  await spool.dispose();
});
