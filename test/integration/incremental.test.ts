/**
 * Issue "Incremental backups", against a real Dovecot 2.3 (maildir, and sdbox with SIS):
 * - full dump; then through Dovecot: 50 deliveries, flags changed on 40 messages, 30 expunged, a folder
 *   renamed, one deleted, one created; an incremental; full + incremental restored into an empty Maildir
 *   -> the same fingerprint as the live store now (UIDs, UIDVALIDITY, GUIDs, flags, bytes, subscriptions);
 * - three incrementals in a row, restored with --at the second one's time -> the state after the second;
 * - the incremental of an unchanged store holds no message body;
 * - a chain with a gap is refused naming the missing dump, and nothing is restored.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { requireDovecot, startDovecot, type DovecotInstance, type DovecotUser } from '../helpers/dovecot.js';
import { assertSameUser, fingerprintUser, type UserFingerprint } from '../helpers/fingerprint.js';
import { connectImap, deliverLmtp, expungeUids, generateMessages, populateRealistic, storeFlags, appendMessage, generateMessage } from '../helpers/populate.js';
import { runCli, writeUsersFile } from '../helpers/cli.js';



const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

if (requireDovecot(test)) {
  let dv: DovecotInstance;
  let n = 0;
  test.before(async () => {
    dv = await startDovecot();
  });
  test.after.always(async () => {
    await dv?.stop();
  });

  async function backup(t: ExecutionContext, users: string, user: string, file: string, extra: string[] = []): Promise<string> {
    const r = await runCli(['backup', '--users-file', users, '--user', user, '-o', file, ...extra]);
    t.is(r.code, 0, r.stderr);
    return r.stderr;
  }

  async function restoreInto(t: ExecutionContext, dumps: string[], extra: string[] = []): Promise<{ target: DovecotUser; code: number; stderr: string }> {
    const target = await dv.addUser(`inc${n++}x${Date.now() % 100000}`, 'maildir');
    const r = await runCli(['restore', ...dumps, '--users-file', await writeUsersFile(dv.dir, [target]), '--to-user', target.name, ...extra]);
    return { target, code: r.code, stderr: r.stderr };
  }

  // Maildir has no modseq: without a base that recorded flag digests (a dump), an incremental's flag
  // table lists every older message of a changed mailbox; from a state file, only the messages of the
  // blocks of 128 UIDs whose flags changed. Either way the chain must restore to the live store.
  test('maildir: incrementals from a state file carry the flags of changed blocks only, and the chain restores to the live store', async (t) => {
    const src = await dv.addUser(`idig${Date.now() % 100000}`, 'maildir');
    await deliverLmtp(dv.lmtpSocket, src.name, [...generateMessages(801, 600)].map((m) => m.raw));
    const users = await writeUsersFile(dv.dir, [src]);
    const file = (name: string): string => path.join(dv.dir, `${src.name}-${name}.mvd`);
    const state = path.join(dv.dir, `${src.name}.state.json`);
    await backup(t, users, src.name, file('full'), ['--state-file', state]);
    const inbox = async (args: string[]): Promise<number> => {
      const r = await runCli(['backup', '--users-file', users, '--user', src.name, '--json', ...args]);
      t.is(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout.toString()) as { changes: { mailbox: string; flagEntries: number }[] }).changes.find((c) => c.mailbox === 'INBOX')!.flagEntries;
    };
    const change = async (flag: string, uids: number[], expunge: number[], deliver: number): Promise<void> => {
      const client = await connectImap(dv, src);
      try {
        await storeFlags(client, 'INBOX', uids, { add: [flag] });
        if (expunge.length > 0) await expungeUids(client, 'INBOX', expunge);
      } finally {
        await client.logout();
      }
      if (deliver > 0) await deliverLmtp(dv.lmtpSocket, src.name, [...generateMessages(802 + deliver, deliver)].map((m) => m.raw));
    };
    // Blocks 0 (UIDs 1-127), 2 (256-383) and 4 (512-600, which the new mail joins) change.
    await change('\\Flagged', [5, 300, 550], [301], 5);
    const fromDump = await inbox(['-o', file('dumpbase'), '--since', `@${file('full')}`]);
    t.is(fromDump, 599, 'from the dump: every older message still there');
    const first = await inbox(['-o', file('inc1'), '--since', `@${state}`, '--state-file', state]);
    t.true(first >= 3 && first <= 3 * 128, `from the state file: ${first} entries`);
    const live1 = await fingerprintUser(dv, src.name);
    // The next incremental compares with what the first one recorded (its new messages included).
    await change('\\Answered', [10, 603], [], 0);
    const second = await inbox(['-o', file('inc2'), '--since', `@${state}`, '--state-file', state]);
    t.true(second >= 2 && second <= 2 * 128, `second incremental: ${second} entries`);
    const live2 = await fingerprintUser(dv, src.name);
    for (const [chain, live, what] of [
      [['full', 'dumpbase'], live1, 'full + the incremental from the dump'],
      [['full', 'inc1'], live1, 'full + the first incremental from the state file'],
      [['full', 'inc1', 'inc2'], live2, 'full + both incrementals from the state file'],
    ] as const) {
      const r = await restoreInto(t, chain.map(file));
      t.is(r.code, 0, r.stderr);
      assertSameUser(t, await fingerprintUser(dv, r.target.name), live, what);
    }
  });

  for (const profile of ['maildir', 'sdbox'] as const) test(`${profile}${profile === 'sdbox' ? ' + SIS' : ''}: full + incremental after deliveries, flag changes, expunges, rename, delete, create = the live store`, async (t) => {
    const src = await dv.addUser(`isrc${profile[0]}${Date.now() % 100000}`, profile);
    await populateRealistic(dv, src, 700);
    const users = await writeUsersFile(dv.dir, [src]);
    const full = path.join(dv.dir, `${src.name}-full.mvd`);
    const state = path.join(dv.dir, `${src.name}.state.json`);
    await backup(t, users, src.name, full, ['--state-file', state, ...(profile === 'sdbox' ? ['--attachment-dir', dv.attachmentDir] : [])]);

    await deliverLmtp(dv.lmtpSocket, src.name, [...generateMessages(701, 50)].map((m) => m.raw));
    const client = await connectImap(dv, src);
    try {
      const lock = await client.getMailboxLock('INBOX');
      let uids: number[];
      try {
        uids = ((await client.search({ all: true }, { uid: true })) || []) as number[];
      } finally {
        lock.release();
      }
      t.true(uids.length >= 50, `INBOX has ${uids.length} messages`);
      await storeFlags(client, 'INBOX', uids.slice(0, 40), { add: ['\\Answered', 'Reviewed'], remove: ['\\Seen'] });
      await expungeUids(client, 'INBOX', uids.slice(10, 40));
      await client.mailboxRename('Archive/2025', 'Archive/2025-old');
      await client.mailboxDelete('R&D');
      await client.mailboxCreate('Brand new');
      await appendMessage(client, 'Brand new', generateMessage(702, 1).raw, { flags: ['\\Flagged'], internalDate: new Date('2024-02-03T04:05:06Z') });
    } finally {
      await client.logout();
    }
    const live = await fingerprintUser(dv, src.name);

    const inc = path.join(dv.dir, `${src.name}-inc1.mvd`);
    const summary = await backup(t, users, src.name, inc, ['--since', `@${full}`, ...(profile === 'sdbox' ? ['--attachment-dir', dv.attachmentDir] : [])]);
    t.regex(summary, /incremental|since/i);
    // list --json of an incremental: mailbox records, and one "changes" entry per mailbox
    const incList = JSON.parse((await runCli(['list', inc, '--json'])).stdout.toString()) as { mailboxes: unknown[]; messages: { mailbox: string }[]; changes?: { mailbox: string; added: number }[] };
    t.true(incList.mailboxes.every((m) => typeof m === 'object' && m !== null && typeof (m as { name?: unknown }).name === 'string'), 'list --json: "mailboxes" holds mailbox records only');
    t.is(incList.changes?.length, incList.mailboxes.length);
    t.is(incList.changes?.find((c) => c.mailbox === 'INBOX')?.added, incList.messages.filter((m) => m.mailbox === 'INBOX').length);
    t.true(incList.messages.some((m) => m.mailbox === 'INBOX'));
    const r = await restoreInto(t, [full, inc]);
    t.is(r.code, 0, r.stderr);
    // sdbox keeps hierarchy levels as directories, which Dovecot lists as \NoSelect mailboxes; a Maildir++
    // target has no such entries. Across formats the selectable mailboxes must match exactly.
    const comparable = (fp: UserFingerprint): UserFingerprint => (profile === 'maildir' ? fp : { ...fp, mailboxes: fp.mailboxes.filter((m) => m.selectable) });
    assertSameUser(t, comparable(await fingerprintUser(dv, r.target.name)), comparable(live), 'full + incremental');

    // the state file gives the same incremental base
    const inc2 = path.join(dv.dir, `${src.name}-inc1b.mvd`);
    await backup(t, users, src.name, inc2, ['--since', `@${state}`, '--state-file', state, ...(profile === 'sdbox' ? ['--attachment-dir', dv.attachmentDir] : [])]);
    const r2 = await restoreInto(t, [full, inc2]);
    t.is(r2.code, 0, r2.stderr);
    assertSameUser(t, comparable(await fingerprintUser(dv, r2.target.name)), comparable(live), 'full + incremental from --state-file');

    // Once the store has settled (change tokens need file times older than 2 s), an incremental
    // records each mailbox's token; the next one, with nothing changed, reads no mailbox at all.
    await sleep(2200);
    const sis = profile === 'sdbox' ? ['--attachment-dir', dv.attachmentDir] : [];
    const inc3 = path.join(dv.dir, `${src.name}-inc3.mvd`);
    await backup(t, users, src.name, inc3, ['--since', `@${state}`, '--state-file', state, ...sis]);
    const inc4 = path.join(dv.dir, `${src.name}-inc4.mvd`);
    const quiet = await runCli(['backup', '--users-file', users, '--user', src.name, '-o', inc4, '--json', '--since', `@${state}`, '--state-file', state, ...sis]);
    t.is(quiet.code, 0, quiet.stderr);
    const changes = (JSON.parse(quiet.stdout.toString()) as { changes: { mailbox: string; status: string; notRead?: boolean }[] }).changes;
    t.true(changes.length > 0);
    t.deepEqual(changes.filter((c) => c.status !== 'unchanged' || c.notRead !== true), [], 'every mailbox unchanged by its token, none read');
    t.regex(quiet.stderr.toString(), /mailboxes unchanged \(\d+ not read/);
    const listing = JSON.parse((await runCli(['list', inc4, '--json'])).stdout.toString());
    t.is(listing.messages.length, 0);
    const r4 = await restoreInto(t, [full, inc2, inc3, inc4]);
    t.is(r4.code, 0, r4.stderr);
    assertSameUser(t, comparable(await fingerprintUser(dv, r4.target.name)), comparable(live), 'full + incrementals, the last with every mailbox skipped by its token');
  });

  // Dovecot rewrites dovecot-keywords for each new keyword name and sets its mtime one second past the
  // last one it saw (maildir-keywords.c: "mtime must grow every time"), so a few new keywords in one
  // second put that mtime seconds into the future. The mailbox has settled all the same (nothing has
  // changed it for seconds, by ctime): the run must record a token, and the next run not read it.
  test('maildir: dovecot-keywords with an mtime Dovecot set seconds ahead: the mailbox still gets a change token once settled, and is not read again', async (t) => {
    const src = await dv.addUser(`ikw${Date.now() % 100000}`, 'maildir');
    await populateRealistic(dv, src, 900);
    const client = await connectImap(dv, src);
    try {
      for (let i = 0; i < 12; i++) await storeFlags(client, 'INBOX', [1], { add: [`Later${i}`] });
    } finally {
      await client.logout();
    }
    const keywordsFile = path.join(src.home, 'Maildir', 'dovecot-keywords');
    const { mtimeMs } = await stat(keywordsFile);
    t.true(mtimeMs > Date.now() + 5000, `Dovecot set dovecot-keywords' mtime ${Math.round(mtimeMs - Date.now())} ms ahead (this test needs it seconds ahead)`);
    await sleep(2200);
    const users = await writeUsersFile(dv.dir, [src]);
    const state = path.join(dv.dir, `${src.name}.state.json`);
    await backup(t, users, src.name, path.join(dv.dir, `${src.name}-full.mvd`), ['--state-file', state]);
    const r = await runCli(['backup', '--users-file', users, '--user', src.name, '-o', path.join(dv.dir, `${src.name}-inc.mvd`), '--json', '--since', `@${state}`, '--state-file', state]);
    t.is(r.code, 0, r.stderr);
    const changes = (JSON.parse(r.stdout.toString()) as { changes: { mailbox: string; notRead?: boolean }[] }).changes;
    t.deepEqual(changes.filter((c) => c.mailbox === 'INBOX').map((c) => c.notRead), [true], 'INBOX not read: its token was recorded by the full run');
  });

  test('three incrementals; --at the second one restores the state after the second; an unchanged store gives no bodies', async (t) => {
    const src = await dv.addUser(`iat${Date.now() % 100000}`, 'maildir');
    await populateRealistic(dv, src, 800, { lmtp: 3 });
    const users = await writeUsersFile(dv.dir, [src]);
    const dumps = [path.join(dv.dir, `${src.name}-0.mvd`)];
    const state = path.join(dv.dir, `${src.name}.state.json`);
    await backup(t, users, src.name, dumps[0]!, ['--state-file', state]);
    const states: UserFingerprint[] = [];
    for (let i = 1; i <= 3; i++) {
      await sleep(1100); // dumps are dated to the second
      await deliverLmtp(dv.lmtpSocket, src.name, [...generateMessages(800 + i, 5)].map((m) => m.raw));
      const file = path.join(dv.dir, `${src.name}-${i}.mvd`);
      await backup(t, users, src.name, file, ['--since', `@${state}`, '--state-file', state]);
      dumps.push(file);
      states.push(await fingerprintUser(dv, src.name));
    }
    const header = JSON.parse((await runCli(['list', dumps[2]!, '--json'])).stdout.toString()).header;
    const r = await restoreInto(t, dumps, ['--at', header.created]);
    t.is(r.code, 0, r.stderr);
    assertSameUser(t, await fingerprintUser(dv, r.target.name), states[1]!, 'restored --at the second incremental');

    // nothing changed since the last run: no message body in the dump
    const idle = path.join(dv.dir, `${src.name}-idle.mvd`);
    await backup(t, users, src.name, idle, ['--since', `@${state}`]);
    const listing = JSON.parse((await runCli(['list', idle, '--json'])).stdout.toString());
    t.is(listing.messages.length, 0);
    t.false((await readFile(idle)).includes(Buffer.from('.eml\0')), 'no .eml member in the dump');
  });

  test('an incremental by time (--since 1h) carries mail moved, copied or saved with an old date into a Maildir mailbox', async (t) => {
    const src = await dv.addUser(`itime${Date.now() % 100000}`, 'maildir');
    const old = new Date(Date.now() - 3 * 86_400_000);
    const client = await connectImap(dv, src);
    await client.mailboxCreate('Archive');
    for (let i = 0; i < 5; i++) await appendMessage(client, 'INBOX', generateMessage(950, i).raw, { internalDate: old });
    // A read-write SELECT takes \Recent: the files go to cur/ now.
    await client.mailboxOpen('INBOX');
    await client.logout();
    const users = await writeUsersFile(dv.dir, [src]);
    const full = path.join(dv.dir, `${src.name}-full.mvd`);
    await backup(t, users, src.name, full);
    await sleep(1100); // dumps are dated to the second
    // What mail clients and migrations do: file mail into a folder (MOVE: a hard link, the date kept),
    // copy it, save a message with its old date (imapsync, a restore by another tool).
    const again = await connectImap(dv, src);
    const lock = await again.getMailboxLock('INBOX');
    try {
      await again.messageMove('1:2', 'Archive', { uid: true });
      await again.messageCopy('3', 'Archive', { uid: true });
    } finally {
      lock.release();
    }
    await appendMessage(again, 'Archive', generateMessage(950, 9).raw, { internalDate: old });
    await again.logout();
    const live = await fingerprintUser(dv, src.name);
    const inc = path.join(dv.dir, `${src.name}-inc.mvd`);
    const stderr = await backup(t, users, src.name, inc, ['--since', '1h']);
    t.regex(stderr, /Archive: 4 new/);
    const r = await restoreInto(t, [full, inc]);
    t.is(r.code, 0, r.stderr);
    assertSameUser(t, await fingerprintUser(dv, r.target.name), live, 'full + incremental by time');
  });

  test('a chain with a gap is refused naming the missing dump, and nothing is restored', async (t) => {
    const src = await dv.addUser(`igap${Date.now() % 100000}`, 'maildir');
    await populateRealistic(dv, src, 900, { lmtp: 2 });
    const users = await writeUsersFile(dv.dir, [src]);
    const state = path.join(dv.dir, `${src.name}.state.json`);
    const d = [0, 1, 2].map((i) => path.join(dv.dir, `${src.name}-${i}.mvd`));
    await backup(t, users, src.name, d[0]!, ['--state-file', state]);
    for (const i of [1, 2]) {
      await deliverLmtp(dv.lmtpSocket, src.name, [...generateMessages(900 + i, 2)].map((m) => m.raw));
      await backup(t, users, src.name, d[i]!, ['--since', `@${state}`, '--state-file', state]);
    }
    const r = await restoreInto(t, [d[0]!, d[2]!]);
    t.is(r.code, 65, r.stderr);
    t.regex(r.stderr, new RegExp(path.basename(d[2]!).replace(/\./g, '\\.')));
    const fp = await fingerprintUser(dv, r.target.name);
    t.is(fp.mailboxes.reduce((k, m) => k + m.messages.length, 0), 0, 'nothing restored');
  });
}
