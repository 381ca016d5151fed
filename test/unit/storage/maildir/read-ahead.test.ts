// The Maildir read-ahead: readFiles (the per-batch work), the worker pool, and
// MaildirMailboxReader.messagesWithBodies against messages() + readMessage/openMessage on the same store;
// and a backup with and without it giving the same dump, byte for byte.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { DumpWriter } from '../../../../src/archive/writer.js';
import { IntegrityError } from '../../../../src/core/errors.js';
import { backup, defaultBackupOptions, readAheadPays } from '../../../../src/operations/backup.js';
import { parseLocation } from '../../../../src/storage/location.js';
import { openMaildirStore } from '../../../../src/storage/maildir/index.js';
import { ReadAheadPool, readAheadPool } from '../../../../src/storage/maildir/read-ahead.js';
import { META_FIELDS, PATH_SEPARATOR, readFiles } from '../../../../src/storage/maildir/read-files.js';
import type { MailStore, MessageInfo, MessageSource, MessageWithBody } from '../../../../src/storage/types.js';
import { tempDirSync } from '../../../helpers/temp.js';

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function open(root: string): Promise<MailStore> {
  return openMaildirStore(parseLocation(`maildir:${root}`, { user: 'alice', home: root }), 'alice', { create: true, hostname: 'testhost', lockTimeoutMs: 2000 });
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Message n: sizes from a few bytes to ~60 KB, CRLF and LF, 8-bit bytes; every 97th is 1.5 MiB. */
function body(n: number): Buffer {
  const nl = n % 3 === 0 ? '\r\n' : '\n';
  const big = n % 97 === 50;
  const filler = big ? 1536 * 1024 : (n * 7919) % 60_000;
  return Buffer.concat([Buffer.from(`From: s${n}@example.org${nl}Subject: m${n} Grüße${nl}${nl}`), Buffer.alloc(filler, 0x41 + (n % 26)), Buffer.from([0xff, 0x00, 0x0a])]);
}

/** A Maildir INBOX of `count` messages with varied flags and dates, saved through the driver. */
async function populate(t: ExecutionContext, count: number): Promise<{ root: string; store: MailStore }> {
  const root = path.join(tempDirSync(t, 'mv-readahead-'), 'Maildir');
  const store = await open(root);
  const tx = await store.beginSave('INBOX');
  for (let n = 1; n <= count; n++) {
    const b = body(n);
    await tx.save({ uid: n, flags: n % 2 === 0 ? ['\\Seen'] : [], keywords: n % 5 === 0 ? ['Important'] : [], internalDate: 1_700_000_000 + n * 61, size: b.length }, Readable.from([b]));
  }
  await tx.commit();
  return { root, store };
}

function fileOfUid(root: string, uid: number): string {
  const record = fs.readFileSync(path.join(root, 'dovecot-uidlist'), 'utf8').split('\n').find((l) => l.startsWith(`${uid} `))!;
  const base = record.slice(record.indexOf(':') + 1);
  for (const sub of ['new', 'cur']) {
    if (!fs.existsSync(path.join(root, sub))) continue;
    const name = fs.readdirSync(path.join(root, sub)).find((n) => n.split(':')[0] === base);
    if (name !== undefined) return path.join(root, sub, name);
  }
  throw new Error(`no file for UID ${uid}`);
}

test('readFiles: whole files with mtime and sha256 into one buffer; a wrong size or a missing file is reported, not thrown', (t) => {
  const dir = tempDirSync(t, 'mv-readfiles-');
  const a = Buffer.from('first file\n');
  const b = Buffer.alloc(70_000, 0x62);
  fs.writeFileSync(path.join(dir, 'a'), a);
  fs.writeFileSync(path.join(dir, 'b'), b);
  fs.writeFileSync(path.join(dir, 'short'), 'abc');
  fs.utimesSync(path.join(dir, 'b'), 1_600_000_000, 1_600_000_123);
  const paths = ['a', 'missing', 'short', 'b'].map((n) => path.join(dir, n));
  const sizes = Float64Array.from([a.length, 10, 5, b.length]);
  const batch = readFiles({ paths: paths.join(PATH_SEPARATOR), sizes, capacity: 0 }, null);
  const at = (k: number, f: number): number => batch.meta[k * META_FIELDS + f]!;
  t.is(at(0, 0), 0);
  t.is(at(1, 0), -1, 'missing');
  t.is(at(2, 0), -1, 'size other than expected');
  t.is(at(3, 0), a.length, 'files are back to back');
  t.true(Buffer.from(batch.buffer, at(0, 0), at(0, 1)).equals(a));
  t.true(Buffer.from(batch.buffer, at(3, 0), at(3, 1)).equals(b));
  t.is(Math.floor(at(3, 2) / 1000), 1_600_000_123, 'mtime');
  t.is(batch.digests, sha256(a) + sha256(b), 'one digest per file read, in order');
  // A spare buffer large enough is used; a small one is not.
  const spare = new ArrayBuffer(1 << 20);
  t.is(readFiles({ paths: paths[0]!, sizes: Float64Array.from([a.length]), capacity: 0 }, spare).buffer, spare);
  const small = new ArrayBuffer(4);
  const again = readFiles({ paths: paths[3]!, sizes: Float64Array.from([b.length]), capacity: 1 << 20 }, small);
  t.not(again.buffer, small);
  t.is(again.buffer.byteLength, 1 << 20, 'a new buffer has the requested capacity');
});

/** Compares messagesWithBodies with messages() and the ordinary reads of the same reader. */
async function checkAgainstOrdinary(t: ExecutionContext, store: MailStore, minUid?: number): Promise<MessageWithBody[]> {
  const reader = await store.openMailbox('INBOX');
  const options = minUid !== undefined ? { minUid } : {};
  const expected = await collect(reader.messages(options));
  const got: Array<{ info: MessageInfo; body: { bytes: Buffer; sha256: string } | null }> = [];
  for await (const m of reader.messagesWithBodies!(options)) {
    // The bytes are valid only until the next step: copy them.
    got.push({ info: m.info, body: m.body === null ? null : { bytes: Buffer.from(m.body.bytes), sha256: m.body.sha256 } });
  }
  t.deepEqual(
    got.map((m) => m.info),
    expected,
    'the same metadata as messages(), dates included',
  );
  for (const m of got) {
    if (m.body === null) continue;
    const ordinary = (await reader.readMessage!(m.info)) ?? (await readAll(await reader.openMessage(m.info)));
    t.true(m.body.bytes.equals(ordinary), `UID ${m.info.uid}: the same bytes`);
    t.is(m.body.sha256, sha256(ordinary), `UID ${m.info.uid}: the sha256 of its bytes`);
  }
  await reader.close();
  return got;
}

test('messagesWithBodies through the worker: the same messages, bytes and dates as the ordinary reads; large ones without a body', async (t) => {
  t.true(await readAheadPool().whenOnline(), 'the worker starts');
  const { store } = await populate(t, 400);
  const got = await checkAgainstOrdinary(t, store);
  t.is(got.length, 400);
  const withoutBody = got.filter((m) => m.body === null).map((m) => m.info.uid);
  t.deepEqual(withoutBody, [50, 147, 244, 341], 'only the messages over 1 MiB');
  const from = await checkAgainstOrdinary(t, store, 333);
  t.deepEqual([from[0]!.info.uid, from.length], [333, 68], 'minUid');
  await store.close();
});

test('messagesWithBodies: a file renamed by a flag change, one cut short and one gone after the listing', async (t) => {
  t.true(await readAheadPool().whenOnline());
  const { root, store } = await populate(t, 300);
  const reader = await store.openMailbox('INBOX'); // the listing is taken here
  const renamed = fileOfUid(root, 10);
  fs.mkdirSync(path.join(root, 'cur'), { recursive: true });
  fs.renameSync(renamed, path.join(root, 'cur', `${path.basename(renamed).split(':')[0]}:2,FS`));
  fs.truncateSync(fileOfUid(root, 20), 3);
  fs.unlinkSync(fileOfUid(root, 30));
  const seen = new Map<number, MessageWithBody>();
  const bodies = new Map<number, Buffer | null>();
  const wrongDigest: number[] = [];
  for await (const m of reader.messagesWithBodies!()) {
    seen.set(m.info.uid, m);
    bodies.set(m.info.uid, m.body === null ? null : Buffer.from(m.body.bytes));
    // Files not read (cut short, gone) sit in the same batches as the ones after them: each digest
    // must still be its own file's.
    if (m.body !== null && m.body.sha256 !== sha256(body(m.info.uid))) wrongDigest.push(m.info.uid);
  }
  t.deepEqual(wrongDigest, [], 'every body read ahead with its own sha256');
  t.true([...bodies.values()].filter((b) => b !== null).length >= 290, 'nearly all read ahead');
  t.is(seen.size, 299, 'the deleted one is left out, as messages() does');
  t.false(seen.has(30));
  t.is(bodies.get(10), null, 'renamed: found again, read the ordinary way');
  t.true((await reader.readMessage!(seen.get(10)!.info))!.equals(body(10)));
  t.is(bodies.get(20), null, 'cut short: not read ahead');
  await t.throwsAsync(reader.readMessage!(seen.get(20)!.info), { instanceOf: IntegrityError }, 'the ordinary read reports it');
  t.true(bodies.get(21)!.equals(body(21)), 'the next ones are read ahead again');
  await reader.close();
  await store.close();
});

async function dumpOf(root: string, readAhead: boolean): Promise<Buffer> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const writer = await DumpWriter.create(out, {
    creator: 'mailvault test',
    created: '2026-12-06T00:00:00Z',
    runId: '00000000-0000-4000-8000-000000000000',
    kind: 'full',
    base: null,
    source: { driver: 'maildir', location: 'maildir:', host: 'test' },
    options: {},
  });
  const summary = await backup(['alice'], async () => (await open(root)) as MessageSource, writer, defaultBackupOptions({ readAhead }));
  await writer.finish();
  if (summary.skipped.length > 0) throw new Error(`skipped: ${JSON.stringify(summary.skipped)}`);
  return Buffer.concat(chunks);
}

