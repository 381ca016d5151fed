import test from 'ava';
import { StorageCorruptError } from '../../../src/core/errors.js';
import { decodeMutf7, encodeMutf7, isValidMutf7, tryDecodeMutf7 } from '../../../src/storage/mutf7.js';

const pairs: Array<[string, string]> = [
  ['Entwürfe', 'Entw&APw-rfe'],
  ['R&D', 'R&-D'],
  ['&', '&-'],
  ['~peter/mail/台北/日本語', '~peter/mail/&U,BTFw-/&ZeVnLIqe-'], // RFC 3501 5.1.3
  ['Ελληνικά', '&A5UDuwO7A7cDvQO5A7oDrA-'],
  ['plain ASCII 1.2', 'plain ASCII 1.2'],
  ['😀 smile', '&2D3eAA- smile'],
  ['tab\there', 'tab&AAk-here'],
  ['', ''],
];

for (const [utf8, mutf7] of pairs) {
  test(`encode/decode ${JSON.stringify(utf8)}`, (t) => {
    t.is(encodeMutf7(utf8), mutf7);
    t.is(decodeMutf7(mutf7), utf8);
  });
}

test('round trip of many code points', (t) => {
  const s = Array.from({ length: 500 }, (_, i) => String.fromCodePoint(0x20 + i * 37)).join('');
  t.is(decodeMutf7(encodeMutf7(s)), s);
});

const invalid = [
  'Entwürfe', // raw 8-bit
  'a&b', // unterminated shift
  '&AGE-', // printable ASCII "a" inside a shift
  '&Jjo!-', // "!" is not in the alphabet
  '&2D0-', // unpaired high surrogate
  '&3gA-', // lone low surrogate
  '&APx-', // leftover bits not zero
  '&-&', // trailing lone "&"
  '&A-', // fewer than 16 bits
];
for (const s of invalid) {
  test(`rejects invalid ${JSON.stringify(s)}`, (t) => {
    t.is(tryDecodeMutf7(s), null);
    t.false(isValidMutf7(s));
    t.throws(() => decodeMutf7(s), { instanceOf: StorageCorruptError, message: /modified UTF-7/ });
  });
}
