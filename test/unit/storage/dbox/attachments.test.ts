import test from 'ava';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { IntegrityError, StorageCorruptError } from '../../../../src/core/errors.js';
import { encodeBase64Lines } from '../../../../src/core/base64-lines.js';
import { fileChunks, openSisMessage, parseExtRefs, planSegments, sisMessageParts, type SisMessage } from '../../../../src/storage/dbox/common/attachments.js';
import { readAll } from './store-expectations.js';

test('X refs parse as groups of four tokens', (t) => {
  const refs = parseExtRefs('358 4062 B64 a2/11/a2118-07 4492 2129 - 3e/ce/3ece-08 9000 10 CB76 aa/bb/x', 'u.1');
  t.deepEqual(refs, [
    { start: 358, size: 4062, base64LineLength: 64, crlf: false, relPath: 'a2/11/a2118-07' },
    { start: 4492, size: 2129, base64LineLength: null, crlf: false, relPath: '3e/ce/3ece-08' },
    { start: 9000, size: 10, base64LineLength: 76, crlf: true, relPath: 'aa/bb/x' },
  ]);
  t.throws(() => parseExtRefs('1 2 B76', 'u.1'), { instanceOf: StorageCorruptError, message: /multiple of 4/ });
  t.throws(() => parseExtRefs('1 2 B75 a/b', 'u.1'), { instanceOf: StorageCorruptError });
  t.throws(() => parseExtRefs('1 2 - ../../etc/passwd', 'u.1'), { instanceOf: StorageCorruptError, message: /leaves the attachment directory/ });
  t.throws(() => parseExtRefs('10 20 - a 15 1 - b', 'u.1'), { instanceOf: StorageCorruptError, message: /overlap/ });
});

function reference(data: Buffer, n: number, eol: string): string {
  const b64 = data.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += n) lines.push(b64.slice(i, i + n));
  return lines.join(eol);
}

