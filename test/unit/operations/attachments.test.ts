import { createHash } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import test from 'ava';
import { DumpWriter } from '../../../src/archive/writer.js';
import { readDump } from '../../../src/archive/reader.js';
import { parseLocation } from '../../../src/storage/location.js';
import { openSdboxStore } from '../../../src/storage/dbox/single/index.js';
import { openMdboxStore } from '../../../src/storage/dbox/multi/index.js';
import type { MessageInfo, MessageSource } from '../../../src/storage/types.js';
import { backup, defaultBackupOptions } from '../../../src/operations/backup.js';
import { findCandidates, splitMessage } from '../../../src/operations/attachments.js';
import { STORES, copyFixture } from '../storage/dbox/fixture-copy.js';
import { collector, HEADER } from '../archive/sample-dump.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function bytesOf(s: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

function opener(root: string): (user: string) => Promise<MessageSource> {
  return async (user) =>
    user === 'carol'
      ? openSdboxStore(parseLocation(`sdbox:${root}/sdbox/root`, { user }), user, { attachmentDir: path.join(root, 'sdbox/attachments') })
      : openMdboxStore(parseLocation(`mdbox:${root}/mdbox/root`, { user }), user, { attachmentDir: path.join(root, 'mdbox/attachments') });
}

/** Every message of a user as the driver serves it, by "mailbox/uid". */
async function driverMessages(source: MessageSource): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const box of await source.listMailboxes()) {
    if (!box.selectable) continue;
    const r = await source.openMailbox(box.name);
    for await (const m of r.messages()) out.set(`${box.name}/${m.uid}`, await bytesOf(await r.openMessage(m)));
    await r.close();
  }
  return out;
}

async function dumpAndRead(root: string): Promise<{ summary: Awaited<ReturnType<typeof backup>>; messages: Map<string, Buffer>; blobs: Buffer[] }> {
  const out = collector();
  const writer = await DumpWriter.create(out.stream, HEADER, { parts: true });
  const summary = await backup(['carol', 'dave'], opener(root), writer, defaultBackupOptions());
  await writer.finish();
  const messages = new Map<string, Buffer>();
  for await (const e of readDump(Readable.from([out.bytes()]))) {
    if (e.type === 'message') messages.set(`${e.record.user}:${e.record.mailbox}/${e.record.uid}`, await bytesOf(e.openBody()));
  }
  // Blob members straight from the tar: name = sha256 of content.
  const { splitMembers } = await import('../archive/sample-dump.js');
  const blobs = (await splitMembers(out.bytes())).filter((m) => m.name.startsWith('blobs/')).map((m) => m.data);
  return { summary, messages, blobs };
}

test('backup of the sdbox and mdbox SIS fixtures: messages rebuild byte-exactly, each distinct attachment is one blob', async (t) => {
  const { summary, messages, blobs } = await dumpAndRead(STORES);
  t.deepEqual(summary.skipped, []);
  t.true(summary.messagesAsParts > 0);
  for (const user of ['carol', 'dave']) {
    const source = await opener(STORES)(user);
    const want = await driverMessages(source);
    await source.close();
    for (const [key, bytes] of want) t.true(messages.get(`${user}:${key}`)?.equals(bytes), `${user} ${key}`);
  }
  // Distinct decoded attachment contents across both stores = blobs, each once.
  const contents = new Set<string>();
  for (const kind of ['sdbox', 'mdbox']) {
    const dir = path.join(STORES, kind, 'attachments');
    for (const f of await readdir(dir, { recursive: true, withFileTypes: true })) {
      if (f.isFile()) contents.add(sha(await readFile(path.join(f.parentPath, f.name))));
    }
  }
  t.is(blobs.length, contents.size);
  t.deepEqual(blobs.map(sha).sort(), [...contents].sort());
  t.is(summary.blobs, contents.size);
});

