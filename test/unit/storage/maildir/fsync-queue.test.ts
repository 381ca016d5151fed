import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';

// Serial: the tests check descriptor numbers, which a test running alongside could reuse.
import { FsyncQueue } from '../../../../src/storage/maildir/fsync-queue.js';
import { tempDirSync } from '../../../helpers/temp.js';

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

test.serial('descriptors wait until drain(), which fsyncs and closes them all', async (t) => {
  const dir = tempDirSync(t, 'mv-fsyncq-');
  const q = new FsyncQueue(4, 100);
  const fds = openFiles(dir, 10);
  for (const fd of fds) q.addDescriptor(fd);
  fs.writeFileSync(path.join(dir, 'by-path'), 'x');
  q.addPath(path.join(dir, 'by-path'));
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.is(q.pending, 11, 'nothing started before drain');
  t.true(fds.every(isOpen));
  await q.drain();
  t.is(q.pending, 0);
  t.false(fds.some(isOpen), 'every descriptor closed');
});

test.serial('above maxOpen, fsyncs start early; room() waits while maxOpen + concurrency are pending', async (t) => {
  const dir = tempDirSync(t, 'mv-fsyncq-');
  const q = new FsyncQueue(2, 3);
  const fds = openFiles(dir, 5);
  for (const fd of fds) q.addDescriptor(fd);
  // 5 > maxOpen 3: two (the concurrency) started at once, three left to wait for drain().
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(q.pending, 3);
  t.false(isOpen(fds[0]!) || isOpen(fds[1]!), 'the oldest two were fsynced and closed');
  let roomy = false;
  void q.room().then(() => (roomy = true));
  await new Promise((resolve) => setTimeout(resolve, 10));
  t.true(roomy, '3 pending < 3 + 2');
  await q.drain();
  t.false(fds.some(isOpen));
});

test.serial('a failure is thrown by drain(); what was not started is closed, not fsynced', async (t) => {
  const dir = tempDirSync(t, 'mv-fsyncq-');
  const q = new FsyncQueue(1, 100);
  q.addPath(path.join(dir, 'gone')); // open fails: ENOENT
  const fds = openFiles(dir, 3);
  for (const fd of fds) q.addDescriptor(fd);
  await t.throwsAsync(q.drain(), { code: 'ENOENT' });
  t.false(fds.some(isOpen), 'no descriptor left open after the failure');
  const late = openFiles(dir, 1, 'late');
  q.addDescriptor(late[0]!);
  t.false(isOpen(late[0]!), 'handed over after a failure: closed at once');
  await t.throwsAsync(q.drain(), { code: 'ENOENT' });
});

test.serial('abandon() closes the waiting descriptors without fsync', async (t) => {
  const dir = tempDirSync(t, 'mv-fsyncq-');
  const q = new FsyncQueue(4, 100);
  const fds = openFiles(dir, 6);
  for (const fd of fds) q.addDescriptor(fd);
  await q.abandon();
  t.is(q.pending, 0);
  t.false(fds.some(isOpen));
});