async function* chunked(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

for (const len of [0, 1, 2, 3, 56, 57, 58, 3000, 10001]) {
  test(`base64 re-encoding of ${len} bytes matches, whatever the chunking`, async (t) => {
    const data = randomBytes(len);
    for (const [n, crlf] of [[76, false], [64, true], [4, false], [73, true], [1, false], [5, true]] as const) {
      for (const chunk of [1, 2, 7, 65536]) {
        const got = (await readAll(encodeBase64Lines(chunked(data, chunk), n, crlf))).toString('latin1');
        t.is(got, reference(data, n, crlf ? '\r\n' : '\n'), `line ${n} crlf ${crlf} chunk ${chunk}`);
      }
    }
  });
}

// Inputs larger than the encoder's step (48 KiB of input per base64 string), in chunks that split
// steps and lines anywhere.
for (const len of [49151, 49152, 49153, 200003]) {
  test(`base64 re-encoding of ${len} bytes (over one encoding step) matches, whatever the chunking`, async (t) => {
    const data = randomBytes(len);
    for (const [n, crlf] of [[76, true], [73, false], [1, false]] as const) {
      for (const chunk of [7, 49153, 65536, 262144]) {
        const got = (await readAll(encodeBase64Lines(chunked(data, chunk), n, crlf))).toString('latin1');
        t.is(got, reference(data, n, crlf ? '\r\n' : '\n'), `line ${n} crlf ${crlf} chunk ${chunk}`);
      }
    }
  });
}

/** Copies every chunk before asking for the next (what a consumer of reused memory must do). */
async function readCopying(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

test('base64 with reuseOutput: chunks share one buffer and, copied as they come, give the same text', async (t) => {
  for (const len of [0, 5, 3000, 49153, 200003]) {
    const data = randomBytes(len);
    for (const [n, crlf] of [[76, true], [73, false], [1, false]] as const) {
      for (const chunk of [7, 65536, 262144]) {
        const buffers = new Set<ArrayBufferLike>();
        const seen = async function* (): AsyncGenerator<Buffer> {
          for await (const c of encodeBase64Lines(chunked(data, chunk), n, crlf, { reuseOutput: true })) {
            buffers.add(c.buffer);
            yield c;
          }
        };
        const got = (await readCopying(seen())).toString('latin1');
        t.is(got, reference(data, n, crlf ? '\r\n' : '\n'), `len ${len} line ${n} crlf ${crlf} chunk ${chunk}`);
        t.true(buffers.size <= 3, `${buffers.size} output buffers`); // grown at most twice, never one per chunk
      }
    }
  }
});

test('fileChunks into a scratch buffer: the same bytes, every chunk a view of the scratch', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'mv-chunks-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'a');
  const data = randomBytes(300_001);
  await writeFile(file, data);
  const scratch = Buffer.alloc(65_536);
  for (const [start, length] of [[0, Number.MAX_SAFE_INTEGER], [17, 200_000], [299_999, 10], [300_001, 5]] as const) {
    let views = true;
    const chunks: Buffer[] = [];
    for await (const c of fileChunks(file, start, length, scratch)) {
      views &&= c.buffer === scratch.buffer && c.byteOffset === scratch.byteOffset && c.length <= scratch.length;
      chunks.push(Buffer.from(c));
    }
    t.true(views, `${start} ${length}`);
    t.deepEqual(Buffer.concat(chunks), data.subarray(start, Math.min(data.length, start + length)), `${start} ${length}`);
    t.deepEqual(await readAll(fileChunks(file, start, length)), data.subarray(start, Math.min(data.length, start + length)));
  }
});

test('stub and references must fit: stub gaps, trailer and full size are checked', (t) => {
  const base: SisMessage = { mailbox: 'INBOX', uid: 7, file: 'u.7', stubOffset: 46, stubSize: 423, fullSize: 4475, refs: parseExtRefs('411 4052 B76 a/b', 'u.7'), attachmentPaths: () => ['x'] };
  t.deepEqual(planSegments(base).map((s) => (s.kind === 'stub' ? [s.from, s.length] : 'ref')), [[0, 411], 'ref', [411, 12]]);
  t.throws(() => planSegments({ ...base, fullSize: 4476 }), { instanceOf: StorageCorruptError, message: /UID 7 in mailbox "INBOX"/ });
  t.throws(() => planSegments({ ...base, stubSize: 400 }), { instanceOf: StorageCorruptError });
});

/** A SIS message on disk: stub file (head + tail) and one base64 attachment file holding `stored`. */
async function sisOnDisk(t: import('ava').ExecutionContext, content: Buffer, stored: Buffer): Promise<{ msg: SisMessage; full: Buffer; attachment: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mv-sis-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const head = Buffer.from('Subject: x\nContent-Transfer-Encoding: base64\n\n');
  const tail = Buffer.from('\n--b--\n');
  const encoded = Buffer.from(reference(content, 76, '\n'));
  const stub = Buffer.concat([Buffer.from('PREFIX'), head, tail]);
  const file = path.join(dir, 'u.9');
  const attachment = path.join(dir, 'ab-cd');
  await writeFile(file, stub);
  await writeFile(attachment, stored);
  const msg: SisMessage = {
    mailbox: 'INBOX', uid: 9, file, stubOffset: 6, stubSize: head.length + tail.length, fullSize: head.length + encoded.length + tail.length,
    refs: parseExtRefs(`${head.length} ${encoded.length} B76 ab-cd`, file), attachmentPaths: () => [attachment],
  };
  return { msg, full: Buffer.concat([head, encoded, tail]), attachment };
}

test('an attachment file with extra bytes fails the message (as i_stream_create_sized does), never cut to size', async (t) => {
  const content = randomBytes(3000);
  const ok = await sisOnDisk(t, content, content);
  t.deepEqual(await readAll(await openSisMessage(ok.msg)), ok.full, 'exact size: the message as stored');
  for (const extra of [1, 5, 3000]) {
    const { msg, attachment } = await sisOnDisk(t, content, Buffer.concat([content, randomBytes(extra)]));
    const want = { instanceOf: IntegrityError, message: new RegExp(`UID 9 in mailbox "INBOX": external attachment ${attachment} has ${3000 + extra} bytes, which encode to \\d+ bytes .* needs exactly 4052`) };
    const e = await t.throwsAsync(async () => readAll(await openSisMessage(msg)), want, `${extra} extra bytes, whole message`);
    t.regex(e?.hint ?? '', /skipped/);
    await t.throwsAsync(sisMessageParts(msg), want, `${extra} extra bytes, as parts`);
  }
  const short = await sisOnDisk(t, content, content.subarray(0, 2990));
  await t.throwsAsync(async () => readAll(await openSisMessage(short.msg)), { instanceOf: IntegrityError, message: /has 2990 bytes/ });
});

test('a compressed stub with external attachments (zlib plugin + SIS) is named as such, not sliced as text', async (t) => {
  const content = randomBytes(3000);
  const { msg, full } = await sisOnDisk(t, content, content);
  // What Dovecot writes with zlib_save=gz: the whole stub compressed, Z and X as for the plain message.
  const stub = await readAll(fileChunks(msg.file, msg.stubOffset, msg.stubSize));
  const gz = gzipSync(stub);
  await writeFile(msg.file, Buffer.concat([Buffer.from('PREFIX'), gz]));
  const compressed: SisMessage = { ...msg, stubSize: gz.length };
  const want = { instanceOf: StorageCorruptError, message: /UID 9 in mailbox "INBOX": the body in .* is gzip-compressed \(Dovecot zlib plugin/ };
  await t.throwsAsync(openSisMessage(compressed), want);
  await t.throwsAsync(sisMessageParts(compressed), want);
  t.is(full.length, msg.fullSize);
});
