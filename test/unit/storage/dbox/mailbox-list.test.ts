import test from 'ava';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { listDboxMailboxes } from '../../../../src/storage/dbox/common/mailbox-list.js';
import { parseLocation } from '../../../../src/storage/location.js';
import { tempDir } from '../../../helpers/temp.js';

const listed = async (root: string, flags = ''): Promise<Array<[string, boolean, string]>> =>
  (await listDboxMailboxes(parseLocation(`sdbox:${root}${flags}`, { user: 'u' }))).map((m) => [m.name, m.selectable, m.storageParts.join('/')]);

test('dot-named folders, symlinked folders and a symlinked dbox-Mails are listed; files, dangling links and loops are not folders', async (t) => {
  const root = await tempDir(t, 'mv-dboxlist-');
  const boxes = path.join(root, 'mailboxes');
  for (const d of ['INBOX', '.Archive', 'Sub/.hidden']) await mkdir(path.join(boxes, d, 'dbox-Mails'), { recursive: true });
  await mkdir(path.join(root, 'elsewhere/Big/dbox-Mails'), { recursive: true });
  await symlink(path.join(root, 'elsewhere/Big'), path.join(boxes, 'Big'));
  await mkdir(path.join(root, 'elsewhere/mails'), { recursive: true });
  await mkdir(path.join(boxes, 'Linked'));
  await symlink(path.join(root, 'elsewhere/mails'), path.join(boxes, 'Linked/dbox-Mails'));
  await symlink(path.join(root, 'nowhere'), path.join(boxes, 'Dangling'));
  await symlink(boxes, path.join(boxes, 'Sub/Loop'));
  await writeFile(path.join(boxes, 'notes.txt'), 'not a folder');
  t.deepEqual(await listed(root), [
    ['.Archive', true, '.Archive'],
    ['Big', true, 'Big'],
    ['INBOX', true, 'INBOX'],
    ['Linked', true, 'Linked'],
    ['Sub', false, 'Sub'],
    ['Sub/.hidden', true, 'Sub/.hidden'],
  ]);
});

test('a directory name that is not valid mUTF-7 is listed under its stored spelling, as Dovecot shows it; the listing does not fail', async (t) => {
  const root = await tempDir(t, 'mv-dboxlist-');
  const boxes = path.join(root, 'mailboxes');
  for (const d of ['INBOX', 'R&D', 'Entw&APw-rfe', 'bad&name/Sub']) await mkdir(path.join(boxes, d, 'dbox-Mails'), { recursive: true });
  await writeFile(path.join(root, 'subscriptions'), 'V\t2\n\nR&D\nEntw&APw-rfe\n');
  t.deepEqual(await listed(root), [
    ['Entwürfe', true, 'Entw&APw-rfe'],
    ['INBOX', true, 'INBOX'],
    ['R&D', true, 'R&D'],
    ['bad&name', false, 'bad&name'],
    ['bad&name/Sub', true, 'bad&name/Sub'],
  ]);
  const { readDboxSubscriptions } = await import('../../../../src/storage/dbox/common/mailbox-list.js');
  t.deepEqual(await readDboxSubscriptions(parseLocation(`sdbox:${root}`, { user: 'u' })), ['Entwürfe', 'R&D']);
});

test('two directories with one name ("R&-D" and the invalid "R&D"): the one holding mail, then the one the name encodes to', async (t) => {
  const root = await tempDir(t, 'mv-dboxlist-');
  const boxes = path.join(root, 'mailboxes');
  await mkdir(path.join(boxes, 'R&D', 'dbox-Mails'), { recursive: true });
  await mkdir(path.join(boxes, 'R&-D', 'X', 'dbox-Mails'), { recursive: true });
  t.deepEqual(await listed(root), [
    ['R&D', true, 'R&D'],
    ['R&D/X', true, 'R&-D/X'],
  ]);
  // A \NoSelect level lost nothing: no report.
  t.deepEqual((await listDboxMailboxes(parseLocation(`sdbox:${root}`, { user: 'u' }))).map((m) => m.shadowed ?? null), [null, null]);
  await mkdir(path.join(boxes, 'R&-D', 'dbox-Mails'));
  t.deepEqual(await listed(root), [
    ['R&D', true, 'R&-D'],
    ['R&D/X', true, 'R&-D/X'],
  ]);
  // Both hold mail: the other directory is named, for the reader to report (not dropped unsaid).
  t.deepEqual((await listDboxMailboxes(parseLocation(`sdbox:${root}`, { user: 'u' }))).map((m) => m.shadowed ?? null), [[path.join(boxes, 'R&D', 'dbox-Mails')], null]);
});

test('a directory name that is not valid UTF-8 is listed as unreadable (not left out), and opening it says why', async (t) => {
  const root = await tempDir(t, 'mv-dboxlist-');
  const boxes = path.join(root, 'mailboxes');
  await mkdir(path.join(boxes, 'INBOX', 'dbox-Mails'), { recursive: true });
  const latin1 = Buffer.concat([Buffer.from(`${boxes}/`), Buffer.from('Entw\xfcrfe', 'latin1')]);
  await mkdir(latin1);
  await mkdir(Buffer.concat([latin1, Buffer.from('/dbox-Mails')]));
  for (const flags of ['', ':UTF-8']) {
    const entries = await listDboxMailboxes(parseLocation(`sdbox:${root}${flags}`, { user: 'u' }));
    t.deepEqual(entries.map((e) => [e.name, e.selectable, e.unreadable ?? null]), [
      ['Entw\ufffdrfe', true, `its directory name "Entw\\xfcrfe" in ${boxes} is not valid UTF-8`],
      ['INBOX', true, null],
    ]);
  }
  const { openSdboxStore } = await import('../../../../src/storage/dbox/single/index.js');
  const { StorageCorruptError } = await import('../../../../src/core/errors.js');
  const store = await openSdboxStore(parseLocation(`sdbox:${root}`, { user: 'u' }), 'u', { attachmentDir: null });
  t.deepEqual((await store.listMailboxes()).map((b) => b.name), ['Entw\ufffdrfe', 'INBOX']);
  t.deepEqual((await store.listMailboxEntries!()).map((b) => [b.name, b.changeToken]), [['Entw\ufffdrfe', null], ['INBOX', null]]);
  const err = await t.throwsAsync(store.openMailbox('Entw\ufffdrfe'), { instanceOf: StorageCorruptError, message: /cannot be read: its directory name "Entw\\xfcrfe" .* is not valid UTF-8/ });
  t.regex(err!.hint ?? '', /doveadm mailbox list -u u/);
});
