import test from 'ava';
import { ArchiveCorruptError, UsageError } from '../../../src/core/errors.js';
import { mailboxMember, messageMembers, parseMemberName, userMember } from '../../../src/archive/member-names.js';

test('segments are percent-encoded per the spec', (t) => {
  t.is(userMember('.hidden.user'), 'users/%2Ehidden.user/user.json');
  t.is(userMember('a/b\\c%d'), 'users/a%2Fb%5Cc%25d/user.json');
  t.is(mailboxMember('u', 'a.b/../c'), 'users/u/mailboxes/a%2Eb/%2E%2E/c/mailbox.json');
  t.is(mailboxMember('u', 'Tab\there\u007f'), 'users/u/mailboxes/Tab%09here%7F/mailbox.json');
  t.is(mailboxMember('u', 'Entwürfe/日本'), 'users/u/mailboxes/Entwürfe/日本/mailbox.json');
  t.deepEqual(messageMembers('u', 'mailbox.json', 12), { body: 'users/u/mailboxes/mailbox%2Ejson/12.eml', stub: 'users/u/mailboxes/mailbox%2Ejson/12.stub', record: 'users/u/mailboxes/mailbox%2Ejson/12.json' });
});

test('empty segments cannot be encoded', (t) => {
  t.throws(() => mailboxMember('u', 'a//b'), { instanceOf: UsageError, message: /empty part/ });
  t.throws(() => mailboxMember('u', '/a'), { instanceOf: UsageError });
  t.throws(() => userMember(''), { instanceOf: UsageError });
});

test('parse inverts build for awkward names', (t) => {
  for (const [user, mailbox] of [['.u', 'a.b/../c'], ['x%y', 'INBOX'], ['ü', '日本/%2E'], ['u', '1.eml']]) {
    const names = messageMembers(user!, mailbox!, 4294967295);
    t.deepEqual(parseMemberName(names.body, 0), { kind: 'body', user, mailbox, uid: 4294967295 });
    t.deepEqual(parseMemberName(mailboxMember(user!, mailbox!), 0), { kind: 'mailbox', user, mailbox });
    t.deepEqual(parseMemberName(userMember(user!), 0), { kind: 'user', user });
  }
});

test('non-canonical or foreign names are corrupt, with member and offset', (t) => {
  for (const name of ['users/u/mailboxes/a.b/mailbox.json', 'users/u/mailboxes/%2e/mailbox.json', 'users/.u/user.json', 'users/u/mailboxes/a/0.eml',
    'users/u/mailboxes/a/01.eml', 'users/u/mailboxes/a/4294967296.eml', 'users/u/x.json', 'blobs/ab/cd', 'mailvault/other', 'x', 'users/u/mailboxes/a/%ZZ/1.eml']) {
    const err = t.throws(() => parseMemberName(name, 4096), { instanceOf: ArchiveCorruptError }, name);
    t.true(err!.message.includes(`member "${name}" at offset 4096`), name);
  }
});

test('%2F in a mailbox segment is corrupt (a second spelling of a name with "/"); in the user segment it is a "/" of the user name', (t) => {
  for (const name of ['users/u/mailboxes/G%2Fx/mailbox.json', 'users/u/mailboxes/a/G%2Fx/1.eml']) {
    t.throws(() => parseMemberName(name, 0), { instanceOf: ArchiveCorruptError }, name);
  }
  t.deepEqual(parseMemberName(mailboxMember('u', 'G/x'), 0), { kind: 'mailbox', user: 'u', mailbox: 'G/x' });
  t.deepEqual(parseMemberName('users/a%2Fb/user.json', 0), { kind: 'user', user: 'a/b' });
});
