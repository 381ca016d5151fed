import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { StorageCorruptError } from '../../../../src/core/errors.js';
import { formatUidlistHeader, formatUidlistRecord, parseUidlist, readUidlist } from '../../../../src/storage/maildir/uidlist.js';
import { tempDirSync } from '../../../helpers/temp.js';

const P = '/x/dovecot-uidlist';

test('v3: header, records, stale N', (t) => {
  const u = parseUidlist(
    '3 V1795873330 N1 G903bfd3779d90a6bab34000083ecc375\n' +
      '1 :1795873155.M338593P14473.vm,S=165,W=173\n' +
      '2 G29894d0432da0a6b9448000083ecc375 :1795873450.M426973P22123.vm,S=165,W=173\n' +
      '3 S120 W124 P0000abcd O7 :1800000000.ext1.host\n',
    P,
  )!;
  t.is(u.header.version, 3);
  t.is(u.header.uidValidity, 1795873330);
  t.is(u.header.headerNextUid, 1);
  t.is(u.header.guid, '903bfd3779d90a6bab34000083ecc375');
  t.is(u.nextUid, 4, 'max(N, last uid + 1)');
  t.deepEqual(u.records.map((r) => r.uid), [1, 2, 3]);
  t.deepEqual(u.records[1]!.ext, { G: '29894d0432da0a6b9448000083ecc375' });
  t.deepEqual(u.records[2]!.ext, { S: '120', W: '124', P: '0000abcd', O: '7' });
  t.is(u.records[2]!.base, '1800000000.ext1.host');
  t.true(u.endsWithNewline);
});

test('v3: N above the last uid wins; unknown header fields are kept', (t) => {
  const u = parseUidlist('3 V5 N22 Gffffffffffffffffffffffffffffffff Xfoo Pbar\n7 :a\n', P)!;
  t.is(u.nextUid, 22);
  t.deepEqual(u.header.extensions, ['Xfoo', 'Pbar']);
  t.is(formatUidlistHeader({ uidValidity: 5, nextUid: 22, guid: u.header.guid!, extensions: u.header.extensions }), '3 V5 N22 Gffffffffffffffffffffffffffffffff Xfoo Pbar\n');
});

test('v1 files are read', (t) => {
  const u = parseUidlist('1 1234 10\n3 1800000000.a.host:2,S\n9 1800000001.b.host\n', P)!;
  t.is(u.header.version, 1);
  t.is(u.header.uidValidity, 1234);
  t.is(u.header.guid, null);
  t.deepEqual(u.records.map((r) => [r.uid, r.base]), [[3, '1800000000.a.host'], [9, '1800000001.b.host']]);
  t.is(u.nextUid, 10);
});

test('duplicate base: the later record wins, as in Dovecot', (t) => {
  const u = parseUidlist('3 V1 N1 G00000000000000000000000000000001\n1 :a\n2 :b\n5 :a\n', P)!;
  t.deepEqual(u.records.map((r) => [r.uid, r.base]), [[2, 'b'], [5, 'a']]);
});

const corrupt: Array<[string, string, RegExp]> = [
  ['bad header', 'hello\n', /line 1: invalid version/],
  ['unsupported version', '2 V1 N1\n', /line 1: unsupported version 2/],
  ['header without V', '3 N5 G00000000000000000000000000000001\n', /line 1: broken header/],
  ['bad GUID', '3 V1 N1 Gxyz\n', /line 1: invalid mailbox GUID/],
  ['non-increasing UIDs', '3 V1 N1 G00000000000000000000000000000001\n1 :a\n3 :b\n2 :c\n', /line 4: UIDs not ordered \(2 after 3\)/],
  ['garbage record', '3 V1 N1 G00000000000000000000000000000001\n1 :a\nfoo bar\n', /line 3: invalid record/],
  ['uid 0', '3 V1 N1 G00000000000000000000000000000001\n0 :a\n', /line 2: invalid record/],
  ['missing file name', '3 V1 N1 G00000000000000000000000000000001\n1 G00 :\n', /line 2: record for UID 1 has no file name/],
  ['slash in name', '3 V1 N1 G00000000000000000000000000000001\n1 :a/b\n', /line 2: .*broken file name/],
  ['v1 uid above next', '1 1 3\n5 a\n', /line 2: UID 5 is not below/],
];
for (const [what, text, re] of corrupt) {
  test(`corrupt: ${what}`, (t) => {
    const e = t.throws(() => parseUidlist(text, P, { user: 'alice', mailbox: 'INBOX' }), { instanceOf: StorageCorruptError, message: re });
    t.true(e!.message.includes(P));
    t.regex(e!.hint ?? '', /doveadm force-resync -u alice 'INBOX'/);
  });
}

test('records round-trip through the formatter', (t) => {
  const line = formatUidlistRecord({ uid: 12, base: 'b,S=1,W=2', ext: { G: 'abc', P: 'x' } });
  t.is(line, '12 Gabc Px :b,S=1,W=2\n');
  const u = parseUidlist('3 V1 N1 G00000000000000000000000000000001\n' + line, P)!;
  t.deepEqual(u.records[0], { uid: 12, base: 'b,S=1,W=2', ext: { G: 'abc', P: 'x' } });
});

test('readUidlist: missing file, partial last line', async (t) => {
  const dir = tempDirSync(t, 'mv-uidlist-');
  const file = path.join(dir, 'dovecot-uidlist');
  t.is(await readUidlist(file), null);
  fs.writeFileSync(file, '3 V9 N1 G00000000000000000000000000000001\n1 :a\n2 :b\n3 :c-being-writ');
  const reader = (await readUidlist(file, {}, true))!;
  t.deepEqual(reader.records.map((r) => r.uid), [1, 2], 'a reader without the lock skips the unfinished line');
  t.is(reader.nextUid, 3);
  const locked = (await readUidlist(file, {}, false))!;
  t.deepEqual(locked.records.map((r) => r.uid), [1, 2, 3]);
  t.false(locked.endsWithNewline);
  fs.writeFileSync(file, '3 V9 N1 G00000000000000000000000000000001\n1 :a\n1 :b\n');
  await t.throwsAsync(readUidlist(file), { instanceOf: StorageCorruptError, message: /line 3/ });
});
