/**
 * The order in which files without a uidlist record get UIDs: Dovecot's maildir_filename_sort_cmp
 * (maildir-filename.c) — by the time at the start of the name, then by the microseconds after "M" in
 * the uniqueness part where both names have them, then by the base names' bytes. The whole path with
 * a real Dovecot is test/integration/maildir-unlisted.test.ts.
 */
import test from 'ava';
import { compareMaildirFileNames } from '../../../../src/storage/maildir/assign-uids.js';

const sorted = (names: string[]): string[] => [...names].sort(compareMaildirFileNames);

test('by the time in the name first, numerically (not as text)', (t) => {
  t.deepEqual(sorted(['1000000000.M1P1.h', '999999999.M9P1.h', '1000000001.M0P1.h']), ['999999999.M9P1.h', '1000000000.M1P1.h', '1000000001.M0P1.h']);
});

test('same second: by microseconds after "M" in the uniqueness part, numerically', (t) => {
  t.deepEqual(sorted(['1700000000.M900P5.h', '1700000000.M80P9.h', '1700000000.M1000P1.h']), ['1700000000.M80P9.h', '1700000000.M900P5.h', '1700000000.M1000P1.h']);
  // Dovecot's own names: ".M<usecs>P<pid>"; Postfix's ".V<dev>I<ino>M<usecs>": the M is found inside.
  t.deepEqual(sorted(['1700000000.Vfd01I2M30.mx', '1700000000.Vfd01I9M7.mx']), ['1700000000.Vfd01I9M7.mx', '1700000000.Vfd01I2M30.mx']);
});

test('no microseconds in one of them, or equal: by the base names\' bytes, the info part ignored', (t) => {
  t.deepEqual(sorted(['1700000000.b.h', '1700000000.M5P1.h', '1700000000.a.h']), ['1700000000.M5P1.h', '1700000000.a.h', '1700000000.b.h']);
  t.is(compareMaildirFileNames('1700000000.M5P1.h:2,S', '1700000000.M5P1.h:2,RS'), 0);
  // Where one base ends: C's *a - *b with ":" or NUL standing for the end (maildir_filename_base_cmp).
  t.true(compareMaildirFileNames('1700000000.M5P1.h,S=10:2,S', '1700000000.M5P1.h:2,S') < 0, '"," (0x2C) before ":" (0x3A)');
  t.true(compareMaildirFileNames('1700000000.M5P1.h,S=10', '1700000000.M5P1.h') > 0, '"," after the end (NUL)');
  // Bytes over 0x7F are negative C chars: they sort before ASCII.
  t.true(compareMaildirFileNames('1700000000.x\u00e9', '1700000000.xa') < 0);
});

test('names without a leading time sort first (time 0), as in Dovecot', (t) => {
  t.deepEqual(sorted(['1700000000.M1P1.h', 'msg-from-migration']), ['msg-from-migration', '1700000000.M1P1.h']);
});
