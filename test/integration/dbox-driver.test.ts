/**
 * The sdbox and mdbox drivers against a live Dovecot 2.3: a private instance is started, populated by
 * test/fixtures/stores/populate.sh (SIS attachments, >26 keywords, copies, expunge + purge, log
 * rotation), and every message the drivers read must equal `doveadm fetch` (bytes of `text`, uid, guid,
 * flags, keywords, modseq, date.received; date.saved for mdbox) and every mailbox `doveadm mailbox status`.
 */
import test from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseLocation } from '../../src/storage/location.js';
import { openSdboxStore } from '../../src/storage/dbox/single/index.js';
import { openMdboxStore } from '../../src/storage/dbox/multi/index.js';
import { STORES } from '../unit/storage/dbox/fixture-copy.js';
import { assertStoreMatches, type ExpectedStore } from '../unit/storage/dbox/store-expectations.js';

const run = promisify(execFile);

function why(): string | null {
  try {
    execFileSync('dovecot', ['--version'], { stdio: 'ignore' });
    execFileSync('sh', ['-c', 'command -v doveadm'], { stdio: 'ignore' });
    execFileSync('python3', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'dovecot, doveadm or python3 is not installed';
  }
  if (process.getuid?.() !== 0) return 'the private Dovecot instance needs root (mail files belong to a separate uid)';
  return null;
}

const skipReason = why();
let instance: string | null = null;
let messagesDir: string | null = null;

if (skipReason !== null) {
  if (process.env['CI'] === 'true') {
    test('dbox driver integration', (t) => t.fail(`cannot run under CI: ${skipReason}`));
  } else {
    test.skip(`dbox driver integration (skipped: ${skipReason})`, () => {});
  }
} else {
  test.before(async () => {
    const { stdout } = await run(path.join(STORES, 'dovecot-instance.sh'), ['start']);
    instance = stdout.trim().split('\n').pop()!;
    messagesDir = await mkdtemp(path.join(os.tmpdir(), 'mv-msgs-'));
    await run('python3', [path.join(STORES, 'gen-messages.py'), messagesDir]);
    await run(path.join(STORES, 'populate.sh'), [instance, messagesDir], { timeout: 60_000 });
  });

  test.after.always(async () => {
    if (instance) {
      await run(path.join(STORES, 'dovecot-instance.sh'), ['stop', instance]).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300));
      await rm(instance, { recursive: true, force: true });
    }
    if (messagesDir) await rm(messagesDir, { recursive: true, force: true });
  });

  const total = (e: ExpectedStore): number => Object.values(e.mailboxes).reduce((a, b) => a + b.messages.length, 0);

  const capture = async (user: string): Promise<ExpectedStore> => {
    const { stdout } = await run('python3', [path.join(STORES, 'capture-expected.py'), path.join(instance!, 'dovecot.conf'), user], { maxBuffer: 64 * 1024 * 1024 });
    await writeFile(path.join(instance!, `${user}.json`), stdout);
    return JSON.parse(stdout) as ExpectedStore;
  };

  test.serial('sdbox: every message equals doveadm fetch', async (t) => {
    const expected = await capture('carol');
    const loc = parseLocation('sdbox:~/sdbox', { user: 'carol', home: path.join(instance!, 'mail/carol') });
    const store = await openSdboxStore(loc, 'carol', { attachmentDir: path.join(instance!, 'att') });
    const n = await assertStoreMatches(t, store, expected, { saveDate: false });
    t.is(n, total(expected));
  t.true(n >= 15);
  });

  test.serial('mdbox: every message equals doveadm fetch, save dates included', async (t) => {
    const expected = await capture('dave');
    const loc = parseLocation('mdbox:~/mdbox', { user: 'dave', home: path.join(instance!, 'mail/dave') });
    const store = await openMdboxStore(loc, 'dave', { attachmentDir: path.join(instance!, 'att') });
    const n = await assertStoreMatches(t, store, expected, { saveDate: true });
    t.is(n, total(expected));
  t.true(n >= 14);
  });
}
