import test from 'ava';
import { UnsupportedLocationError } from '../../../src/core/errors.js';
import { formatLocation, parseLocation } from '../../../src/storage/location.js';

const ctx = { user: 'alice', home: '/home/alice' };

test('options mailvault implements are parsed', (t) => {
  const m = parseLocation('maildir:~/Maildir:LAYOUT=fs:UTF-8:INBOX=~/inbox:INDEX=/idx/%u:CONTROL=/ctl/%u', ctx);
  t.like(m, { driver: 'maildir', root: '/home/alice/Maildir', layout: 'fs', utf8: true, inbox: '/home/alice/inbox', index: '/idx/alice', control: '/ctl/alice', dirname: null });
  t.is(parseLocation('maildir:/m:LAYOUT=FS', ctx).layout, 'fs', 'a layout is a list driver name, looked up without case (strcasecmp)');
  t.is(parseLocation('maildir:/m:INDEX=MEMORY', ctx).index, 'MEMORY');
  t.throws(() => parseLocation('maildir:/m:INDEX=memory', ctx), { instanceOf: UnsupportedLocationError, message: /case-sensitively/ }, 'for Dovecot a relative directory, not MEMORY');
  t.like(parseLocation('sdbox:/s:DIRNAME=Mails:ALT=/alt/%u:LAYOUT=fs', ctx), { driver: 'sdbox', dirname: 'Mails', alt: '/alt/alice', layout: 'fs' });
  t.is(parseLocation('sdbox:/s:DIRNAME=', ctx).dirname, null, 'an empty DIRNAME is the default dbox-Mails, as in dbox_storage_get_list_settings');
  t.like(parseLocation('mdbox:/s:MAILBOXDIR=', ctx), { driver: 'mdbox' }, 'an empty MAILBOXDIR is the default');
  t.is(formatLocation(parseLocation('mdbox:/m:ALTNOCHECK:INDEXCACHE=/c:LISTINDEX=x:VOLATILEDIR=/tmp/%2.256Nu', ctx)), 'mdbox:/m', 'options that steer files mailvault does not use are accepted, not expanded');
});

test('unknown and misspelled keys are refused, as Dovecot refuses them ("Unknown setting"), with the spelling meant', (t) => {
  for (const [opt, meant] of [['layout=fs', 'LAYOUT'], ['utf-8', 'UTF-8'], ['UTF8', 'UTF-8'], ['Index=/x', 'INDEX'], ['inbox=/x', 'INBOX'], ['dirname=x', 'DIRNAME']] as const) {
    const e = t.throws(() => parseLocation(`maildir:/m:${opt}`, ctx), { instanceOf: UnsupportedLocationError }, opt);
    t.regex(e?.message ?? '', /unknown option ".*" \(Dovecot rejects it too/, opt);
    t.regex(e?.hint ?? '', new RegExp(`case-sensitive: write "${meant}"`), opt);
  }
  const e = t.throws(() => parseLocation('sdbox:/s:FOO=1', ctx), { instanceOf: UnsupportedLocationError });
  t.regex(e?.message ?? '', /unknown option "FOO"/);
  t.regex(e?.hint ?? '', /known options: UTF-8, LAYOUT/);
  t.throws(() => parseLocation('maildir:/m:UTF-8=yes', ctx), { instanceOf: UnsupportedLocationError, message: /unknown option "UTF-8"/ }, 'UTF-8 is a flag, the whole part');
});

test('Dovecot options mailvault does not implement are refused, naming the key and what to do', (t) => {
  const cases: Array<[string, RegExp]> = [
    ['maildir:/m:LAYOUT=fs:DIRNAME=mAildir', /DIRNAME=.*subdirectory/],
    ['maildir:/m:MAILBOXDIR=boxes', /MAILBOXDIR=/],
    ['sdbox:/s:MAILBOXDIR=boxes', /MAILBOXDIR=/],
    ['mdbox:/m:FULLDIRNAME=Mails', /FULLDIRNAME=/],
    ['maildir:/m:SUBSCRIPTIONS=subs', /SUBSCRIPTIONS=/],
    ['maildir:/m:INDEXPVT=/p', /INDEXPVT=/],
    ['maildir:/m:BROKENCHAR=%', /BROKENCHAR=/],
    ['maildir:/m:INDEX=/i:ITERINDEX', /ITERINDEX=/],
    ['maildir:/m:LAYOUT=fs:NO-NOSELECT', /NO-NOSELECT=/],
    ['maildir:/m:NO-FS-VALIDATION', /NO-FS-VALIDATION=/],
    ['sdbox:/s:LAYOUT=maildir++', /LAYOUT=maildir\+\+ is not supported for sdbox/],
    ['mdbox:/m:LAYOUT=index', /LAYOUT=index is not supported/],
    ['maildir:/m:LAYOUT=index', /LAYOUT=index is not supported/],
    ['maildir:/m:LAYOUT=imapdir', /LAYOUT=imapdir is not supported/],
  ];
  for (const [loc, message] of cases) {
    const e = t.throws(() => parseLocation(loc, ctx), { instanceOf: UnsupportedLocationError, message }, loc);
    t.regex(e?.message ?? '', /mailvault does not implement|is not supported/, loc);
    t.regex(e?.hint ?? '', /--imap/, loc);
  }
});
