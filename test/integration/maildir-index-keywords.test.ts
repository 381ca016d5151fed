/**
 * Keywords Dovecot keeps only in a Maildir mailbox's index: a file name holds 26 keyword letters, and a
 * keyword that gets none (the 27th and later) lives only in dovecot.index and its log, yet IMAP serves
 * it like any other. A backup must carry them (it once kept the first 26 and said nothing), and an
 * incremental must see a change of one although no file is renamed (only the index log changes).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { parseLocation } from '../../src/storage/location.js';
import { openMaildirStore } from '../../src/storage/maildir/index.js';
import { runCli, writeUsersFile } from '../helpers/cli.js';
import { requireDovecot, dovecotForFile, type DovecotInstance } from '../helpers/dovecot.js';
import { fingerprintUser, type MessageFingerprint } from '../helpers/fingerprint.js';
import { appendMessage, connectImap, storeFlags } from '../helpers/populate.js';

const message = (i: number): Buffer => Buffer.from(`From: a@example.org\r\nSubject: keywords ${i}\r\nMessage-ID: <kw.${i}@example.org>\r\n\r\nbody ${i}\r\n`);
const manyKeywords = Array.from({ length: 30 }, (_, i) => `kw${String(i).padStart(2, '0')}`);

/** Per UID: flags, keywords and body hash, as IMAP serves them. */
const view = (messages: readonly MessageFingerprint[]): Record<number, string> => Object.fromEntries(messages.map((m) => [m.uid, `${m.flags.join(',')} | ${[...m.keywords].sort().join(',')} | ${m.sha256}`]));

if (requireDovecot(test)) {
  let dv!: DovecotInstance;
  dovecotForFile(test, (started) => (dv = started));

  test('keywords beyond the 26 file-name letters are backed up, and a change of one is in the next incremental', async (t) => {
    const work = await mkdtemp(path.join(os.tmpdir(), 'mv-idxkw-'));
    t.teardown(() => rm(work, { recursive: true, force: true }));
    const user = await dv.addUser(`ikw${Date.now() % 100000}`, 'maildir');
    const client = await connectImap(dv, user);
    await appendMessage(client, 'INBOX', message(1), { flags: ['\\Seen', ...manyKeywords, '$Forwarded'] });
    await appendMessage(client, 'INBOX', message(2), { flags: ['kw05', 'kw28'] });
    await appendMessage(client, 'INBOX', message(3));
    // A read-write SELECT takes \Recent: Dovecot moves the files from new/ to cur/ now, not later.
    await client.mailboxOpen('INBOX');
    await client.logout();
    const live = (await fingerprintUser(dv, user.name)).mailboxes.find((b) => b.name === 'INBOX')!.messages;
    t.is(live.find((m) => m.uid === 1)!.keywords.length, 31, 'Dovecot serves all 31 keywords of message 1');

    const usersFile = await writeUsersFile(work, [user]);
    const state = path.join(work, 'state.json');
    // Past the 2 s in which a change gives no change token, so that the full dump records one.
    await new Promise((r) => setTimeout(r, 2200));
    const full = await runCli(['backup', '--users-file', usersFile, '--user', user.name, '--state-file', state, '-o', path.join(work, 'full.mvd')]);
    t.is(full.code, 0, full.stderr);

    // Changes of keywords without a letter: no file is renamed or moved, only the index changes.
    const again = await connectImap(dv, user);
    await storeFlags(again, 'INBOX', [1], { remove: ['kw29'] });
    await storeFlags(again, 'INBOX', [2], { add: ['kw27'] });
    await again.logout();
    const changed = (await fingerprintUser(dv, user.name)).mailboxes.find((b) => b.name === 'INBOX')!.messages;
    await new Promise((r) => setTimeout(r, 2200));
    const inc = await runCli(['backup', '--users-file', usersFile, '--user', user.name, '--since', `@${state}`, '--state-file', state, '-o', path.join(work, 'inc.mvd')]);
    t.is(inc.code, 0, inc.stderr);

    // Restored through IMAP (a Maildir file name could not hold them) into a fresh user: what the
    // full dump held, then what full + incremental hold.
    const imap = ['--imap', `imap://127.0.0.1:${dv.imapPort}`, '--master-user', dv.masterUser];
    const env = { MAILVAULT_IMAP_PASSWORD: dv.masterPassword };
    for (const [dumps, want, label] of [
      [['full.mvd'], live, 'full'],
      [['full.mvd', 'inc.mvd'], changed, 'full + incremental'],
    ] as const) {
      const target = await dv.addUser(`ikr${label.length}${Date.now() % 100000}`, 'sdbox');
      const r = await runCli(['restore', ...dumps.map((d) => path.join(work, d)), ...imap, '--user', user.name, '--to-user', target.name], { env });
      t.is(r.code, 0, r.stderr);
      const got = (await fingerprintUser(dv, target.name)).mailboxes.find((b) => b.name === 'INBOX')!.messages;
      t.deepEqual(view(got), view(want), label);
    }

    // Into a Maildir location: every message comes back, with the keywords that get one of the 26
    // letters; the restore names the others and exits 3 (not all of the state could be restored).
    const location = `maildir:${path.join(work, 'restored')}/%u/Maildir`;
    // A rerun (after a crash, a full disk) finds the messages there and says the same.
    for (const run of [1, 2]) {
      const r = await runCli(['restore', path.join(work, 'full.mvd'), '--location', location]);
      t.is(r.code, 3, r.stderr);
      t.regex(r.stderr, new RegExp(`warning: ${user.name} INBOX: 2 messages \\(UID 1, 2 in the dump\\) restored without 5 keywords kw25 kw26 kw27 kw28 kw29: .*--imap`), `run ${run}`);
    }
    const store = await openMaildirStore(parseLocation(location, { user: user.name }), user.name);
    const reader = await store.openMailbox('INBOX');
    const restored: Record<number, string[]> = {};
    for await (const m of reader.messages()) restored[m.uid] = [...m.keywords];
    await reader.close();
    await store.close();
    // Letters in save order, each message's keywords in byte order: "$Forwarded" sorts first.
    t.deepEqual(restored, { 1: ['$Forwarded', ...manyKeywords.slice(0, 25)], 2: ['kw05'], 3: [] });
  });
}
