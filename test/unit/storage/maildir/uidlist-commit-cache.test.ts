// readUidlistForCommit parses only what was appended since its last read of the same file, and reads
// the whole file again when Dovecot replaced it (new inode), when it shrank, or when it does not end
// with a newline.
import test from 'ava';
import { renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BaseHashes, readUidlistForCommit, parseUidlist } from '../../../../src/storage/maildir/uidlist.js';
import { tempDirSync } from '../../../helpers/temp.js';

const header = '3 V1700000000 N1 G0123456789abcdef0123456789abcdef\n';
const base = (uid: number): string => `1700000${uid}.M1P1.host,S=10,W=11`;
const rec = (uid: number): string => `${uid} :${base(uid)}\n`;

test('appends are parsed incrementally: next UID and listed names as a full parse gives them', (t) => {
  const dir = tempDirSync(t, 'mv-uidl-');
  const file = path.join(dir, 'dovecot-uidlist');
  writeFileSync(file, header + rec(1) + rec(2));
  const first = readUidlistForCommit(file)!;
  t.is(first.nextUid, 3);
  t.is(first.listedBase([base(9), base(2)]), base(2));
  writeFileSync(file, rec(5) + rec(7), { flag: 'a' });
  const got = readUidlistForCommit(file)!;
  t.is(got.nextUid, 8);
  t.is(got.nextUid, parseUidlist(header + rec(1) + rec(2) + rec(5) + rec(7), file)!.nextUid);
  t.is(got.listedBase([base(7)]), base(7), 'a name from the appended lines');
  t.is(got.listedBase([base(1)]), base(1), 'a name from the first read');
  t.is(got.listedBase([base(3), base(4)]), null);
  t.true(got.endsWithNewline);
});

test('a file replaced by rename (what Dovecot does when it rewrites) is read whole', (t) => {
  const dir = tempDirSync(t, 'mv-uidl-');
  const file = path.join(dir, 'dovecot-uidlist');
  writeFileSync(file, header + rec(1) + rec(2) + rec(3));
  t.is(readUidlistForCommit(file)!.nextUid, 4);
  writeFileSync(`${file}.tmp`, '3 V1700000000 N9 G0123456789abcdef0123456789abcdef\n' + rec(3));
  renameSync(`${file}.tmp`, file);
  const got = readUidlistForCommit(file)!;
  t.is(got.nextUid, 9);
  t.is(got.listedBase([base(1)]), null, 'the old file\'s names are forgotten');
  t.is(got.listedBase([base(3)]), base(3));
});

test('a file rewritten with the same inode number and a size no smaller is read whole, not from the old end', (t) => {
  // What a rename onto a reused inode number looks like to stat (ext4 and XFS reuse freed inodes):
  // simulated by rewriting the file in place.
  const dir = tempDirSync(t, 'mv-uidl-');
  const file = path.join(dir, 'dovecot-uidlist');
  writeFileSync(file, header + rec(1) + rec(2) + rec(3));
  t.is(readUidlistForCommit(file)!.nextUid, 4);
  const ino = statSync(file).ino;
  writeFileSync(file, '3 V1700000000 N40 G0123456789abcdef0123456789abcdef\n' + rec(30) + rec(31) + rec(32) + rec(33));
  t.is(statSync(file).ino, ino);
  const got = readUidlistForCommit(file)!;
  t.is(got.nextUid, 40);
  t.is(got.listedBase([base(1)]), null, 'the old content\'s names are forgotten');
  t.is(got.listedBase([base(33)]), base(33));
  // Same size, other content (a record changed in place): read whole too.
  const sameSize = header + rec(1) + rec(2) + rec(3);
  writeFileSync(file, sameSize);
  readUidlistForCommit(file);
  writeFileSync(file, sameSize.replace(rec(3), rec(4)));
  t.is(readUidlistForCommit(file)!.nextUid, 5);
});

test('a partial last line is not cached; a corrupt append is an error', (t) => {
  const dir = tempDirSync(t, 'mv-uidl-');
  const file = path.join(dir, 'dovecot-uidlist');
  writeFileSync(file, header + rec(1));
  readUidlistForCommit(file);
  writeFileSync(file, '2 :partial', { flag: 'a' });
  const partial = readUidlistForCommit(file)!;
  t.is(partial.nextUid, 3);
  t.false(partial.endsWithNewline);
  writeFileSync(file, '\n1 :out-of-order\n', { flag: 'a' });
  t.throws(() => readUidlistForCommit(file), { message: /not ordered/ });
});

test('a name whose hash collides with a listed one is not taken for listed (the hit is confirmed)', (t) => {
  // Two different names with the same 32-bit hash (birthday search: about 80k names).
  const seen = new Map<number, string>();
  let pair: [string, string] | null = null;
  for (let i = 0; pair === null; i++) {
    const name = `17000${i}.M1P1.host,S=10,W=11`;
    const h = BaseHashes.hash(name);
    const other = seen.get(h);
    if (other !== undefined) pair = [other, name];
    else seen.set(h, name);
  }
  const dir = tempDirSync(t, 'mv-uidl-');
  const file = path.join(dir, 'dovecot-uidlist');
  writeFileSync(file, header + `1 :${pair[0]}\n`);
  const view = readUidlistForCommit(file)!;
  t.is(view.listedBase([pair[1]]), null);
  t.is(view.listedBase([pair[1], pair[0]]), pair[0]);
});
