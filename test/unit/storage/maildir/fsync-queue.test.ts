import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { FsyncQueue } from '../../../../src/storage/maildir/fsync-queue.js';
import { tempDirSync } from '../../../helpers/temp.js';

// Serial: the tests check descriptor numbers, which a test running alongside could reuse.

function isOpen(fd: number): boolean {
  try {
    fs.fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

function openFiles(dir: string, n: number, prefix = 'f'): number[] {
  return Array.from({ length: n }, (_, i) => {
    const fd = fs.openSync(path.join(dir, `${prefix}${i}`), 'wx');
    fs.writeSync(fd, `file ${i}\n`);
    return fd;
  });
}

/** Wait (up to 10 s) until `cond` holds. */
async function until(cond: () => boolean): Promise<boolean> {
  for (const end = Date.now() + 10_000; Date.now() < end; ) {
    if (cond()) return true;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return cond();
}

test.serial('descriptors wait until drain(), which fsyncs and closes them all', async (t) => {
  const dir = tempDirSync(t, 'mv-fsyncq-');
  const q = new FsyncQueue(4, 100);
  const fds = openFiles(dir, 10);
  for (const fd of fds) q.addDescriptor(fd);
  fs.writeFileSync(path.join(dir, 'by-path'), 'x');
  q.addPath(path.join(dir, 'by-path'));
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.is(q.running, 0, 'nothing started before drain');
  t.is(q.pending, 11);
  t.true(fds.every(isOpen));
  await q.drain();
  t.is(q.pending, 0);
  t.false(fds.some(isOpen), 'every descriptor closed');
});

test.serial('above maxOpen, fsyncs start early; room() waits while maxOpen + concurrency are pending', async (t) => {
  const dir = tempDirSync(t, 'mv-fsyncq-');
  const q = new FsyncQueue(2, 3);
  const fds = openFiles(dir, 5);
  for (const fd of fds.slice(0, 3)) q.addDescriptor(fd);
  t.is(q.running, 0, 'up to maxOpen: nothing started');
  let roomy = false;
  const room = q.room().then(() => (roomy = true));
  await new Promise((resolve) => setTimeout(resolve, 10));
  t.true(roomy, '3 pending < 3 + 2');
  q.addDescriptor(fds[3]!);
  q.addDescriptor(fds[4]!);
  // 5 > maxOpen 3: the oldest two (the concurrency) were started; the other three wait for drain().
  t.true(await until(() => q.running === 0 && q.pending === 3));
  t.false(isOpen(fds[0]!) || isOpen(fds[1]!), 'the oldest two were fsynced and closed');
  await room;
  const more = openFiles(dir, 2, 'more');
  for (const fd of more) q.addDescriptor(fd); // 5 pending again: 2 start, 3 wait
  roomy = false;
  const blocked = q.room().then(() => (roomy = true));
  q.addDescriptor(openFiles(dir, 1, 'x')[0]!);
  await q.drain();
  await blocked;
  t.true(roomy);
  t.false([...fds, ...more].some(isOpen));
});

test.serial('room() waits while maxOpen + concurrency files are pending, until one is done', async (t) => {
  const dir = tempDirSync(t, 'mv-fsyncq-');
  // The first file is a FIFO: opening it (in a pool thread) blocks until a writer comes, so that
  // job stays in flight for as long as the test wants; its fsync then fails (EINVAL).
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const letGo = (): void => {
    try {
      fs.closeSync(fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
    } catch {
      /* no reader any more */
    }
  };
  t.teardown(letGo);
  const q = new FsyncQueue(1, 1);
  q.addPath(fifo);
  const fd = openFiles(dir, 1)[0]!;
  q.addDescriptor(fd); // 2 > maxOpen 1: the FIFO's job starts (and hangs in open)
  t.is(q.running, 1);
  let settled = false;
  const room = q.room().then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.false(settled, 'pending 2 = 1 + 1: room() waits');
  letGo();
  await t.throwsAsync(q.room(), { code: 'EINVAL' }, 'the FIFO cannot be fsynced: room() passes the failure on');
  await room;
  t.true(settled);
  t.false(isOpen(fd), 'the waiting descriptor was closed after the failure');
  await t.throwsAsync(q.drain(), { code: 'EINVAL' });
});

test.serial('a failure is thrown by drain() and room(); what was not started is closed, not fsynced', async (t) => {
  const dir = tempDirSync(t, 'mv-fsyncq-');
  const q = new FsyncQueue(1, 100);
  q.addPath(path.join(dir, 'gone')); // open fails: ENOENT
  const fds = openFiles(dir, 3);
  for (const fd of fds) q.addDescriptor(fd);
  await t.throwsAsync(q.drain(), { code: 'ENOENT' });
  t.false(fds.some(isOpen), 'no descriptor left open after the failure');
  await t.throwsAsync(q.room(), { code: 'ENOENT' });
  const late = openFiles(dir, 1, 'late');
  q.addDescriptor(late[0]!);
  t.false(isOpen(late[0]!), 'handed over after a failure: closed at once');
  await t.throwsAsync(q.drain(), { code: 'ENOENT' });
});

test.serial('abandon() closes the waiting descriptors without fsync, waits for those in flight, and closes later ones at once', async (t) => {
  const dir = tempDirSync(t, 'mv-fsyncq-');
  const q = new FsyncQueue(2, 3);
  const fds = openFiles(dir, 6);
  for (const fd of fds) q.addDescriptor(fd); // 6 > 3: two start at once
  t.is(q.running, 2);
  await q.abandon();
  t.is(q.pending, 0);
  t.false(fds.some(isOpen));
  const after = openFiles(dir, 1, 'after')[0]!;
  q.addDescriptor(after);
  t.false(isOpen(after), 'handed over after abandon(): closed at once');
});
