import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { addSubscriptions, formatSubscriptionLine, parseSubscriptions, tabEscape, tabUnescape } from '../../../../src/storage/maildir/subscriptions.js';
import { tempDirSync } from '../../../helpers/temp.js';

test('v2 file as Dovecot writes it', (t) => {
  const f = parseSubscriptions('V\t2\n\nWork\nWork\tProjects\nEntw&APw-rfe\n', '.');
  t.is(f.version, 2);
  t.deepEqual(f.entries, [['Work'], ['Work', 'Projects'], ['Entw&APw-rfe']]);
});

test('escapes inside parts', (t) => {
  const raw = 'a\tb\x01c\rd\ne';
  const esc = tabEscape(raw);
  t.is(esc, 'a\x01tb\x011c\x01rd\x01ne');
  t.is(tabUnescape(esc), raw);
  t.is(tabUnescape('x\x010y'), 'x\0y');
  const f = parseSubscriptions(`V\t2\n\n${esc}\tchild\n`, '.');
  t.deepEqual(f.entries, [[raw, 'child']]);
  t.is(formatSubscriptionLine([raw, 'child'], 2, '.'), `${esc}\tchild`);
});

test('v1: one storage name per line, split at the list separator', (t) => {
  const f = parseSubscriptions('INBOX\nWork.Projects\n', '.');
  t.is(f.version, 1);
  t.deepEqual(f.entries, [['INBOX'], ['Work', 'Projects']]);
  t.deepEqual(parseSubscriptions('Work/Projects\n', '/').entries, [['Work', 'Projects']]);
});

test('v1: one trailing separator is dropped, as Dovecot does (mailbox_list_subscription_fill_one)', (t) => {
  t.deepEqual(parseSubscriptions('Work.\nWork.Projects\n', '.').entries, [['Work'], ['Work', 'Projects']]);
  t.deepEqual(parseSubscriptions('Work/\nA//\n', '/').entries, [['Work'], ['A', '']], 'only one separator');
  t.deepEqual(parseSubscriptions('V\t2\n\nWork\t\n', '.').entries, [['Work', '']], 'v2 entries are left alone');
});

test('addSubscriptions keeps the format and lines, adds no duplicates, leaves no lock', async (t) => {
  const dir = tempDirSync(t, 'mv-subs-');
  const file = path.join(dir, 'subscriptions');
  const opts = { listSep: '.', hostname: 'h', lockTimeoutMs: 1000, mode: 0o600, owner: null };
  await addSubscriptions(file, [['Work', 'Projects'], ['INBOX']], opts);
  t.is(fs.readFileSync(file, 'utf8'), 'V\t2\n\nWork\tProjects\nINBOX\n');
  await addSubscriptions(file, [['INBOX'], ['Sent']], opts);
  t.is(fs.readFileSync(file, 'utf8'), 'V\t2\n\nWork\tProjects\nINBOX\nSent\n');
  fs.writeFileSync(file, 'INBOX\n');
  await addSubscriptions(file, [['Work', 'Projects']], opts);
  t.is(fs.readFileSync(file, 'utf8'), 'INBOX\nWork.Projects\n', 'a v1 file stays v1');
  t.false(fs.existsSync(`${file}.lock`));
});
