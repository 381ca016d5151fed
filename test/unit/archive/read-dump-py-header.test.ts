/**
 * formats/examples/read_dump.py looks at the header's format and version before its check, as the spec
 * says (formats/dump-v1.md, "The header"): a later version may change the rest of the header, so a
 * header of version 5 must be reported as "written by a newer mailvault", not as a check mismatch, and
 * a header of another format as not a mailvault dump. The same rule the TypeScript reader follows.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDirSync } from '../../helpers/temp.js';

const hasPython = spawnSync('python3', ['--version'], { stdio: 'ignore' }).status === 0;
const pyTest = hasPython ? test : test.skip;
const golden = 'test/fixtures/dumps/v4-basic.mvd';

/** The golden dump with `from` replaced by `to` (same length) once, in the header record. */
function patched(from: string, to: string): Buffer {
  const dump = readFileSync(golden);
  const at = dump.indexOf(from);
  if (at < 0 || at > 1024 || from.length !== to.length) throw new Error(`cannot patch ${from}`);
  const copy = Buffer.from(dump);
  copy.write(to, at, 'latin1');
  return copy;
}

function readDumpPy(dump: Buffer, dir: string): { status: number | null; stderr: string } {
  const file = join(dir, 'd.mvd');
  writeFileSync(file, dump);
  return spawnSync('python3', ['formats/examples/read_dump.py', file], { encoding: 'utf8' });
}

pyTest('read_dump.py reports a newer version from the header before its check', (t) => {
  const dir = tempDirSync(t, 'mailvault-pyhdr-');
  t.is(readDumpPy(readFileSync(golden), dir).status, 0);
  const r = readDumpPy(patched('"version":4', '"version":5'), dir);
  t.is(r.status, 65);
  t.regex(r.stderr, /written by a newer mailvault \(format 5\)/);
});

pyTest('read_dump.py rejects a header of another format as not a mailvault dump', (t) => {
  const dir = tempDirSync(t, 'mailvault-pyhdr-');
  const r = readDumpPy(patched('"format":"mailvault-dump"', '"format":"mailvault-dumq"'), dir);
  t.is(r.status, 65);
  t.regex(r.stderr, /not a mailvault dump/);
});

pyTest('read_dump.py: a missing file is exit 66 with one line naming it, a wrong command line 64 (formats/README.md codes)', (t) => {
  const missing = spawnSync('python3', ['formats/examples/read_dump.py', '/nonexistent/d.mvd'], { encoding: 'utf8' });
  t.is(missing.status, 66);
  t.is(missing.stderr, 'read_dump.py: /nonexistent/d.mvd: no such file (give an uncompressed dump file)\n');
  t.is(spawnSync('python3', ['formats/examples/read_dump.py'], { encoding: 'utf8' }).status, 64);
  t.is(spawnSync('python3', ['formats/examples/read_dump.py', golden, '--extrakt', '/tmp'], { encoding: 'utf8' }).status, 64);
});