test('a missing attachment file: that message is skipped with mailbox, UID and reason; the rest is complete', async (t) => {
  const copy = await copyFixture('sdbox');
  try {
    const root = path.dirname(copy.dir);
    const attachments = path.join(copy.dir, 'attachments');
    const files = (await readdir(attachments, { recursive: true, withFileTypes: true })).filter((f) => f.isFile());
    const victim = files[0]!;
    await rm(path.join(victim.parentPath, victim.name));
    const uid = Number(victim.name.split('-').at(-1));
    const out = collector();
    const writer = await DumpWriter.create(out.stream, HEADER, { parts: true });
    const source = async (user: string): Promise<MessageSource> => openSdboxStore(parseLocation(`sdbox:${copy.dir}/root`, { user }), user, { attachmentDir: attachments });
    const summary = await backup(['carol'], source, writer, defaultBackupOptions());
    await writer.finish();
    t.is(summary.skipped.length, 1);
    t.is(summary.skipped[0]!.uid, uid);
    t.is(summary.skipped[0]!.code, 'STORAGE_NOT_FOUND');
    t.regex(summary.skipped[0]!.reason, /external attachment .* is missing/);
    let n = 0;
    for await (const e of readDump(Readable.from([out.bytes()]))) if (e.type === 'message') n++;
    t.is(n, summary.messages);
    void root;
  } finally {
    await copy.cleanup();
  }
});

const b64 = (b: Buffer, l: number, eol: string): string => (b.toString('base64').match(new RegExp(`.{1,${l}}`, 'g')) ?? []).join(eol);
const payload = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) & 0xff));

