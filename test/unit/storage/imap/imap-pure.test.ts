// The IMAP driver's server-independent pieces: FETCH parsing, served form, names, URL, errors,
// password reading and NUL recovery.
import test from 'ava';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { AuthenticationError, InputNotFoundError, MailboxNameError, QuotaExceededError, ServerRejectedError, ServerUnavailableError, StorageNotFoundError, UnsupportedLocationError, UsageError } from '../../../../src/core/errors.js';
import { fetchItems, parseImapDateTime, parseMessageInfo, uidSet, type ImapNode } from '../../../../src/storage/imap/fetch-parser.js';
import { hashServedForm, sameUpToBase64Encoding, ServedFormHasher, toServedForm } from '../../../../src/storage/imap/served-form.js';
import { fromServerPath, toServerPath } from '../../../../src/storage/imap/mailbox-names.js';
import { parseImapUrl } from '../../../../src/storage/imap/connection.js';
import { mapImapError } from '../../../../src/storage/imap/error-mapping.js';
import { readPassword } from '../../../../src/storage/imap/index.js';
import { restoreNuls } from '../../../../src/storage/imap/reader.js';
import { expandUidSet, imapDateTime, imapKeyword } from '../../../../src/storage/imap/save.js';
import { tempDir } from '../../../helpers/temp.js';

const atom = (value: string): ImapNode => ({ type: 'ATOM', value });

test('parseImapDateTime applies the zone offset', (t) => {
  t.is(parseImapDateTime('13-Sep-2020 12:26:40 +0000'), 1_600_000_000);
  t.is(parseImapDateTime(' 3-Sep-2020 14:26:40 +0200'), Date.UTC(2020, 8, 3, 12, 26, 40) / 1000);
  t.is(parseImapDateTime('13-Sep-2020 07:26:40 -0500'), 1_600_000_000);
  t.is(parseImapDateTime('13-Foo-2020 12:26:40 +0000'), null);
  t.is(parseImapDateTime('garbage'), null);
});

test('parseMessageInfo reads a raw FETCH row', (t) => {
  const items = fetchItems([
    atom('FETCH'),
    [
      atom('UID'), atom('7'),
      atom('FLAGS'), [atom('\\Seen'), atom('\\Recent'), atom('Zeta'), atom('$Alpha'), atom('\\flagged')],
      atom('INTERNALDATE'), { type: 'STRING', value: '13-Sep-2020 12:26:40 +0000' },
      atom('RFC822.SIZE'), atom('1234'),
      atom('MODSEQ'), [atom('18446744073709551615')],
      atom('X-GUID'), atom('323761317fec0a6bee4b000083ecc375'),
      atom('SAVEDATE'), null,
    ],
  ]);
  t.deepEqual(parseMessageInfo(items), {
    uid: 7,
    guid: '323761317fec0a6bee4b000083ecc375',
    flags: ['\\Flagged', '\\Seen'],
    keywords: ['$Alpha', 'Zeta'],
    internalDate: 1_600_000_000,
    saveDate: null,
    size: 1234,
    modseq: '18446744073709551615',
  });
  const noDate = fetchItems([atom('FETCH'), [atom('UID'), atom('1'), atom('FLAGS'), [], atom('RFC822.SIZE'), atom('1')]]);
  t.throws(() => parseMessageInfo(noDate), { message: /INTERNALDATE/ });
});

test('uidSet compresses runs', (t) => {
  t.is(uidSet([1, 2, 3, 5, 7, 8]), '1:3,5,7:8');
  t.is(uidSet([4]), '4');
  t.is(uidSet([]), '');
});

test('served form: LF becomes CRLF, CRLF stays, in any chunking', async (t) => {
  const stored = Buffer.from('Subject: x\n\r\nline\r\nbare\rcr\n\n\0end');
  const served = Buffer.from('Subject: x\r\n\r\nline\r\nbare\rcr\r\n\r\n\0end');
  const want = createHash('sha256').update(served).digest('hex');
  // The header section: up to and including the first empty line of the served form.
  const header = createHash('sha256').update('Subject: x\r\n\r\n').digest('hex');
  const whole = await hashServedForm(Readable.from([stored]));
  t.deepEqual(whole, { sha256: want, headerSha256: header, servedSize: served.length });
  for (const size of [1, 2, 3]) {
    const h = new ServedFormHasher();
    for (let i = 0; i < stored.length; i += size) h.update(stored.subarray(i, i + size));
    t.is(h.digest(), want, `chunks of ${size}`);
    t.is(h.headerDigest(), header, `chunks of ${size}`);
    t.is(h.servedSize, served.length);
  }
  // already served form: unchanged
  t.deepEqual(await hashServedForm(Readable.from([served])), { sha256: want, headerSha256: header, servedSize: served.length });
  // A CR that breaks a match starts the next one; no empty line at all: all of it is header.
  const tricky = Buffer.from('A: 1\r\r\n\r\nB');
  t.is((await hashServedForm(Readable.from([tricky]))).headerSha256, createHash('sha256').update('A: 1\r\r\n\r\n').digest('hex'));
  const noEmptyLine = Buffer.from('A: 1\r\n\r\r\nB');
  t.is((await hashServedForm(Readable.from([noEmptyLine]))).headerSha256, createHash('sha256').update(noEmptyLine).digest('hex'));
  const noBody = Buffer.from('A: 1\nB: 2\n');
  t.is((await hashServedForm(Readable.from([noBody]))).headerSha256, createHash('sha256').update('A: 1\r\nB: 2\r\n').digest('hex'));
});

