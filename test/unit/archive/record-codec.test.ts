import test from 'ava';
import { createHash } from 'node:crypto';
import { ArchiveCorruptError } from '../../../src/core/errors.js';
import { decodeRecord, encodeRecord } from '../../../src/archive/record-codec.js';

test('check = sha256 of the text with the 75-byte check field removed', (t) => {
  const text = encodeRecord({ type: 'user', user: 'ü', subscriptions: [] }).toString();
  const m = /,"check":"([0-9a-f]{64})"/.exec(text)!;
  t.is(m[0].length, 75);
  const without = text.replace(m[0], '');
  t.is(without, '{"type":"user","user":"ü","subscriptions":[]}\n');
  t.is(createHash('sha256').update(without).digest('hex'), m[1]);
  t.deepEqual(decodeRecord(Buffer.from(text), 'm', 0), { type: 'user', user: 'ü', subscriptions: [], check: m[1] });
});

test('padded records (the trailer) are exactly the requested size and check over the padding', (t) => {
  const buf = encodeRecord({ type: 'trailer', a: 1 }, 1024);
  t.is(buf.length, 1024);
  t.regex(buf.toString(), /\} +\n$/);
  t.is(decodeRecord(buf, 'mailvault/trailer.json', 2048)['a'], 1);
});

test('damaged records are ArchiveCorruptError naming member and offset', (t) => {
  const good = encodeRecord({ type: 'user', user: 'u', subscriptions: [] });
  const flipped = Buffer.from(good);
  flipped[10] ^= 1;
  t.throws(() => decodeRecord(flipped, 'users/u/user.json', 1536), { instanceOf: ArchiveCorruptError, message: /record "users\/u\/user.json" at offset 1536: check mismatch/ });
  t.throws(() => decodeRecord(Buffer.from('{"type":"user"}\n'), 'x', 1), { instanceOf: ArchiveCorruptError, message: /no "check" field/ });
  t.throws(() => decodeRecord(Buffer.concat([good, good]), 'x', 1), { instanceOf: ArchiveCorruptError, message: /single line|check/ });
  t.throws(() => decodeRecord(Buffer.from([0xff, ...good]), 'x', 1), { instanceOf: ArchiveCorruptError, message: /UTF-8/ });
});
