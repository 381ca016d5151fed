import test from 'ava';
import { baseName, filenameHost, filenameSize, formatInfo, generateBase, parseInfo } from '../../../../src/storage/maildir/filename.js';

test('base name is everything up to the first colon', (t) => {
  t.is(baseName('1795873155.M338593P14473.vm,S=165,W=173:2,FR'), '1795873155.M338593P14473.vm,S=165,W=173');
  t.is(baseName('1800000000.ext1.host'), '1800000000.ext1.host');
  t.is(baseName('a:b:2,S'), 'a');
});

test('S= and W= sizes', (t) => {
  const n = '1795873155.M338593P14473.vm,S=165,W=173:2,FR';
  t.is(filenameSize(n, 'S'), 165);
  t.is(filenameSize(n, 'W'), 173);
  t.is(filenameSize('1800000002.ext3.host,S=173:2,Sc', 'S'), 173);
  t.is(filenameSize('1800000002.ext3.host,S=173:2,Sc', 'W'), null);
  t.is(filenameSize('x,S=12x', 'S'), null);
  t.is(filenameSize('x,S=', 'S'), null);
});

test('flags and keyword letters from the info', (t) => {
  t.deepEqual(parseInfo('b,S=1:2,DFRST'), { flags: ['\\Answered', '\\Deleted', '\\Draft', '\\Flagged', '\\Seen'], keywordSlots: [] });
  t.deepEqual(parseInfo('b:2,Sac'), { flags: ['\\Seen'], keywordSlots: [0, 2] });
  t.deepEqual(parseInfo('b:2,S,ab'), { flags: ['\\Seen'], keywordSlots: [] }, 'a second flag set is not ours');
  t.deepEqual(parseInfo('b:2,SXz'), { flags: ['\\Seen'], keywordSlots: [25] }, 'unknown characters ignored');
  t.deepEqual(parseInfo('b'), { flags: [], keywordSlots: [] });
  t.deepEqual(parseInfo('b:1,S'), { flags: [], keywordSlots: [] }, 'only version 2 info has flags');
});

test('info is written in ASCII order', (t) => {
  t.is(formatInfo(['\\Seen', '\\Answered', '\\Flagged'], [1, 0]), ':2,FRSab');
  t.is(formatInfo([], []), '');
  t.is(formatInfo([], [3]), ':2,d');
});

test('generated bases are unique and escape the host name', (t) => {
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) seen.add(generateBase('host/a:b', 1_700_000_000_000));
  t.is(seen.size, 1000);
  const b = generateBase('mx1', Date.now());
  t.regex(b, new RegExp(`^\\d+\\.M\\d+P${process.pid}\\.mx1$`));
  t.is(filenameHost('a/b:c,d'), 'a\\057b\\072c\\054d');
});