test.serial('a backup with the read-ahead writes the same dump, byte for byte, as one without', async (t) => {
  t.true(await readAheadPool().whenOnline());
  const { root, store } = await populate(t, 250);
  await store.close();
  const pool = readAheadPool();
  const before = pool.batches.worker + pool.batches.here;
  const without = await dumpOf(root, false);
  t.is(pool.batches.worker + pool.batches.here, before, 'without: nothing read ahead');
  const withIt = await dumpOf(root, true);
  t.true(pool.batches.worker > before, `with: batches read by the worker (${JSON.stringify(pool.batches)})`);
  t.true(without.length > 250 * 30_000, 'all messages in the dump');
  // Byte for byte up to the trailer member, whose header and record hold the completion time (which
  // may differ by a second); its digest covers everything before it.
  const trailer = without.indexOf('mailvault/trailer.json');
  t.true(trailer > 0, 'a trailer');
  t.is(withIt.length, without.length);
  let diff = 0;
  while (diff < trailer && withIt[diff] === without[diff]) diff++;
  const around = (d: Buffer): string => JSON.stringify(d.subarray(Math.max(0, diff - 300), diff + 60).toString('latin1'));
  t.is(diff, trailer, `first difference at ${diff}:\n${around(without)}\n${around(withIt)}`);
  const digest = (d: Buffer): string => /"digest":\{[^}]*\}/.exec(d.subarray(trailer).toString('latin1'))![0];
  t.is(digest(withIt), digest(without));
});

