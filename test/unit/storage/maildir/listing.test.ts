import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import test from 'ava';
import { StorageCorruptError } from '../../../../src/core/errors.js';
import { MaildirListing } from '../../../../src/storage/maildir/listing.js';
import { parseUidlist } from '../../../../src/storage/maildir/uidlist.js';
import { tempDirSync, type TempDirContext } from '../../../helpers/temp.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const HEADER = '3 V1764000000 N1 G0123456789abcdef0123456789abcdef\n';

function maildir(t: TempDirContext, files: Record<'new' | 'cur', string[]>, uidlist: string): string {
  const dir = tempDirSync(t, 'mv-listing-');
  for (const sub of ['new', 'cur', 'tmp'] as const) fs.mkdirSync(path.join(dir, sub));
  for (const sub of ['new', 'cur'] as const) for (const f of files[sub]) fs.writeFileSync(path.join(dir, sub, f), 'x');
  fs.writeFileSync(path.join(dir, 'dovecot-uidlist'), uidlist);
  return dir;
}

function load(dir: string): MaildirListing {
  return MaildirListing.load(path.join(dir, 'dovecot-uidlist'), dir, { user: 'u', mailbox: 'INBOX' });
}

function messages(l: MaildirListing): Array<[number, string, string]> {
  const out: Array<[number, string, string]> = [];
  for (let i = 0; i < l.recordCount; i++) if (l.hasFile(i)) out.push([l.uid(i), l.file(i).sub, l.file(i).name]);
  return out;
}

test('joins records with files by base name; files without a record and records without a file are not messages', (t) => {
  const dir = maildir(
    t,
    { new: ['3.c.host', '9.z.host'], cur: ['1.a.host,S=5:2,S', '2.b.host:2,RSa', '.hidden', ':odd'] },
    HEADER + '1 G11111111111111111111111111111111 :1.a.host,S=5\n2 :2.b.host\n3 :3.c.host\n4 :4.gone.host\n',
  );
  const l = load(dir);
  t.deepEqual(messages(l), [
    [1, 'cur', '1.a.host,S=5:2,S'],
    [2, 'cur', '2.b.host:2,RSa'],
    [3, 'new', '3.c.host'],
  ]);
  t.is(l.messageCount, 3);
  t.is(l.nextUid, 5);
  t.is(l.header?.guid, '0123456789abcdef0123456789abcdef');
  t.deepEqual(l.record(0), { uid: 1, base: '1.a.host,S=5', ext: { G: '11111111111111111111111111111111' } });
  t.is(l.indexOfUid(2), 1);
  t.is(l.indexOfUid(4), -1, 'a record without a file is no message');
  t.is(l.lowerBound(3), 2);
});

test('cur/ wins over new/, the later of two records with one base wins, a partial last line is left out', (t) => {
  const dir = maildir(t, { new: ['a'], cur: ['a:2,S', 'b:2,'] }, HEADER + '1 :a\n2 :b\n5 :a\n6 :c');
  const l = load(dir);
  t.deepEqual(messages(l), [
    [2, 'cur', 'b:2,'],
    [5, 'cur', 'a:2,S'],
  ]);
  t.is(l.nextUid, 6, 'the unfinished record for UID 6 is not read');
});

test('agrees with the whole-file parser on records, extensions and errors', (t) => {
  const text = HEADER + '1 S120 W124 P0000abcd :1.x:2,S\n7   Gffffffffffffffffffffffffffffffff   :7.y\n9 xlower Zup :9.z,S=3\n';
  const dir = maildir(t, { new: [], cur: ['1.x:2,S', '7.y', '9.z,S=3'] }, text);
  const l = load(dir);
  const whole = parseUidlist(text, 'p')!;
  t.deepEqual([0, 1, 2].map((i) => l.record(i)), whole.records);
  for (const bad of ['1 :a\n1 :b\n', 'foo bar\n', '1 :a/b\n', '1 G00 :\n', '99999999999 :a\n']) {
    const e = t.throws(() => MaildirListing.parse(Buffer.from(HEADER + bad), '/x/dovecot-uidlist', {}), { instanceOf: StorageCorruptError });
    t.throws(() => parseUidlist(HEADER + bad, '/x/dovecot-uidlist'), { message: e!.message });
  }
});

