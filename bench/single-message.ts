/**
 * Single-message restore from dump FILES of growing size (internally zstd-compressed, seekable): the time
 * to restore one message by Message-ID (random access: trailer, TOC, that message) and to extract it,
 * beside the time of a full sequential read (verify). Run manually (not part of the tests):
 *
 *     npx tsc -p tsconfig.json && node build/bench/single-message.js [SIZES_MB] [DIR]
 *
 * SIZES_MB defaults to 100,1000,5000; DIR to the system temp dir (check `df -h` first: the dumps are
 * written there, compressed, and deleted afterwards). Messages are generated fast: a pool of bodies
 * (text plus an incompressible base64 attachment, 20-200 KB) with a unique header per message.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parseCompressionOption } from '../src/archive/compression/index.js';
import { DumpWriter } from '../src/archive/writer.js';
import { extractMessageFromFile } from '../src/operations/extract.js';
import { defaultRestoreOptions } from '../src/operations/restore.js';
import { restoreFromFile } from '../src/operations/restore-from-file.js';
import { verify } from '../src/operations/verify.js';
import { MemoryStore, createMemoryStoreData } from '../src/storage/memory/index.js';

const sizesMb = (process.argv[2] ?? '100,1000,5000').split(',').map(Number);
const parent = process.argv[3] ?? os.tmpdir();

function poolBody(i: number): Buffer {
  const text = `Hello,\n\nthis is pooled body ${i}. ${'The quarterly report is attached, please review. '.repeat(20 + (i % 40))}\n`;
  const attachment = randomBytes(15_000 + ((i * 7919) % 150_000)).toString('base64').replace(/.{76}/g, '$&\n');
  return Buffer.from(`MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\n${text}\n--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n${attachment}\n--b--\n`);
}

async function writeDump(file: string, targetBytes: number): Promise<{ messages: number; lastMessageId: string; middleMessageId: string }> {
  const pool = Array.from({ length: 64 }, (_, i) => poolBody(i));
  const out = createWriteStream(file);
  const writer = await DumpWriter.create(
    out,
    { creator: 'mailvault bench', created: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'), runId: randomUUID(), kind: 'full', base: null, source: { driver: 'bench', location: 'generated', host: os.hostname() }, options: {} },
    { compression: parseCompressionOption('zstd:1') },
  );
  await writer.writeUser({ user: 'bench', subscriptions: ['Archive/0000'] });
  const perMailbox = 5000;
  let written = 0;
  let n = 0;
  let box = -1;
  while (written < targetBytes) {
    if (Math.floor(n / perMailbox) !== box) {
      box = Math.floor(n / perMailbox);
      await writer.writeMailbox({ user: 'bench', name: `Archive/${String(box).padStart(4, '0')}`, guid: null, uidValidity: 1000 + box, uidNext: perMailbox + 1, highestModseq: null, messageCount: perMailbox, specialUse: [], subscribed: box === 0, selectable: true, metadata: {}, acl: {} });
    }
    const messageId = `<${n}.bench@mailvault.test>`;
    const head = Buffer.from(`From: Sender ${n % 97} <s${n % 97}@example.org>\nSubject: bench message ${n}\nMessage-ID: ${messageId}\nDate: Mon, 2 Nov 2026 10:00:00 +0000\n`);
    const body = Buffer.concat([head, pool[n % pool.length]!]);
    await writer.writeMessage(
      { user: 'bench', mailbox: `Archive/${String(box).padStart(4, '0')}`, uid: (n % perMailbox) + 1, guid: null, flags: ['\\Seen'], keywords: [], internalDate: '2026-11-02T10:00:00Z', saveDate: null, modseq: null, size: body.length, summary: { from: `Sender ${n % 97} <s${n % 97}@example.org>`, subject: `bench message ${n}`, messageId, date: '' }, extra: {} },
      Readable.from([body]),
    );
    written += body.length;
    n++;
  }
  await writer.finish();
  return { messages: n, lastMessageId: `<${n - 1}.bench@mailvault.test>`, middleMessageId: `<${Math.floor(n / 2)}.bench@mailvault.test>` };
}

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = process.hrtime.bigint();
  const r = await fn();
  return [Number(process.hrtime.bigint() - t0) / 1e9, r];
}

const rows: string[][] = [];
const dir = await mkdtemp(path.join(parent, 'mv-bench-single-'));
try {
  for (const mb of sizesMb) {
    const file = path.join(dir, `bench-${mb}MB.mvd.zst`);
    const [genSeconds, gen] = await timed(() => writeDump(file, mb * 1_000_000));
    const onDisk = (await stat(file)).size;
    const restoreOne = async (messageId: string) =>
      timed(async () => {
        const data = createMemoryStoreData();
        const s = await restoreFromFile(file, async (u) => new MemoryStore(u, data), defaultRestoreOptions({ selection: { messageIds: [messageId] } }));
        if (!s || s.messages !== 1 || s.access !== 'random-access') throw new Error(`restore of ${messageId} did not restore one message at random: ${JSON.stringify(s)}`);
      });
    await restoreOne(gen.middleMessageId); // warm the page cache for the trailer/TOC as a real second lookup would
    const [restoreLast] = await restoreOne(gen.lastMessageId);
    const [restoreMiddle] = await restoreOne(gen.middleMessageId);
    const [extractSeconds] = await timed(async () => {
      const r = await extractMessageFromFile(file, { user: 'bench', mailbox: 'Archive/0000', uid: 17 }, async (_rec, body) => {
        for await (const _ of body) void _;
      });
      if (!r) throw new Error('extract could not read at random');
    });
    const [fullSeconds, summary] = await timed(() => verify(createReadStream(file, { highWaterMark: 1 << 20 })));
    rows.push([`${mb} MB`, String(gen.messages), `${(onDisk / 1e6).toFixed(0)} MB`, restoreLast.toFixed(3), restoreMiddle.toFixed(3), extractSeconds.toFixed(3), fullSeconds.toFixed(2), `${(fullSeconds / restoreLast).toFixed(0)}x`, genSeconds.toFixed(0)]);
    void summary;
    await rm(file, { force: true });
    process.stderr.write(`done ${mb} MB\n`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

const head = ['dump (uncompressed)', 'messages', 'on disk (zstd:1)', 'restore last msg s', 'restore middle s', 'extract s', 'full read (verify) s', 'ratio', 'generate s'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
console.log(line(head));
for (const r of rows) console.log(line(r));
