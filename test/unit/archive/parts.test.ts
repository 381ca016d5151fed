import { createHash } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { execFileSync } from 'node:child_process';
import test from 'ava';
import { ArchiveCorruptError, ArchiveOrderError, IntegrityError, StorageNotFoundError, UsageError } from '../../../src/core/errors.js';
import { DumpWriter, type WriterPart } from '../../../src/archive/writer.js';
import { openDumpFile } from '../../../src/archive/random-access.js';
import { encodeBase64Lines } from '../../../src/core/base64-lines.js';
import { encodedLength } from '../../../src/archive/parts.js';
import { encodeRecord } from '../../../src/archive/record-codec.js';
import { FORMAT_VERSION_WRITTEN } from '../../../src/archive/records.js';
import { extractMessage, extractMessageFromFile } from '../../../src/operations/extract.js';
import { chunked, collector, HEADER, mailbox, message, packMembers, readAll, splitMembers, type RawMember } from './sample-dump.js';
import { ATTACHMENTS, buildMessage, bytes as bytesOf, writePartsDump } from './parts-sample.js';
import { tempDir } from '../../helpers/temp.js';
import { specDigest } from './spec-digest.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const good = writePartsDump();

async function streamBytes(s: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

test('encodedLength equals the encoder output for every size and line shape', async (t) => {
  for (const n of [0, 1, 2, 3, 4, 56, 57, 58, 113, 114, 1000, 3000]) {
    for (const [lineLength, crlf] of [[76, false], [76, true], [64, false], [1, false], [5, true]] as const) {
      const out = await streamBytes(encodeBase64Lines(Readable.from([Buffer.alloc(n, 7)]), lineLength, crlf));
      t.is(out.length, encodedLength(n, { type: 'base64', lineLength, crlf }), `n=${n} L=${lineLength} crlf=${crlf}`);
      const lines = out.toString('latin1').split(crlf ? '\r\n' : '\n');
      if (n > 0) t.true(lines.slice(0, -1).every((l) => l.length === lineLength) && lines.at(-1)!.length <= lineLength && lines.at(-1)!.length > 0);
      t.deepEqual(Buffer.from(lines.join(''), 'base64'), Buffer.alloc(n, 7));
    }
  }
});

test('one-pass reader: every message rebuilds byte-exactly; each distinct blob is stored once, before its first use', async (t) => {
  const { dump, messages } = await good;
  const members = await splitMembers(dump);
  const blobs = members.filter((m) => m.name.startsWith('blobs/'));
  t.is(blobs.length, 4);
  t.is(new Set(blobs.map((b) => b.name)).size, 4);
  for (const b of blobs) t.is(path.basename(b.name), sha(b.data), 'blob content hashes to its name');
  t.deepEqual(new Set(blobs.map((b) => b.data.length)), new Set(Object.values(ATTACHMENTS).map((a) => a.length)));
  // The first stub referencing a blob comes after it.
  const firstA = members.findIndex((m) => m.name.startsWith('blobs/') && m.data.equals(ATTACHMENTS.a));
  const firstStub = members.findIndex((m) => m.name.endsWith('.stub'));
  t.true(firstA < firstStub);
  t.true(members.some((m) => m.name === 'users/alice/mailboxes/INBOX/15.eml'), 'a message without attachments is stored whole');
  const { entries, bodies } = await readAll(chunked(dump, 997));
  t.is((entries[0] as { record: { version: number } }).record.version, FORMAT_VERSION_WRITTEN);
  const got = new Map<string, Buffer>();
  for (const e of entries) if (e.type === 'message') got.set(`${e.record.user}/${e.record.mailbox}/${e.record.uid}`, bodies.get(e.id)!);
  t.is(got.size, messages.size);
  for (const [key, full] of messages) t.true(got.get(key)?.equals(full), key);
  const trailer = entries.at(-1)!;
  t.is(trailer.type, 'trailer');
  if (trailer.type === 'trailer') {
    t.is(trailer.record.counts.blobs, 4);
    t.is(trailer.record.counts.messageBytes, [...messages.values()].reduce((n, b) => n + b.length, 0));
  }
});

test('wantBody=false still rebuilds and checks the message; no blob spool is left behind', async (t) => {
  const { dump } = await good;
  const dir = await tempDir(t, 'mv-spool-test-');
  const { entries } = await readAll(chunked(dump, 4096), { wantBody: () => false, blobSpoolDir: dir });
  t.is(entries.filter((e) => e.type === 'message').length, 7);
  t.deepEqual(await readdir(dir), []);
});

test('random access and extract rebuild a message from its stub and blobs', async (t) => {
  const { dump, messages } = await good;
  const dir = await tempDir(t, 'mv-parts-');
  const file = path.join(dir, 'parts.mvd');
  await writeFile(file, dump);
  const f = await openDumpFile(file);
  let n = 0;
  for await (const e of f.entries()) {
    if (e.type !== 'message') continue;
    const { record, body } = await f.readMessage(e.id);
    t.true((await streamBytes(body)).equals(messages.get(`${record.user}/${record.mailbox}/${record.uid}`)!));
    n++;
  }
  t.is(n, 7);
  await f.close();
  const want = messages.get('bob/INBOX/3')!;
  let fromFile: Buffer = Buffer.alloc(0);
  await extractMessageFromFile(file, { user: 'bob', mailbox: 'INBOX', uid: 3 }, async (_r, body) => { fromFile = await streamBytes(body); });
  t.true(fromFile.equals(want));
  let scanned: Buffer = Buffer.alloc(0);
  await extractMessage(chunked(dump, 512), { user: 'alice', mailbox: 'INBOX', uid: 6 }, async (_r, body) => { scanned = await streamBytes(body); });
  t.true(scanned.equals(messages.get('alice/INBOX/6')!));
  await t.throwsAsync(extractMessage(chunked(dump), { user: 'bob', mailbox: 'INBOX', uid: 99 }, async () => undefined), { instanceOf: StorageNotFoundError });
  // tar xf gives the stub and the blobs, named by their sha256 (sha256sum -c checks them).
  execFileSync('tar', ['xf', file, '-C', dir]);
  const blobNames = (await readdir(path.join(dir, 'blobs'), { recursive: true })).filter((p) => /[0-9a-f]{64}$/.test(p));
  t.is(blobNames.length, 4);
  const check = execFileSync('sh', ['-c', 'cd "$1" && for f in blobs/*/*; do echo "$(basename $f)  $f"; done | sha256sum -c --quiet && echo ok', 'sh', dir]).toString();
  t.regex(check, /ok/);
});

function editRecord(m: RawMember, change: (o: Record<string, unknown>) => void): RawMember {
  const o = JSON.parse(m.data.toString()) as Record<string, unknown>;
  delete o['check'];
  change(o);
  return { ...m, data: encodeRecord(o) };
}

/** Members up to (not including) the TOC: damage tests stop before it anyway. */
async function body(): Promise<RawMember[]> {
  const list = await splitMembers((await good).dump);
  return list;
}

const blobA = (list: RawMember[]): RawMember => list.find((m) => m.name.startsWith('blobs/') && m.data.equals(ATTACHMENTS.a))!;

test('damaged: a missing blob is an order error naming the stub and the blob', async (t) => {
  const list = await body();
  const a = blobA(list);
  const err = await t.throwsAsync(readAll(chunked(packMembers(list.filter((m) => m !== a)))), { instanceOf: ArchiveOrderError });
  t.regex(err!.message, /member "users\/alice\/mailboxes\/INBOX\/3\.stub"/);
  t.true(err!.message.includes(`needs blob "${a.name}"`));
});

test('damaged: a blob after its first use is an order error naming both members (one-pass and random access)', async (t) => {
  const list = await body();
  const a = blobA(list);
  const without = list.filter((m) => m !== a);
  const at = without.findIndex((m) => m.name === 'users/alice/mailboxes/INBOX/3.json') + 1;
  const moved = [...without.slice(0, at), a, ...without.slice(at)];
  const err = await t.throwsAsync(readAll(chunked(packMembers(moved))), { instanceOf: ArchiveOrderError });
  t.regex(err!.message, /"users\/alice\/mailboxes\/INBOX\/3\.stub".*needs blob "blobs\//);
  t.true(err!.message.includes(a.name));
});

test('damaged: a blob whose content does not hash to its name is corrupt', async (t) => {
  const list = await body();
  const a = blobA(list);
  const flipped = Buffer.from(a.data);
  flipped[100] ^= 1;
  const err = await t.throwsAsync(readAll(chunked(packMembers(list.map((m) => (m === a ? { ...m, data: flipped } : m))))), { instanceOf: ArchiveCorruptError });
  t.true(err!.message.includes(a.name));
  t.regex(err!.message, /hashes to [0-9a-f]{64}, not to its name/);
});

test('damaged: a truncated stub, and parts that do not add up, are corrupt naming the message', async (t) => {
  const list = await body();
  const stub = list.find((m) => m.name === 'users/alice/mailboxes/INBOX/6.stub')!;
  const cut = list.map((m) => (m === stub ? { ...m, data: m.data.subarray(0, m.data.length - 10) } : m));
  const err = await t.throwsAsync(readAll(chunked(packMembers(cut))), { instanceOf: ArchiveCorruptError });
  t.regex(err!.message, /message UID 6 of mailbox "INBOX" \(user "alice"\).*the stub was damaged/);
  const rec = list.find((m) => m.name === 'users/alice/mailboxes/INBOX/6.json')!;
  const bad = list.map((m) => (m === rec ? editRecord(m, (o) => { (o['parts'] as Array<Record<string, unknown>>)[1]!['size'] = 10; }) : m));
  const err2 = await t.throwsAsync(readAll(chunked(packMembers(bad))), { instanceOf: ArchiveCorruptError });
  t.regex(err2!.message, /INBOX\/6\.json.*parts add up to/);
  // A record whose full sha256 is wrong: the rebuilt message does not match.
  const wrong = list.map((m) => (m === rec ? editRecord(m, (o) => { o['sha256'] = '0'.repeat(64); }) : m));
  const err3 = await t.throwsAsync(readAll(chunked(packMembers(wrong))), { instanceOf: ArchiveCorruptError });
  t.regex(err3!.message, /rebuild \d+ bytes with sha256 [0-9a-f]{64}, the record says/);
});

test('writer: attachments read through openChunks into a reused scratch (several chunks each) rebuild byte-exactly', async (t) => {
  // 600 KB and 300 KB contents: more than one 256 KiB scratch read each, base64 groups and lines
  // carried across reads. openChunks fills the writer's scratch as the dbox driver does; a chunk kept
  // past the next read would corrupt the hashes.
  const big = bytesOf(600_001, 11);
  const mid = bytesOf(300_000, 12);
  let scratchReads = 0;
  const viaScratch = (content: Buffer) => (scratch: Buffer): AsyncIterable<Buffer> =>
    (async function* () {
      for (let at = 0; at < content.length; at += scratch.length) {
        const n = content.copy(scratch, 0, at, at + scratch.length);
        scratchReads++;
        yield scratch.subarray(0, n);
      }
    })();
  const { parts, full } = await buildMessage([{ inline: 'Subject: big\n\n' }, { content: big, encoding: { type: 'base64', lineLength: 76, crlf: true } }, { inline: '\n--\n' }, { content: mid, encoding: { type: 'raw' } }, { content: big }]);
  const contents = [big, mid, big];
  let k = 0;
  const withChunks = parts.map((p) => (p.kind === 'attachment' ? { ...p, openChunks: viaScratch(contents[k++]!) } : p));
  const out = collector();
  const w = await DumpWriter.create(out.stream, HEADER, { parts: true });
  await w.writeUser({ user: 'u', subscriptions: [] });
  await w.writeMailbox(mailbox('u', 'INBOX', []).record);
  const r = await w.writeMessageParts(message('u', 'INBOX', 1, full).input, withChunks, sha(full));
  await w.finish();
  t.is(r.sha256, sha(full));
  t.true(scratchReads >= 8, `${scratchReads} scratch reads`);
  const { entries, bodies } = await readAll(chunked(out.bytes(), 4096));
  const m = entries.find((e) => e.type === 'message')!;
  t.true(bodies.get(m.id)!.equals(full));
});

test('version 1 dumps cannot hold stubs; a writer created without parts refuses them', async (t) => {
  const list = await body();
  const v1 = list.map((m) => (m.name === 'mailvault/header.json' ? editRecord(m, (o) => { o['version'] = 1; }) : m));
  const err = await t.throwsAsync(readAll(chunked(packMembers(v1))), { instanceOf: ArchiveCorruptError });
  t.regex(err!.message, /stub member needs format version 2/);
  const out = collector();
  const w = await DumpWriter.create(out.stream, HEADER);
  t.is(w.headerRecord.version, FORMAT_VERSION_WRITTEN);
  t.false(w.partsAllowed);
  await w.writeUser({ user: 'u', subscriptions: [] });
  await w.writeMailbox(mailbox('u', 'INBOX', []).record);
  const { parts, full } = await buildMessage([{ inline: 'x\n' }, { content: ATTACHMENTS.a }]);
  await t.throwsAsync(w.writeMessageParts(message('u', 'INBOX', 1, full).input, parts), { instanceOf: UsageError, message: /created without \{ parts: true \}/ });
  await w.abort(new Error('done'));
});

test('writer: an attachment that fails, or parts that do not rebuild the expected bytes, write nothing; the writer stays usable', async (t) => {
  const out = collector();
  const w = await DumpWriter.create(out.stream, HEADER, { parts: true });
  await w.writeUser({ user: 'u', subscriptions: [] });
  await w.writeMailbox(mailbox('u', 'INBOX', []).record);
  const { parts, full } = await buildMessage([{ inline: 'Subject: x\n\n' }, { content: ATTACHMENTS.a }, { inline: '\n' }]);
  const input = message('u', 'INBOX', 1, full).input;
  const failing = parts.map((p) => (p.kind === 'attachment' ? { ...p, open: async () => { throw new StorageNotFoundError('attachment file is missing'); } } : p));
  await t.throwsAsync(w.writeMessageParts(input, failing), { instanceOf: StorageNotFoundError });
  const short = parts.map((p) => (p.kind === 'attachment' ? { ...p, open: async () => Readable.from([ATTACHMENTS.a.subarray(0, 2000)]) } : p));
  await t.throwsAsync(w.writeMessageParts(input, short), { instanceOf: IntegrityError, message: /content has 2000 bytes, 3000 were expected/ });
  await t.throwsAsync(w.writeMessageParts(input, parts, '0'.repeat(64)), { instanceOf: IntegrityError, message: /rebuild to sha256/ });
  t.true(w.usable);
  t.false(w.hasBlob(sha(ATTACHMENTS.a)));
  const r = await w.writeMessageParts(input, parts, sha(full));
  t.deepEqual(r.blobs, [sha(ATTACHMENTS.a)]);
  t.is(r.blobsWritten, 1);
  t.true(w.hasBlob(sha(ATTACHMENTS.a)));
  await w.finish();
  const { bodies } = await readAll(chunked(out.bytes()));
  t.true([...bodies.values()][0]!.equals(full));
});

test('writer: an attachment seen again (same contentKey) is taken from its kept encoding, not opened; every message still rebuilds byte-exactly', async (t) => {
  const content = bytesOf(50_000, 21);
  const lf = { type: 'base64', lineLength: 76, crlf: false } as const;
  const crlf = { type: 'base64', lineLength: 64, crlf: true } as const;
  let opens = 0;
  const keyed = (parts: readonly WriterPart[], key: string): WriterPart[] =>
    parts.map((p) => (p.kind === 'attachment' ? { ...p, contentKey: key, open: async () => { opens++; return p.open(); } } : p));
  const specs: Array<{ encoding: typeof lf | typeof crlf; cut?: number }> = [{ encoding: lf }, { encoding: lf }, { encoding: lf, cut: 1000 }, { encoding: crlf }, { encoding: lf }];
  const built = await Promise.all(specs.map((s, i) => buildMessage([{ inline: `Subject: ${i}\n\n` }, { content, encoding: s.encoding, ...(s.cut !== undefined ? { cut: s.cut } : {}) }, { inline: '\n' }])));
  const out = collector();
  const w = await DumpWriter.create(out.stream, HEADER, { parts: true });
  await w.writeUser({ user: 'u', subscriptions: [] });
  await w.writeMailbox(mailbox('u', 'INBOX', []).record);
  const opensPerMessage: number[] = [];
  for (const [i, b] of built.entries()) {
    const before = opens;
    const r = await w.writeMessageParts(message('u', 'INBOX', i + 1, b.full).input, keyed(b.parts, 'k1'), sha(b.full));
    t.is(r.sha256, sha(b.full));
    t.deepEqual(r.blobs, [sha(content)]);
    opensPerMessage.push(opens - before);
  }
  // 1st: hashed, and its blob written from the bytes hashed (1 open); 2nd: hashed, its encoding kept;
  // 3rd (a cut) and 5th: from the kept encoding; 4th: another encoding, opened.
  t.deepEqual(opensPerMessage, [1, 1, 0, 1, 0]);
  // A part longer than the kept encoding can give: nothing written, the writer stays usable.
  const tooLong = built[0]!.parts.map((p) => (p.kind === 'attachment' ? { ...p, size: p.size + 10 } : p));
  await t.throwsAsync(w.writeMessageParts(message('u', 'INBOX', 10, built[0]!.full).input, keyed(tooLong, 'k1')), { instanceOf: IntegrityError, message: /encodes to \d+ bytes, the part needs/ });
  t.true(w.usable);
  await w.finish();
  const { entries, bodies } = await readAll(chunked(out.bytes(), 4096));
  const got = entries.filter((e) => e.type === 'message').map((e) => bodies.get(e.id)!);
  t.is(got.length, built.length);
  for (const [i, b] of built.entries()) t.true(got[i]!.equals(b.full), `message ${i + 1}`);
});

test('writer: the kept encodings stay within their budget: the least recently used are dropped and read again when needed', async (t) => {
  // 40 distinct 400 KB contents, each kept from its second message: about 22 MB of base64, over
  // the 16 MiB budget.
  const contents = Array.from({ length: 40 }, (_, k) => bytesOf(400_000, 100 + k));
  let opens = 0;
  const out = collector();
  const w = await DumpWriter.create(out.stream, HEADER, { parts: true });
  await w.writeUser({ user: 'u', subscriptions: [] });
  await w.writeMailbox(mailbox('u', 'INBOX', []).record);
  let uid = 0;
  const writeWith = async (k: number): Promise<number> => {
    const b = await buildMessage([{ inline: `Subject: ${k}\n\n` }, { content: contents[k]! }]);
    const parts = b.parts.map((p) => (p.kind === 'attachment' ? { ...p, contentKey: `content-${k}`, open: async () => { opens++; return p.open(); } } : p));
    const before = opens;
    const r = await w.writeMessageParts(message('u', 'INBOX', ++uid, b.full).input, parts, sha(b.full));
    t.is(r.sha256, sha(b.full));
    return opens - before;
  };
  for (let k = 0; k < contents.length; k++) {
    await writeWith(k);
    await writeWith(k); // kept from here on
  }
  t.is(await writeWith(39), 0, 'the most recent is still kept');
  t.is(await writeWith(0), 1, 'the oldest was dropped: read (and hashed) again');
  await w.finish();
  const { entries } = await readAll(chunked(out.bytes(), 65536));
  t.is(entries.filter((e) => e.type === 'message').length, 82);
});

test('version 4 digest over a dump with parts: stubs and blobs enter it as their sha256 (spec rule, from the TOC spans)', async (t) => {
  const { dump } = await good;
  const d = specDigest(dump);
  t.is(d.trailer.algorithm, 'sha256-hashed-content');
  t.true(d.contentMembers.some((m) => m.endsWith('.stub')) && d.contentMembers.some((m) => m.endsWith('.eml')) && d.contentMembers.some((m) => m.startsWith('blobs/')));
  t.is(d.computed, d.trailer.value);
});

test('version 4: the padding after a stub and after a blob must be zeros', async (t) => {
  const { dump } = await good;
  const members = await splitMembers(dump);
  for (const m of [members.find((x) => x.name.endsWith('.stub') && x.data.length % 512 !== 0)!, members.find((x) => x.name.startsWith('blobs/') && x.data.length % 512 !== 0)!]) {
    const padAt = m.dataOffset + m.data.length;
    const bad = Buffer.from(dump);
    bad[padAt + 1] = 0x20;
    const err = await t.throwsAsync(readAll(chunked(bad, 4096)), { instanceOf: ArchiveCorruptError });
    t.regex(err!.message, new RegExp(`member "${m.name}" at offset ${padAt}: the padding after the data is not zero bytes`));
  }
});

test('a stub over 1 MiB (a large inline part) is message bytes, not a JSON record: it reads back', async (t) => {
  const out = collector();
  const w = await DumpWriter.create(out.stream, HEADER, { parts: true });
  await w.writeUser({ user: 'u', subscriptions: [] });
  await w.writeMailbox(mailbox('u', 'INBOX', []).record);
  const { parts, full } = await buildMessage([{ inline: `Subject: big\n\n${'x'.repeat(1100 * 1024)}\n` }, { content: ATTACHMENTS.a }, { inline: '\n' }]);
  await w.writeMessageParts(message('u', 'INBOX', 1, full).input, parts);
  await w.finish();
  const { entries, bodies } = await readAll(chunked(out.bytes(), 65536));
  const m = entries.find((e) => e.type === 'message');
  t.truthy(m);
  t.true(bodies.get(m!.type === 'message' ? m!.id : -1)!.equals(full));
});

test('writer: a new blob is written from the very bytes hashed (opened once, even if the source changes after); one over the 8 MiB kept per message is read again and checked', async (t) => {
  // Each open of an attachment gives other bytes from its second open on: a blob written from a
  // second read would not match its name.
  const small = bytesOf(300_000, 31);
  const big = bytesOf(8 * 1024 * 1024 + 1, 32);
  const changing = (content: Buffer, opens: { n: number }) => async (): Promise<Readable> => {
    opens.n++;
    if (opens.n === 1) return Readable.from([content.subarray(0, 100_000), content.subarray(100_000)]);
    const other = Buffer.from(content);
    other[0] = other[0]! ^ 0xff;
    return Readable.from([other]);
  };
  const out = collector();
  const w = await DumpWriter.create(out.stream, HEADER, { parts: true });
  await w.writeUser({ user: 'u', subscriptions: [] });
  await w.writeMailbox(mailbox('u', 'INBOX', []).record);
  const a = await buildMessage([{ inline: 'Subject: kept\n\n' }, { content: small }, { inline: '\n--\n' }, { content: small, encoding: { type: 'raw' } }, { inline: '\n' }]);
  const smallOpens = [{ n: 0 }, { n: 0 }];
  let k = 0;
  const r = await w.writeMessageParts(message('u', 'INBOX', 1, a.full).input, a.parts.map((p) => (p.kind === 'attachment' ? { ...p, open: changing(small, smallOpens[k++]!) } : p)), sha(a.full));
  t.deepEqual(r.blobs, [sha(small), sha(small)]);
  t.is(r.blobsWritten, 1);
  // Each part opened once, in the hashing pass; none again for the blob write.
  t.deepEqual(smallOpens.map((o) => o.n), [1, 1]);
  // Over the budget: read again to be written; the change is caught, the writer fails.
  const b = await buildMessage([{ inline: 'Subject: big\n\n' }, { content: big }, { inline: '\n' }]);
  const bigOpens = { n: 0 };
  await t.throwsAsync(w.writeMessageParts(message('u', 'INBOX', 2, b.full).input, b.parts.map((p) => (p.kind === 'attachment' ? { ...p, open: changing(big, bigOpens) } : p)), sha(b.full)), { instanceOf: IntegrityError, message: /does not match its name/ });
  t.is(bigOpens.n, 2);
  t.false(w.usable);
  // The dump up to the failure: the first message and its blob read back byte-exactly.
  const w2out = collector();
  const w2 = await DumpWriter.create(w2out.stream, HEADER, { parts: true });
  await w2.writeUser({ user: 'u', subscriptions: [] });
  await w2.writeMailbox(mailbox('u', 'INBOX', []).record);
  await w2.writeMessageParts(message('u', 'INBOX', 1, a.full).input, a.parts.map((p) => (p.kind === 'attachment' ? { ...p, open: changing(small, { n: 0 }) } : p)), sha(a.full));
  t.true(w2.usable);
  await w2.finish();
  const { entries, bodies } = await readAll(chunked(w2out.bytes(), 4096));
  const m = entries.find((e) => e.type === 'message')!;
  t.true(bodies.get(m.id)!.equals(a.full));
});

test('writer: an empty attachment as the first message of a writer (nothing kept yet), alone or beside one over the kept budget, is written and reads back', async (t) => {
  const empty = Buffer.alloc(0);
  const big = bytesOf(8 * 1024 * 1024 + 1, 41);
  for (const contents of [[empty], [big, empty]]) {
    const out = collector();
    const w = await DumpWriter.create(out.stream, HEADER, { parts: true });
    await w.writeUser({ user: 'u', subscriptions: [] });
    await w.writeMailbox(mailbox('u', 'INBOX', []).record);
    const spec = contents.flatMap((content, i) => [{ inline: i === 0 ? 'Subject: e\n\n' : '\n--\n' }, { content, encoding: { type: 'raw' } as const }]);
    const b = await buildMessage([...spec, { inline: '\n' }]);
    const r = await w.writeMessageParts(message('u', 'INBOX', 1, b.full).input, b.parts, sha(b.full));
    t.deepEqual(r.blobs, contents.map((c) => sha(c)));
    t.is(r.blobsWritten, contents.length);
    await w.finish();
    const { entries, bodies } = await readAll(chunked(out.bytes(), 4096));
    const m = entries.find((e) => e.type === 'message')!;
    t.true(bodies.get(m.id)!.equals(b.full));
  }
});
