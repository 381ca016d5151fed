// readUidlistForCommit parses only what was appended since its last read of the same file, and reads
// the whole file again when Dovecot replaced it (new inode), when it shrank, or when it does not end
// with a newline.
import test from 'ava';
import { renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readUidlistForCommit, parseUidlist } from '../../../../src/storage/maildir/uidlist.js';
import { tempDirSync } from '../../../helpers/temp.js';

const header = '3 V1700000000 N1 G0123456789abcdef0123456789abcdef\n';
const rec = (uid: number): string => `${uid} :1700000${uid}.M1P1.host,S=10,W=11\n`;

test('appends are parsed incrementally and give the same result as a full parse', (t) => {
  const dir = tempDirSync(t, 'mv-uidl-');
  const file = path.join(dir, 'dovecot-uidlist');
  writeFileSync(file, header + rec(1) + rec(2));
  t.deepEqual(readUidlistForCommit(file)!.records.map((r) => r.uid), [1, 2]);
  writeFileSync(file, rec(5) + rec(7), { flag: 'a' });
  const got = readUidlistForCommit(file)!;
  t.deepEqual(got.records.map((r) => r.uid), [1, 2, 5, 7]);
  t.is(got.nextUid, 8);
  t.deepEqual(got, parseUidlist(header + rec(1) + rec(2) + rec(5) + rec(7), file));
});

test('a file replaced by rename (what Dovecot does when it rewrites) is read whole', (t) => {
  const dir = tempDirSync(t, 'mv-uidl-');
  const file = path.join(dir, 'dovecot-uidlist');
  writeFileSync(file, header + rec(1) + rec(2) + rec(3));
  t.is(readUidlistForCommit(file)!.records.length, 3);
  writeFileSync(`${file}.tmp`, '3 V1700000000 N9 G0123456789abcdef0123456789abcdef\n' + rec(3));
  renameSync(`${file}.tmp`, file);
  const got = readUidlistForCommit(file)!;
  t.deepEqual(got.records.map((r) => r.uid), [3]);
  t.is(got.nextUid, 9);
});

test('a partial last line is not cached; a corrupt append is an error', (t) => {
  const dir = tempDirSync(t, 'mv-uidl-');
  const file = path.join(dir, 'dovecot-uidlist');
  writeFileSync(file, header + rec(1));
  readUidlistForCommit(file);
  writeFileSync(file, '2 :partial', { flag: 'a' });
  t.deepEqual(readUidlistForCommit(file)!.records.map((r) => r.uid), [1, 2]);
  writeFileSync(file, '\n1 :out-of-order\n', { flag: 'a' });
  t.throws(() => readUidlistForCommit(file), { message: /not ordered/ });
});