test('a process that used the read-ahead exits by itself: an idle worker keeps nothing alive', async (t) => {
  const dir = tempDirSync(t, 'mv-readahead-exit-');
  fs.writeFileSync(path.join(dir, 'm'), 'x'.repeat(1000));
  const module = new URL('../../../../src/storage/maildir/read-ahead.js', import.meta.url).href;
  const script = `
    const { readAheadPool } = await import(${JSON.stringify(module)});
    const pool = readAheadPool();
    pool.read({ paths: ${JSON.stringify(path.join(dir, 'm'))}, sizes: Float64Array.from([1000]), capacity: 0 }); // before the worker runs
    if (!(await pool.whenOnline())) process.exit(3);
    const batch = await pool.read({ paths: ${JSON.stringify(path.join(dir, 'm'))}, sizes: Float64Array.from([1000]), capacity: 0 });
    if (batch.meta[0] !== 0 || pool.batches.worker !== 1) process.exit(4);
  `;
  fs.writeFileSync(path.join(dir, 'script.mjs'), script);
  const child = spawn(process.execPath, [path.join(dir, 'script.mjs')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | string>((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve('still running after 15 s');
    }, 15_000);
    child.on('exit', (c) => {
      clearTimeout(timer);
      resolve(c ?? 'killed');
    });
  });
  t.is(code, 0, stderr);
});

test('a worker that fails rejects the batches it had; later batches are read on the calling thread', async (t) => {
  const dir = tempDirSync(t, 'mv-readahead-fail-');
  const content = Buffer.from('message bytes\n');
  fs.writeFileSync(path.join(dir, 'm'), content);
  fs.writeFileSync(path.join(dir, 'failing-worker.mjs'), "import { parentPort } from 'node:worker_threads';\nparentPort.on('message', () => { throw new Error('worker broke'); });\n");
  const pool = new ReadAheadPool(new URL(`file://${path.join(dir, 'failing-worker.mjs')}`));
  const request = () => ({ paths: path.join(dir, 'm'), sizes: Float64Array.from([content.length]), capacity: 0 });
  t.true(await pool.whenOnline());
  const failed = await t.throwsAsync(pool.read(request()));
  t.regex(failed!.message, /read-ahead worker failed: worker broke/);
  const batch = await pool.read(request());
  t.true(Buffer.from(batch.buffer, batch.meta[0], content.length).equals(content), 'read here instead');
  t.deepEqual(pool.batches, { worker: 1, here: 1 });
});

test('readAheadPays: a core to spare for it', (t) => {
  t.true(readAheadPays(false, 2));
  t.false(readAheadPays(false, 1));
  t.false(readAheadPays(true, 2), 'compressing: the compression worker has the second core');
  t.true(readAheadPays(true, 4));
});
