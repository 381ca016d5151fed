// Keyword identity as Dovecot has it: ASCII letters fold, nothing else does (strcasecmp in the C
// locale, mail-index.c and maildir-keywords.c hash keywords with strcase_hash).
import test from 'ava';
import { keywordKey, normalizeKeywords, splitFlags } from '../../../src/storage/flags.js';

test('keywordKey folds ASCII letters only', (t) => {
  t.is(keywordKey('$Forwarded'), '$forwarded');
  t.is(keywordKey('already-lower'), 'already-lower');
  t.is(keywordKey('ÄÖÜ-Tag'), 'ÄÖÜ-tag');
  t.not(keywordKey('Ä'), keywordKey('ä'), 'two keywords for Dovecot');
  t.is(keywordKey('İ'), 'İ', 'no Unicode special casing either');
});

test('normalizeKeywords collapses ASCII case variants (first seen wins), keeps non-ASCII ones apart', (t) => {
  t.deepEqual(normalizeKeywords(['Foo', 'foo', 'FOO', 'bar']), ['Foo', 'bar']);
  t.deepEqual(normalizeKeywords(['ä', 'Ä', 'straße', 'STRASSE']), ['STRASSE', 'straße', 'Ä', 'ä']);
  t.deepEqual(splitFlags(['\\Seen', '\\Recent', 'Ärger', 'ärger']), { flags: ['\\Seen'], keywords: ['Ärger', 'ärger'] });
});
