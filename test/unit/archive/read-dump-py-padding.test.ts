/**
 * formats/examples/read_dump.py (the spec's independent reader) checks, in version 4 dumps, that a
 * content member's padding is zeros (formats/dump-v1.md 5.6): the padding is not in the digest, so
 * this check is all that covers it. A non-zero byte there is the dump's only defect: tar headers,
 * records, TOC and digest all stay true.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { splitMembers, writeSample, type RawMember } from './sample-dump.js';
import { tempDirSync } from '../../helpers/temp.js';

const hasPython = spawnSync('python3', ['--version'], { stdio: 'ignore' }).status === 0;
const pyTest = hasPython ? test : test.skip;

function readDumpPy(path: string): { status: number | null; stdout: string; stderr: string } {
  return spawnSync('python3', ['formats/examples/read_dump.py', path], { encoding: 'utf8' });
}

/** The positions of the first and last padding byte after `m`'s data. */
function paddingBounds(m: RawMember): { first: number; last: number } {
  const first = m.dataOffset + m.data.length;
  const last = Math.ceil(first / 512) * 512 - 1;
  if (last < first) throw new Error(`${m.name} has no padding`);
  return { first, last };
}

/** `dump` with the byte at `at` set to `value` (a padding byte must be zero before). */
function poke(dump: Buffer, at: number, value: number): Buffer {
  if (dump[at] !== 0) throw new Error(`byte ${at} is not padding`);
  const copy = Buffer.from(dump);
  copy[at] = value;
  return copy;
}

pyTest('read_dump.py rejects a non-zero byte in the padding after a body (version 4)', async (t) => {
  const dir = tempDirSync(t, 'mailvault-pypad-');
  const dump = await writeSample();
  const body = (await splitMembers(dump)).find((m) => m.name === 'users/alice@example.org/mailboxes/INBOX/7.eml')!;
  const good = join(dir, 'good.mvd');
  writeFileSync(good, dump);
  const ok = readDumpPy(good);
  t.is(ok.status, 0, ok.stderr);
  const { first, last } = paddingBounds(body);
  for (const [where, at] of [['first', first], ['last', last]] as const) {
    const path = join(dir, `${where}.mvd`);
    writeFileSync(path, poke(dump, at, 0x20));
    const r = readDumpPy(path);
    t.is(r.status, 65, `${where} padding byte: ${r.stdout}`);
    t.regex(r.stderr, /^read_dump\.py: padding after a body or blob is not zero bytes$/m, `${where} padding byte`);
  }
});

pyTest('read_dump.py rejects a non-zero byte in the padding after a blob (v4-basic.mvd)', async (t) => {
  const dir = tempDirSync(t, 'mailvault-pypad-');
  const dump = readFileSync('test/fixtures/dumps/v4-basic.mvd');
  const blob = (await splitMembers(dump)).find((m) => m.name.startsWith('blobs/'))!;
  const path = join(dir, 'blob.mvd');
  writeFileSync(path, poke(dump, paddingBounds(blob).last, 0x01));
  const r = readDumpPy(path);
  t.is(r.status, 65, r.stdout);
  t.regex(r.stderr, /padding after a body or blob is not zero bytes/);
});
