import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { StorageLockTimeoutError } from '../../../../src/core/errors.js';
import { acquireDotlock, localPid } from '../../../../src/storage/maildir/lock.js';
import { tempDirSync, type TempDirContext } from '../../../helpers/temp.js';

function tmp(t: TempDirContext): string {
  const dir = tempDirSync(t, 'mv-lock-');
  return dir;
}

const base = { staleMs: 120_000, hostname: 'testhost', writePid: true };

test('lock holds pid:host, release unlinks it', async (t) => {
  const file = path.join(tmp(t), 'dovecot-uidlist');
  const lock = await acquireDotlock(file, { ...base, timeoutMs: 1000 });
  t.is(fs.readFileSync(`${file}.lock`, 'utf8'), `${process.pid}:testhost`);
  t.is((fs.statSync(`${file}.lock`).mode & 0o777), 0o600);
  await lock.release();
  t.false(fs.existsSync(`${file}.lock`));
});

test('a lock given to another owner is readable to all until it is theirs, then has its mode', async (t) => {
  const file = path.join(tmp(t), 'dovecot-uidlist');
  const modes: number[] = [];
  const real = fs.promises.open;
  // Records the creation mode (Dovecot's mail processes must be able to watch the file at once).
  (fs.promises as { open: unknown }).open = async (p: fs.PathLike, flags: number, mode?: number) => {
    if (String(p) === `${file}.lock`) modes.push(mode ?? -1);
    return real(p, flags, mode);
  };
  try {
    const owner = { uid: process.getuid!(), gid: process.getgid!() };
    const lock = await acquireDotlock(file, { ...base, timeoutMs: 1000, owner, mode: 0o600 });
    t.deepEqual(modes, [0o644]);
    t.is(fs.statSync(`${file}.lock`).mode & 0o777, 0o600);
    await lock.release();
    modes.length = 0;
    const own = await acquireDotlock(file, { ...base, timeoutMs: 1000 });
    t.deepEqual(modes, [0o600], 'no other owner: created with its mode');
    await own.release();
  } finally {
    (fs.promises as { open: unknown }).open = real;
  }
});

test('a lock held by a live process times out, naming the lock and its holder', async (t) => {
  const file = path.join(tmp(t), 'dovecot-uidlist');
  fs.writeFileSync(`${file}.lock`, `${process.ppid}:testhost`);
  const old = new Date(Date.now() - 10_000);
  fs.utimesSync(`${file}.lock`, old, old);
  const started = Date.now();
  const e = await t.throwsAsync(acquireDotlock(file, { ...base, timeoutMs: 400 }), { instanceOf: StorageLockTimeoutError });
  t.true(Date.now() - started >= 390);
  t.true(e!.message.includes(`${file}.lock`));
  t.true(e!.message.includes(`"${process.ppid}:testhost"`));
  t.true(fs.existsSync(`${file}.lock`), 'a live holder is never overridden');
});

test('a lock of a dead local pid older than 2 s is taken over at once', async (t) => {
  const file = path.join(tmp(t), 'dovecot-uidlist');
  fs.writeFileSync(`${file}.lock`, '999999:testhost');
  const old = new Date(Date.now() - 10_000);
  fs.utimesSync(`${file}.lock`, old, old);
  const started = Date.now();
  const lock = await acquireDotlock(file, { ...base, timeoutMs: 5000 });
  t.true(Date.now() - started < 1000);
  t.is(fs.readFileSync(`${file}.lock`, 'utf8'), `${process.pid}:testhost`);
  await lock.release();
});

test.serial('a dead holder\'s lock that cannot be removed: no busy loop, the timeout holds and names the cause', async (t) => {
  const file = path.join(tmp(t), 'dovecot-uidlist');
  fs.writeFileSync(`${file}.lock`, '999999:testhost');
  const old = new Date(Date.now() - 10_000);
  fs.utimesSync(`${file}.lock`, old, old);
  // As root no permission stops unlink, so make it fail as it does for a normal user in a sticky or
  // read-only control directory. After 2000 attempts it gives way, so a busy loop ends (and is seen).
  const realUnlink = fs.promises.unlink;
  let attempts = 0;
  fs.promises.unlink = async (p: fs.PathLike): Promise<void> => {
    if (String(p) === `${file}.lock` && ++attempts <= 2000) throw Object.assign(new Error(`EACCES: permission denied, unlink '${String(p)}'`), { code: 'EACCES' });
    return realUnlink(p);
  };
  try {
    const started = Date.now();
    const e = await t.throwsAsync(acquireDotlock(file, { ...base, timeoutMs: 400 }), { instanceOf: StorageLockTimeoutError });
    const waited = Date.now() - started;
    t.true(waited >= 390 && waited < 3000, `waited ${waited} ms`);
    t.true(attempts < 100, `${attempts} unlink attempts in ${waited} ms`);
    t.regex(e!.message, /stale but could not be removed: EACCES/);
    t.regex(e!.hint ?? '', /remove it by hand/);
  } finally {
    fs.promises.unlink = realUnlink;
  }
});

test('a fresh lock of a dead pid is not judged by its pid yet', async (t) => {
  const file = path.join(tmp(t), 'dovecot-uidlist');
  fs.writeFileSync(`${file}.lock`, '999999:testhost');
  await t.throwsAsync(acquireDotlock(file, { ...base, timeoutMs: 300 }), { instanceOf: StorageLockTimeoutError });
});

test('a foreign-host lock is overridden only after it stayed unchanged for the stale time', async (t) => {
  const file = path.join(tmp(t), 'dovecot-uidlist');
  fs.writeFileSync(`${file}.lock`, '12345:otherhost');
  const started = Date.now();
  const lock = await acquireDotlock(file, { ...base, staleMs: 1500, timeoutMs: 10_000 });
  const waited = Date.now() - started;
  t.true(waited >= 1000, `waited ${waited} ms`);
  await lock.release();
  const e = await t.throwsAsync(
    (async () => {
      fs.writeFileSync(`${file}.lock`, '12345:otherhost');
      return acquireDotlock(file, { ...base, staleMs: 60_000, timeoutMs: 300 });
    })(),
    { instanceOf: StorageLockTimeoutError },
  );
  t.regex(e!.message, /12345:otherhost/);
});

test('localPid only trusts our own host', (t) => {
  t.is(localPid('123:vm', 'vm'), 123);
  t.is(localPid('123:other', 'vm'), null);
  t.is(localPid('abc:vm', 'vm'), null);
  t.is(localPid('V\t2\n', 'vm'), null);
});

test('replaceWith renames the lock over the file', async (t) => {
  const file = path.join(tmp(t), 'dovecot-keywords');
  fs.writeFileSync(file, '0 old\n');
  const lock = await acquireDotlock(file, { ...base, writePid: false, timeoutMs: 1000 });
  await lock.replaceWith('0 new\n');
  t.is(fs.readFileSync(file, 'utf8'), '0 new\n');
  t.false(fs.existsSync(`${file}.lock`));
});