function mime(parts: string[], eol = '\n'): Buffer {
  const head = ['From: a@example.org', 'Subject: split me', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="XX"', '', 'preamble', ''].join(eol);
  return Buffer.from(head + parts.map((p) => `--XX${eol}${p}${eol}`).join('') + `--XX--${eol}epilogue${eol}`);
}
const attachment = (data: Buffer, eol = '\n', l = 76, type = 'application/pdf'): string =>
  [`Content-Type: ${type}; name="a.pdf"`, 'Content-Transfer-Encoding: base64', '', b64(data, l, eol), ''].join(eol);

async function split(msg: Buffer, minSize = 1000) {
  const info: MessageInfo = { uid: 1, guid: null, flags: [], keywords: [], internalDate: 0, saveDate: null, size: msg.length, modseq: null };
  return splitMessage(async () => Readable.from([msg]), info, { minSize });
}

async function rebuild(parts: NonNullable<Awaited<ReturnType<typeof split>>>['parts']): Promise<Buffer> {
  const { encodeBase64Lines } = await import('../../../src/core/base64-lines.js');
  const out: Buffer[] = [];
  for (const p of parts) {
    if (p.kind === 'inline') out.push(p.data);
    else if (p.encoding.type === 'base64') out.push((await bytesOf(encodeBase64Lines(await p.open(), p.encoding.lineLength, p.encoding.crlf))).subarray(0, p.size));
  }
  return Buffer.concat(out);
}

test('splitMessage: base64 attachments (LF and CRLF, nested multipart) become blobs; the parts rebuild the exact bytes', async (t) => {
  const a = payload(5000, 1);
  const b = payload(3001, 2);
  for (const eol of ['\n', '\r\n']) {
    const nested = [`Content-Type: multipart/alternative; boundary="YY"`, '', `--YY`, 'Content-Type: text/plain', '', 'hello', `--YY`, attachment(b, eol, 64, 'image/png'), `--YY--`, ''].join(eol);
    const msg = mime(['Content-Type: text/plain' + eol + eol + 'body text' + eol, attachment(a, eol), nested], eol);
    const s = await split(msg);
    t.truthy(s);
    const blobs = s!.parts.filter((p) => p.kind === 'attachment');
    t.is(blobs.length, 2);
    const contents = await Promise.all(blobs.map(async (p) => bytesOf(await (p as { open(): Promise<Readable> }).open())));
    t.true(contents[0]!.equals(a));
    t.true(contents[1]!.equals(b));
    t.true((await rebuild(s!.parts)).equals(msg));
    t.is(s!.sha256, sha(msg));
    t.is(s!.summary.subject, 'split me');
    await s!.dispose();
  }
});

test('splitMessage leaves alone what would not re-encode exactly or is not worth it', async (t) => {
  const a = payload(5000, 3);
  // Small attachment (below min size), text/* part, irregular line lengths, non-canonical padding bits.
  t.is(await split(mime([attachment(payload(100, 1))]), 1000), null);
  t.is(await split(mime([attachment(a, '\n', 76, 'text/plain')])), null);
  const irregular = b64(a, 76, '\n').replace(/\n/, '').replace(/(.{60})/, '$1\n');
  t.is(await split(mime([`Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n${irregular}\n`])), null);
  const odd = payload(4999, 4); // 4999 % 3 == 1: "==" padding; set unused bits
  const text = b64(odd, 76, '\n');
  const last = text.at(-3)!;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const bent = text.slice(0, -3) + alphabet[alphabet.indexOf(last) | 1] + '==';
  t.is(await split(mime([`Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n${bent}\n`])), null);
  // A whole message below the minimum is never read.
  let opened = false;
  const info: MessageInfo = { uid: 1, guid: null, flags: [], keywords: [], internalDate: 0, saveDate: null, size: 10, modseq: null };
  t.is(await splitMessage(async () => { opened = true; return Readable.from([Buffer.alloc(10)]); }, info, { minSize: 1000 }), null);
  t.false(opened);
});

test('findCandidates: a boundary inside base64-like text ends the part; trailing blank lines stay inline', async (t) => {
  const a = payload(3000, 5);
  const msg = mime([attachment(a) + '\n\n']);
  const c = await findCandidates(Readable.from([msg]), 100);
  t.is(c.length, 1);
  const text = msg.subarray(c[0]!.start, c[0]!.end).toString();
  t.deepEqual(Buffer.from(text, 'base64'), a);
  t.false(text.endsWith('\n'));
});

test('--dedup-attachments through backup: two messages sharing an attachment give one blob, both rebuild exactly', async (t) => {
  const a = payload(40000, 9);
  const m1 = mime([attachment(a)]);
  const m2 = mime(['Content-Type: text/plain\n\nother\n', attachment(a, '\n', 64)]);
  const infos: MessageInfo[] = [m1, m2].map((m, i) => ({ uid: i + 1, guid: null, flags: [], keywords: [], internalDate: 1700000000, saveDate: null, size: m.length, modseq: null }));
  const bodies = [m1, m2];
  const source: MessageSource = {
    driverName: 'fake',
    capabilities: { preservesUids: true, preservesMailboxIdentity: true, hasMessageGuids: false, hasModseq: false, hasSaveDate: false, sis: false, filePerMessage: true, writable: false },
    user: 'u',
    listMailboxes: async () => [{ name: 'INBOX', guid: null, uidValidity: 1, uidNext: 3, highestModseq: null, messageCount: 2, specialUse: [], selectable: true }],
    listSubscriptions: async () => [],
    openMailbox: async () => ({
      info: { name: 'INBOX', guid: null, uidValidity: 1, uidNext: 3, highestModseq: null, messageCount: 2, specialUse: [], selectable: true },
      messages: () => Readable.from(infos),
      openMessage: async (m: MessageInfo) => Readable.from([bodies[m.uid - 1]!]),
      close: async () => undefined,
    }),
    close: async () => undefined,
  };
  const out = collector();
  const writer = await DumpWriter.create(out.stream, HEADER, { parts: true });
  const summary = await backup(['u'], async () => source, writer, defaultBackupOptions({ dedupAttachments: { minSize: 1000 } }));
  await writer.finish();
  t.is(summary.messagesAsParts, 2);
  t.is(summary.blobs, 1);
  t.is(summary.blobBytes, a.length);
  const got: Buffer[] = [];
  for await (const e of readDump(Readable.from([out.bytes()]))) if (e.type === 'message') got.push(await bytesOf(e.openBody()));
  t.true(got[0]!.equals(m1));
  t.true(got[1]!.equals(m2));
  t.true(out.bytes().length < m1.length + m2.length);
});

test('a base64 attachment in one line longer than readers take (1 MiB) is stored whole, by --dedup-attachments and from SIS parts alike', async (t) => {
  const big = payload(800_000, 3); // 1,066,668 characters of base64 in one line
  const m1 = mime([attachment(payload(40000, 9))]);
  const m2 = mime([attachment(big, '\n', 2_000_000)]);
  t.is(m2.toString('latin1').split('\n').filter((l) => l.length > 1024 * 1024).length, 1);
  const bodies = [m1, m2];
  const infos: MessageInfo[] = bodies.map((m, i) => ({ uid: i + 1, guid: null, flags: [], keywords: [], internalDate: 1700000000, saveDate: null, size: m.length, modseq: null }));
  // For the SIS case: the driver hands message 2 out as parts, its attachment as one base64 line.
  const head = m2.subarray(0, m2.indexOf(big.toString('base64').slice(0, 64)));
  const tail = m2.subarray(head.length + Math.ceil(big.length / 3) * 4);
  const sisParts = async (m: MessageInfo) =>
    m.uid !== 2
      ? null
      : [
          { kind: 'inline' as const, data: head },
          { kind: 'attachment' as const, size: Math.ceil(big.length / 3) * 4, encoding: { type: 'base64' as const, lineLength: 2_000_000, crlf: false }, contentSize: big.length, open: async () => Readable.from([big]) },
          { kind: 'inline' as const, data: tail },
        ];
  for (const sis of [false, true]) {
    const info = { name: 'INBOX', guid: null, uidValidity: 1, uidNext: 3, highestModseq: null, messageCount: 2, specialUse: [], selectable: true };
    const source: MessageSource = {
      driverName: 'fake',
      capabilities: { preservesUids: true, preservesMailboxIdentity: true, hasMessageGuids: false, hasModseq: false, hasSaveDate: false, sis, filePerMessage: true, writable: false },
      user: 'u',
      listMailboxes: async () => [info],
      listSubscriptions: async () => [],
      openMailbox: async () => ({
        info,
        messages: () => Readable.from(infos),
        openMessage: async (m: MessageInfo) => Readable.from([bodies[m.uid - 1]!]),
        ...(sis ? { openMessageParts: sisParts } : {}),
        close: async () => undefined,
      }),
      close: async () => undefined,
    };
    const out = collector();
    const writer = await DumpWriter.create(out.stream, HEADER, { parts: true });
    const summary = await backup(['u'], async () => source, writer, defaultBackupOptions(sis ? {} : { dedupAttachments: { minSize: 1000 } }));
    await writer.finish();
    t.deepEqual(summary.skipped, [], sis ? 'SIS' : 'dedup');
    t.is(summary.messagesAsParts, sis ? 0 : 1, sis ? 'SIS' : 'dedup');
    const got: Buffer[] = [];
    for await (const e of readDump(Readable.from([out.bytes()]))) if (e.type === 'message') got.push(await bytesOf(e.openBody()));
    t.is(got.length, 2);
    t.true(got[0]!.equals(m1));
    t.true(got[1]!.equals(m2), 'the long-line message reads back, whole');
  }
  // The writer itself refuses such a part before writing anything.
  const out = collector();
  const writer = await DumpWriter.create(out.stream, HEADER, { parts: true });
  const parts = (await sisParts(infos[1]!))!.map((p) => (p.kind === 'inline' ? p : { ...p }));
  await t.throwsAsync(writer.writeMessageParts({ user: 'u', mailbox: 'INBOX', uid: 2, guid: null, flags: [], keywords: [], internalDate: '2023-11-14T22:13:20Z', saveDate: null, modseq: null, size: m2.length, summary: { from: '', subject: '', messageId: '', date: '' }, extra: {} }, parts), { message: /base64 lines of 2000000 characters/ });
  t.true(writer.usable);
});
