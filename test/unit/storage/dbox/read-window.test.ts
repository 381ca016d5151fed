import test from 'ava';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ReadWindow, SyncFile, readDboxFileHeader, readDboxMessage } from '../../../../src/storage/dbox/common/dbox-file.js';

/** A file of `n` bytes where byte i is i % 251 (no period that lines up with a window). */
function pattern(n: number, from = 0): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (from + i) % 251;
  return b;
}

async function tempFile(t: { teardown: (fn: () => Promise<void>) => void }, bytes: Buffer): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mv-window-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'm.1');
  await writeFile(file, bytes);
  return file;
}

async function readThrough(window: ReadWindow, fh: SyncFile, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await window.over(fh).read(buf, 0, length, position);
  return buf.subarray(0, bytesRead);
}

test('reads through a window give the file\'s bytes wherever they fall: inside, across its end, past EOF, larger than it', async (t) => {
  const bytes = pattern(10_000);
  const fh = SyncFile.open(await tempFile(t, bytes));
  t.teardown(() => fh.close());
  const window = new ReadWindow(1000);
  for (const [position, length] of [[0, 10], [5, 100], [990, 20], [995, 1000], [9_990, 50], [10_000, 5], [20_000, 5], [100, 2500], [7, 1]] as const) {
    t.deepEqual(await readThrough(window, fh, position, length), bytes.subarray(position, Math.min(bytes.length, position + length)), `${length} bytes at ${position}`);
  }
});

test('a view is handed out only for what the window holds of that file, and is invalid once the window is filled again', async (t) => {
  const bytes = pattern(5000);
  const file = await tempFile(t, bytes);
  const fh = SyncFile.open(file);
  const other = SyncFile.open(file);
  t.teardown(async () => {
    await fh.close();
    await other.close();
  });
  const window = new ReadWindow(1000);
  window.prepare(fh, 2000, 300);
  const view = window.view(fh, 2100, 2300);
  t.truthy(view);
  t.is(view!.start, 2000);
  t.deepEqual(view!.bytes.subarray(100, 300), bytes.subarray(2100, 2300));
  t.true(view!.valid());
  t.is(window.view(fh, 1999, 2100), null, 'before the window');
  t.is(window.view(fh, 2900, 3001), null, 'past its end');
  t.is(window.view(other, 2100, 2300), null, 'another open file, even of the same name');
  // Held already: no new read, the view stays valid.
  window.prepare(fh, 2500, 100);
  t.true(view!.valid());
  window.prepare(fh, 4000, 100);
  t.false(view!.valid(), 'the buffer now holds other bytes');
});

test('bytes appended after the window was filled are read, not taken as the end of the file', async (t) => {
  const file = await tempFile(t, pattern(1500));
  const fh = SyncFile.open(file);
  t.teardown(() => fh.close());
  const window = new ReadWindow(4096);
  window.prepare(fh, 1000, 100);
  t.is((await readThrough(window, fh, 1400, 200)).length, 100, 'the file ends at 1500');
  // A purge appends the messages it moves to an open m.N file.
  await appendFile(file, pattern(600, 1500));
  t.deepEqual(await readThrough(window, fh, 1400, 200), pattern(200, 1400));
  t.deepEqual(await readThrough(window, fh, 2000, 100), pattern(100, 2000));
});

test('a dbox message parsed through windows smaller than it, or cut at any point, is the same as parsed from the file', async (t) => {
  const header = Buffer.from('2 M1e C6b0ada32\n', 'latin1');
  const body = pattern(3000);
  const msgHeader = Buffer.from(`\x01\x02N${' '.repeat(10)}${body.length.toString(16).toUpperCase().padStart(16, '0')}\n`, 'latin1');
  const meta = Buffer.from('\n\x01\x03\nGabc\nR6b0ada32\nXlong value '.concat('x'.repeat(1500), '\n\n'), 'latin1');
  const file = await tempFile(t, Buffer.concat([header, msgHeader, body, meta]));
  const fh = SyncFile.open(file);
  t.teardown(() => fh.close());
  const hdr = await readDboxFileHeader(fh, file);
  const size = header.length + msgHeader.length + body.length + meta.length;
  const direct = await readDboxMessage(fh, file, hdr, hdr.firstMessageOffset, size);
  let views = 0;
  for (const capacity of [64, 1000, 2048, 4096, 1 << 20]) {
    for (const prepared of [0, hdr.firstMessageOffset, hdr.firstMessageOffset + 1000, size - 10]) {
      const window = new ReadWindow(capacity);
      window.prepare(fh, prepared, 1000);
      const m = await readDboxMessage(window.over(fh), file, hdr, hdr.firstMessageOffset, size);
      const view = window.view(fh, m.bodyOffset, m.bodyOffset + m.bodySize);
      if (view !== null) {
        views++;
        t.deepEqual(view.bytes.subarray(m.bodyOffset - view.start, m.bodyOffset - view.start + m.bodySize), body);
      }
      // The metadata values are the message's own, not views of the window's buffer: fill it anew.
      window.prepare(fh, 0, 64);
      window.prepare(fh, size - 1, 1);
      t.deepEqual({ ...m, metadata: m.metadata.map((e) => [e.key, e.bytes.toString('latin1')]) }, { ...direct, metadata: direct.metadata.map((e) => [e.key, e.bytes.toString('latin1')]) }, `capacity ${capacity}, window at ${prepared}`);
    }
  }
  t.true(views > 0, 'the larger windows hand out the body');
});

test('a read far past the window fills only what it needs; invalidate() forgets what it holds', async (t) => {
  const bytes = pattern(1 << 20);
  const fh = SyncFile.open(await tempFile(t, bytes));
  t.teardown(() => fh.close());
  const window = new ReadWindow();
  window.prepare(fh, 0, 100);
  t.truthy(window.view(fh, 0, 100 * 1024), 'a first fill takes in the neighbours');
  // 300 KiB on: the messages between belong to other mailboxes; only this one is read.
  window.prepare(fh, 300 * 1024, 100);
  t.truthy(window.view(fh, 300 * 1024, 300 * 1024 + 100));
  t.is(window.view(fh, 300 * 1024, 300 * 1024 + 101), null);
  // Right after it: read on ahead again.
  window.prepare(fh, 300 * 1024 + 100, 100);
  t.truthy(window.view(fh, 300 * 1024 + 100, 400 * 1024));
  const view = window.view(fh, 300 * 1024 + 100, 300 * 1024 + 200)!;
  window.invalidate();
  t.false(view.valid());
  t.is(window.view(fh, 300 * 1024 + 100, 300 * 1024 + 200), null);
  t.deepEqual(await readThrough(window, fh, 300 * 1024 + 100, 10), bytes.subarray(300 * 1024 + 100, 300 * 1024 + 110));
});
