import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import { sampleUsers, writeSample } from './sample-dump.js';
import { makeTempDirSync, removeTempDir } from '../../helpers/temp.js';

const has = (cmd: string, arg: string): boolean => spawnSync(cmd, [arg], { stdio: 'ignore' }).status === 0;
const hasTar = has('tar', '--version');
const hasPython = has('python3', '--version');
const dir = makeTempDirSync('mailvault-interop-');
test.after.always(() => removeTempDir(dir));
const messages = sampleUsers().flatMap((u) => u.mailboxes.flatMap((m) => m.messages));

(hasTar ? test : test.skip)('tar tvf lists a dump and tar xf yields the .eml bytes unchanged', async (t) => {
  const path = join(dir, 'a.mvd');
  writeFileSync(path, await writeSample());
  const listing = execFileSync('tar', ['tvf', path], { encoding: 'utf8' });
  t.regex(listing, /^-rw-r--r-- 0\/0 .* mailvault\/header\.json$/m);
  t.regex(listing, /users\/alice@example\.org\/mailboxes\/Töpfe\/a%2Eb c\/%25x\/2\.eml$/m);
  t.regex(listing, /mailvault\/trailer\.json\n$/);
  const out = mkdtempSync(join(dir, 'x-'));
  execFileSync('tar', ['xf', path, '-C', out]);
  const root = join(out, 'users/alice@example.org/mailboxes');
  t.true(readFileSync(join(root, 'INBOX/7.eml')).equals(messages[1]!.body));
  t.true(readFileSync(join(root, 'Töpfe/a%2Eb c/%25x/2.eml')).equals(messages[4]!.body));
});

test('tar-stream (an independent tar reader) sees the same members and bytes', async (t) => {
  const bytes = await writeSample();
  const ex = extract();
  Readable.from([bytes]).pipe(ex);
  const names: string[] = [];
  let body7: Buffer | null = null;
  for await (const entry of ex) {
    names.push(entry.header.name);
    const parts: Buffer[] = [];
    for await (const c of entry) parts.push(c as Buffer);
    if (entry.header.name.endsWith('INBOX/7.eml')) body7 = Buffer.concat(parts);
  }
  t.is(names[0], 'mailvault/header.json');
  t.is(names.at(-1), 'mailvault/trailer.json');
  t.true(names.includes('users/alice@example.org/mailboxes/Töpfe/a%2Eb c/%25x/2.json'));
  t.true(body7!.equals(messages[1]!.body));
});

(hasPython ? test : test.skip)('formats/examples/read_dump.py (written from the spec) verifies a dump', async (t) => {
  const path = join(dir, 'py.mvd');
  writeFileSync(path, await writeSample());
  const r = spawnSync('python3', ['formats/examples/read_dump.py', path], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^OK \{"blobs": 0, "mailboxes": 4, "messageBytes": 1409, "messages": 5, "users": 2\}$/m);
  // and rejects a damaged one
  const bytes = readFileSync(path);
  bytes[bytes.indexOf('AAAAAAAA')] = 0x42;
  writeFileSync(path, bytes);
  const bad = spawnSync('python3', ['formats/examples/read_dump.py', path], { encoding: 'utf8' });
  t.is(bad.status, 65);
  t.regex(bad.stderr, /7\.eml: body does not match its record/);
});
