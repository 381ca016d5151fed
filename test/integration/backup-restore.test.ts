/**
 * Issue "Dump format v1 and the commands", against a real Dovecot 2.3 (maildir profiles):
 * - round trip of every user: backup -> restore into an empty Maildir location -> the Dovecot serving the
 *   restored store reports the same fingerprint (UIDs, UIDVALIDITY, UIDNEXT, mailbox and message GUIDs,
 *   flags, keywords, INTERNALDATE, bytes, subscriptions, non-ASCII names, empty folders);
 * - the same through pipes (backup | zstd | zstd -d | restore -) and with --compress zstd;
 * - one expunged message restored into the live store by mailbox and UID, exactly once.
 * The restored trees belong to fresh users of the same Dovecot, so Dovecot itself reads them.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import test from 'ava';
import { requireDovecot, startDovecot, type DovecotInstance, type DovecotProfile, type DovecotUser } from '../helpers/dovecot.js';
import { assertSameUser, fingerprintUser, storedMessage, type UserFingerprint } from '../helpers/fingerprint.js';
import { connectImap, expungeUids, populateRealistic } from '../helpers/populate.js';
import { projectRoot, runCli, writeUsersFile } from '../helpers/cli.js';



/** Runs `sh -c` with the CLI available as $MV; returns exit code and stderr. */
function shell(script: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', script], { env: { ...process.env, MV: `${process.execPath} ${path.join(projectRoot, 'bin', 'run.js')}` }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
  });
}

if (requireDovecot(test)) {
  let dv: DovecotInstance;
  const sources: DovecotUser[] = [];
  let fingerprints: Map<string, UserFingerprint>;
  let srcUsers: string;
  let n = 0;
  const fresh = async (profile: DovecotProfile): Promise<DovecotUser> => dv.addUser(`r${n++}x${Date.now() % 100000}`, profile);

  test.before(async () => {
    dv = await startDovecot();
    const specs: [string, DovecotProfile][] = [['alice', 'maildir'], ['bob', 'maildir'], ['carol', 'maildir-fs']];
    for (const [name, profile] of specs) sources.push(await dv.addUser(name, profile));
    await Promise.all(sources.map((u, i) => populateRealistic(dv, u, 500 + i * 10)));
    fingerprints = new Map();
    for (const u of sources) fingerprints.set(u.name, await fingerprintUser(dv, u.name));
    srcUsers = await writeUsersFile(dv.dir, sources);
  });

  test.after.always(async () => {
    await dv?.stop();
  });

  test('round trip of all three users: backup, restore into empty Maildirs, Dovecot serves the same state', async (t) => {
    const dump = path.join(dv.dir, 'all.mvd');
    const b = await runCli(['backup', '--users-file', srcUsers, '--all-users', '-o', dump]);
    t.is(b.code, 0, b.stderr);
    t.regex(b.stderr, /backup: 3 users/);
    for (const src of sources) {
      const target = await fresh(src.profile);
      const r = await runCli(['restore', dump, '--users-file', await writeUsersFile(dv.dir, [target]), '--user', src.name, '--to-user', target.name]);
      t.is(r.code, 0, r.stderr);
      assertSameUser(t, await fingerprintUser(dv, target.name), fingerprints.get(src.name)!, `${src.name} (${src.profile}) restored as ${target.name}`);
    }
  });

  test('through pipes: backup | zstd | zstd -d | restore -, and --compress zstd from a file', async (t) => {
    const src = sources[0]!;
    const viaPipe = await fresh(src.profile);
    const p = await shell(`$MV backup --users-file '${srcUsers}' --user ${src.name} | zstd -q | zstd -dq | $MV restore - --users-file '${await writeUsersFile(dv.dir, [viaPipe])}' --to-user ${viaPipe.name}`);
    t.is(p.code, 0, p.stderr);
    assertSameUser(t, await fingerprintUser(dv, viaPipe.name), fingerprints.get(src.name)!, 'through zstd pipes');

    const file = path.join(dv.dir, 'alice.mvd.zst');
    const b = await runCli(['backup', '--users-file', srcUsers, '--user', src.name, '--compress', 'zstd', '-o', file]);
    t.is(b.code, 0, b.stderr);
    const fromZst = await fresh(src.profile);
    const r = await runCli(['restore', file, '--users-file', await writeUsersFile(dv.dir, [fromZst]), '--to-user', fromZst.name]);
    t.is(r.code, 0, r.stderr);
    assertSameUser(t, await fingerprintUser(dv, fromZst.name), fingerprints.get(src.name)!, 'from an internally compressed dump');
  });

  test('one expunged message comes back into the live store by mailbox and UID, exactly once', async (t) => {
    const user = await dv.addUser(`single${Date.now() % 100000}`, 'maildir');
    await populateRealistic(dv, user, 900, { lmtp: 2 });
    const users = await writeUsersFile(dv.dir, [user]);
    const dump = path.join(dv.dir, 'single.mvd');
    t.is((await runCli(['backup', '--users-file', users, '--user', user.name, '-o', dump])).code, 0);
    const before = await fingerprintUser(dv, user.name);
    const box = before.mailboxes.find((m) => m.name === 'Archive/2025')!;
    const victim = box.messages[box.messages.length - 1]!;
    const original = await storedMessage(dv, user.name, 'Archive/2025', victim.uid);
    const client = await connectImap(dv, user);
    try {
      await expungeUids(client, 'Archive/2025', [victim.uid]);
    } finally {
      await client.logout();
    }
    const r = await runCli(['restore', dump, '--users-file', users, '--user', user.name, '--mailbox', 'Archive/2025', '--uid', String(victim.uid)]);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stderr, /restored 1 messages/);
    const after = (await fingerprintUser(dv, user.name)).mailboxes.find((m) => m.name === 'Archive/2025')!;
    const back = after.messages.filter((m) => m.sha256 === victim.sha256);
    t.is(back.length, 1, 'the message is back once');
    const m = back[0]!;
    t.true(m.uid >= box.uidNext!, `a new UID at or above the old UIDNEXT ${box.uidNext}: got ${m.uid}`);
    t.deepEqual({ flags: m.flags, keywords: m.keywords, internalDate: m.internalDate, guid: m.guid, size: m.size }, { flags: victim.flags, keywords: victim.keywords, internalDate: victim.internalDate, guid: victim.guid, size: victim.size });
    t.deepEqual(await storedMessage(dv, user.name, 'Archive/2025', m.uid), original, 'byte-identical as stored');
    t.is(after.uidValidity, box.uidValidity);
    const again = await runCli(['restore', dump, '--users-file', users, '--user', user.name, '--mailbox', 'Archive/2025', '--uid', String(victim.uid)]);
    t.is(again.code, 0, again.stderr);
    t.regex(again.stderr, /restored 0 messages .* 1 already present/);
    t.is((await fingerprintUser(dv, user.name)).mailboxes.find((x) => x.name === 'Archive/2025')!.messages.length, after.messages.length);
  });
}
