import test from 'ava';
import { StorageCorruptError } from '../../../../src/core/errors.js';
import { parseHexTime } from '../../../../src/storage/dbox/common/dbox-file.js';

const at = (v: string | undefined): number | undefined => parseHexTime(v, '/x/u.1', 99, 'R');

test('R: Dovecot writes time_t with %lx, so dates before 1970 are 64-bit two\'s complement', (t) => {
  t.is(at('6b0ada32'), 0x6b0ada32);
  t.is(at('0'), 0);
  t.is(at('fffffffffffff1f0'), -3600);
  t.is(at('FFFFFFFFFFFFFFFF'), -1);
  t.is(at('fffffffff8d8a1c0'), -120_020_544, '1966-03-13');
  t.is(at(undefined), undefined);
});

test('R: not hex, or beyond what a date can be, is corruption at the metadata offset', (t) => {
  t.throws(() => at('-e10'), { instanceOf: StorageCorruptError, message: /offset 99: bad R metadata value "-e10"/ });
  t.throws(() => at('1ffffffffffffffff'), { instanceOf: StorageCorruptError });
  t.throws(() => at('8000000000000000'), { instanceOf: StorageCorruptError, message: /out of range for a date/ });
});