test('base names that are not ASCII are matched as UTF-8, by bytes, with ASCII ones beside them', (t) => {
  const dir = maildir(
    t,
    { new: ['3.café.host'], cur: ['1.plain.host:2,S', '2.Entwürfe-中文.host,S=5:2,F', '4.cafe\u0301.host:2,'] },
    HEADER + '1 :1.plain.host\n2 :2.Entwürfe-中文.host,S=5\n3 :3.café.host\n4 :4.café.host\n',
  );
  const l = load(dir);
  // UID 4's record is "café" with a precomposed é; its file has e + combining accent: other bytes.
  t.deepEqual(messages(l), [
    [1, 'cur', '1.plain.host:2,S'],
    [2, 'cur', '2.Entwürfe-中文.host,S=5:2,F'],
    [3, 'new', '3.café.host'],
  ]);
  t.deepEqual(l.record(1), { uid: 2, base: '2.Entwürfe-中文.host,S=5', ext: {} });
  t.is(l.base(2), '3.café.host');
});

test('a missing uidlist or missing directories give an empty listing', (t) => {
  const dir = tempDirSync(t, 'mv-listing-');
  const l = load(dir);
  t.is(l.recordCount, 0);
  t.is(l.messageCount, 0);
  t.is(l.nextUid, 1);
  t.is(l.header, null);
});

test('relocate: a renamed file is found under its new name; a vanished one stops being a message', (t) => {
  const dir = maildir(t, { new: [], cur: ['a:2,', 'b:2,'] }, HEADER + '1 :a\n2 :b\n');
  const l = load(dir);
  l.relocate(0, { sub: 'cur', name: 'a:2,FS' });
  l.relocate(1, null);
  t.deepEqual(messages(l), [[1, 'cur', 'a:2,FS']]);
  t.is(l.messageCount, 1);
});

test('holds per message a few typed-array slots, not objects: 200k records cost well under 100 bytes each', (t) => {
  // Built in a function, so that no string of it is alive when the measurement starts.
  const uidlist = (): Buffer => {
    const lines = [HEADER.trimEnd()];
    for (let i = 1; i <= 200_000; i++) lines.push(`${i} :${1_700_000_000 + i}.M${i}P${i}.host,S=1000,W=1020`);
    return Buffer.from(lines.join('\n') + '\n');
  };
  const data = uidlist();
  const used = (): number => {
    gc();
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const before = used();
  const l = MaildirListing.parse(data, 'p', {});
  const perRecord = (used() - before) / l.recordCount;
  t.is(l.recordCount, 200_000);
  t.is(l.record(199_999).uid, 200_000);
  // Columns and hash table: about 38 bytes per record (the uidlist text is the caller's here). An
  // object and two strings per record, as before, cost about 400.
  t.true(perRecord < 100, `${perRecord.toFixed(0)} bytes per record`);
  t.true(perRecord > 10, `${perRecord.toFixed(0)} bytes per record: the measurement sees the columns`);
});

test('a directory that changes while it is read is read again for the records still without a file', (t) => {
  // The file of UID 2 arrives in cur/ (as a rename by Dovecot would) right after cur/ was read: the
  // first pass misses it, cur/'s mtime moved, so the listing reads cur/ again and finds it.
  const dir = maildir(t, { new: [], cur: ['a:2,S'] }, HEADER + '1 :a\n2 :b\n');
  fs.writeFileSync(path.join(dir, 'tmp', 'b'), 'x');
  const passes: string[] = [];
  const l = MaildirListing.load(path.join(dir, 'dovecot-uidlist'), dir, {}, {
    afterDirectory(sub, attempt) {
      passes.push(`${sub}${attempt}`);
      if (sub === 'cur' && attempt === 0) fs.renameSync(path.join(dir, 'tmp', 'b'), path.join(dir, 'cur', 'b:2,F'));
    },
  });
  t.deepEqual(messages(l), [
    [1, 'cur', 'a:2,S'],
    [2, 'cur', 'b:2,F'],
  ]);
  t.deepEqual(passes, ['new0', 'cur0', 'new1', 'cur1'], 'one more pass, and no third: nothing changed during the second');
});