test('same up to base64 encoding: only base64 lines may differ, and only where they decode alike', (t) => {
  const msg = (last: string, text = 'see attached'): Buffer => toServedForm(Buffer.from(`Subject: x\n\n${text}\n--b\nContent-Transfer-Encoding: base64\n\nAAAA\n${last}\n--b--\n`));
  t.true(sameUpToBase64Encoding(msg('QR=='), msg('QQ==')), 'non-zero padding bits: the same byte');
  t.true(sameUpToBase64Encoding(msg('QUJD'), msg('QUJD')));
  t.false(sameUpToBase64Encoding(msg('Qg=='), msg('QQ==')), 'another byte');
  t.false(sameUpToBase64Encoding(msg('QQ==', 'see attachex'), msg('QQ==', 'see attached')), 'a text line');
  t.false(sameUpToBase64Encoding(msg('QQ=='), msg('QQ==A')), 'another length');
  t.false(sameUpToBase64Encoding(Buffer.from('QR==\r\n'), Buffer.from('QR=\r\n\r')), 'line ends elsewhere');
  t.true(sameUpToBase64Encoding(Buffer.from('QR=='), Buffer.from('QQ==')), 'a first line without line end');
  t.deepEqual(toServedForm(Buffer.from('a\nb\r\nc\n')), Buffer.from('a\r\nb\r\nc\r\n'));
});

test('mailbox names convert between "/" and the server separator', (t) => {
  t.is(fromServerPath('Archiv.2024.Q1', '.'), 'Archiv/2024/Q1');
  t.is(toServerPath('Archiv/2024/Q1', '.'), 'Archiv.2024.Q1');
  t.is(fromServerPath('inbox', '.'), 'INBOX');
  t.is(fromServerPath('Inbox/Sub', '/'), 'INBOX/Sub');
  t.is(fromServerPath('Bücher & Co', '/'), 'Bücher & Co');
  t.throws(() => fromServerPath('a/b.c', '.'), { instanceOf: UnsupportedLocationError });
  t.throws(() => toServerPath('a.b/c', '.'), { instanceOf: MailboxNameError, message: /has "\." inside a name level/ });
});

test('parseImapUrl', (t) => {
  t.like(parseImapUrl('imap://mail.example.org'), { host: 'mail.example.org', port: 143, secure: false });
  t.like(parseImapUrl('imaps://mail.example.org'), { host: 'mail.example.org', port: 993, secure: true });
  t.like(parseImapUrl('imap://[::1]:1143'), { host: '::1', port: 1143, secure: false });
  t.throws(() => parseImapUrl('http://x'), { instanceOf: UsageError });
  t.throws(() => parseImapUrl('imap://u:p@x'), { instanceOf: UsageError, message: /credentials/ });
  t.throws(() => parseImapUrl('not a url'), { instanceOf: UsageError });
});

test('imapflow errors map to typed errors', (t) => {
  const ctx = { what: 'append a message to', server: 'imap://h:143', user: 'alice', masterUser: 'backup', mailbox: 'INBOX' };
  const quota = mapImapError(Object.assign(new Error('Command failed'), { responseStatus: 'NO', serverResponseCode: 'OVERQUOTA', responseText: 'Quota exceeded' }), ctx);
  t.true(quota instanceof QuotaExceededError);
  const auth = mapImapError(Object.assign(new Error('Command failed'), { responseStatus: 'NO', authenticationFailed: true, serverResponseCode: 'AUTHENTICATIONFAILED' }), ctx);
  t.true(auth instanceof AuthenticationError);
  t.regex(auth.message, /"alice".*"backup"/);
  const refused = mapImapError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), ctx);
  t.true(refused instanceof ServerUnavailableError);
  t.regex(refused.message, /connection refused/);
  t.regex(refused.hint ?? '', /nothing is duplicated/);
  t.true(mapImapError(Object.assign(new Error('x'), { code: 'NoConnection' }), ctx) instanceof ServerUnavailableError);
  t.true(mapImapError(Object.assign(new Error('x'), { responseStatus: 'NO', serverResponseCode: 'NONEXISTENT' }), ctx) instanceof StorageNotFoundError);
  const other = mapImapError(Object.assign(new Error('Command failed'), { responseStatus: 'BAD', responseText: 'Invalid arguments' }), ctx);
  t.true(other instanceof ServerRejectedError);
  t.regex(other.message, /Invalid arguments/);
  // a raw exec() rejection carries the code only in the parsed response
  const raw = mapImapError(Object.assign(new Error('Command failed'), { responseStatus: 'NO', response: { attributes: [{ section: [{ value: 'OVERQUOTA' }] }, { type: 'TEXT', value: 'full' }] } }), ctx);
  t.true(raw instanceof QuotaExceededError);
});

test('restoreNuls takes NULs back only where BODY[] has 0x80 and BINARY[] has NUL', (t) => {
  const body = Buffer.from([0x41, 0x80, 0x42, 0xc3, 0x80]);
  t.deepEqual([...restoreNuls(body, Buffer.from([0x41, 0x00, 0x42, 0xc3, 0x80]))], [0x41, 0x00, 0x42, 0xc3, 0x80]);
  // BINARY decoded something else: keep BODY[]
  t.is(restoreNuls(body, Buffer.from([0x41, 0x00, 0x43, 0xc3, 0x80])), body);
  t.is(restoreNuls(body, Buffer.from([0x41, 0x00])), body);
  t.is(restoreNuls(body, Buffer.from(body)), body);
});

test('readPassword reads the first line of a file or an environment variable', async (t) => {
  const dir = await tempDir(t, 'mv-pw-');
  await writeFile(path.join(dir, 'pw'), 's3cr et\r\nignored\n');
  t.is(await readPassword({ file: path.join(dir, 'pw') }), 's3cr et');
  process.env.MV_TEST_IMAP_PW = 'fromenv';
  t.is(await readPassword({ env: 'MV_TEST_IMAP_PW' }), 'fromenv');
  await t.throwsAsync(readPassword({ env: 'MV_TEST_IMAP_PW_UNSET' }), { instanceOf: UsageError });
  await t.throwsAsync(readPassword({}), { instanceOf: UsageError });
  await t.throwsAsync(readPassword({ file: path.join(dir, 'missing') }), { instanceOf: InputNotFoundError });
  await writeFile(path.join(dir, 'empty'), '\n');
  await t.throwsAsync(readPassword({ file: path.join(dir, 'empty') }), { instanceOf: UsageError });
});

test('imapKeyword: an IMAP atom (RFC 3501 flag-keyword), nothing else', (t) => {
  for (const k of ['$Forwarded', 'Work', 'NonJunk', 'a[b', "it's", 'x+y~z', '!#&']) t.true(imapKeyword(k), k);
  for (const k of ['Ärger', 'a]b', 'a b', '(x)', '{1}', '50%', 'a*', 'say"', 'back\\slash', 'tab\t', 'del\x7f', '']) t.false(imapKeyword(k), JSON.stringify(k));
});

test('mapImapError: a login refused for now (NO [LIMIT]: too many sessions; UNAVAILABLE) is ServerUnavailableError (exit 75), not a wrong password', (t) => {
  const ctx = { what: 'log in to', server: 'imap://127.0.0.1:143', user: 'alice', masterUser: 'mv' };
  const limit = mapImapError({ authenticationFailed: true, serverResponseCode: 'LIMIT', responseText: 'Maximum number of connections from user+IP exceeded (mail_max_userip_connections=1)' }, ctx);
  t.true(limit instanceof ServerUnavailableError, limit.constructor.name);
  t.regex(limit.message, /refused the login for now \(LIMIT: Maximum number of connections/);
  t.regex(limit.hint ?? '', /mail_max_userip_connections/);
  t.true(mapImapError({ authenticationFailed: true, serverResponseCode: 'UNAVAILABLE' }, ctx) instanceof ServerUnavailableError);
  t.true(mapImapError({ authenticationFailed: true, responseText: 'Authentication failed.' }, ctx) instanceof AuthenticationError);
  t.true(mapImapError({ authenticationFailed: true, serverResponseCode: 'AUTHENTICATIONFAILED' }, ctx) instanceof AuthenticationError);
});

test('imapDateTime: RFC 3501 date-time in UTC, the day padded with a space (as imapflow writes it)', (t) => {
  t.is(imapDateTime(Date.UTC(2024, 0, 1, 0, 0, 0) / 1000), ' 1-Jan-2024 00:00:00 +0000');
  t.is(imapDateTime(Date.UTC(1999, 11, 31, 23, 59, 58) / 1000), '31-Dec-1999 23:59:58 +0000');
  t.is(imapDateTime(-86400), '31-Dec-1969 00:00:00 +0000');
});

test('expandUidSet: an APPENDUID uid-set as UIDs in order; anything else is null', (t) => {
  t.deepEqual(expandUidSet('7'), [7]);
  t.deepEqual(expandUidSet('4:7'), [4, 5, 6, 7]);
  t.deepEqual(expandUidSet('7:4'), [4, 5, 6, 7]);
  t.deepEqual(expandUidSet('4,6:8,10'), [4, 6, 7, 8, 10]);
  for (const bad of ['', '0', '1:0', '4:*', 'a', '1,,2', '1:2:3', '4294967296', '1:2000000', ' 1']) t.is(expandUidSet(bad), null, JSON.stringify(bad));
});
