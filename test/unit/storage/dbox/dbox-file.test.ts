import test from 'ava';
import { StorageCorruptError } from '../../../../src/core/errors.js';
import { BufferFile, metadataBytes, metadataValue, parseHexTime, readDboxFileHeader, readDboxMessage, type DboxMessage } from '../../../../src/storage/dbox/common/dbox-file.js';

const at = (v: string | undefined): number | undefined => parseHexTime(v, '/x/u.1', 99, 'R');

test('R: Dovecot writes time_t with %lx, so dates before 1970 are 64-bit two\'s complement', (t) => {
  t.is(at('6b0ada32'), 0x6b0ada32);
  t.is(at('0'), 0);
  t.is(at('fffffffffffff1f0'), -3600);
  t.is(at('FFFFFFFFFFFFFFFF'), -1);
  t.is(at('fffffffff8d8a1c0'), -120_020_544, '1966-03-13');
  t.is(at(undefined), undefined);
});

test('R: not hex, or beyond what a date can be, is corruption at the metadata offset', (t) => {
  t.throws(() => at('-e10'), { instanceOf: StorageCorruptError, message: /offset 99: bad R metadata value "-e10"/ });
  t.throws(() => at('1ffffffffffffffff'), { instanceOf: StorageCorruptError });
  t.throws(() => at('8000000000000000'), { instanceOf: StorageCorruptError, message: /out of range for a date/ });
});

/** An sdbox file with one message whose metadata block is `meta` (raw bytes after the magic). */
function dboxFile(body: string, meta: Buffer): Buffer {
  const header = Buffer.from('2 M1e C6b0ada32\n', 'latin1');
  const size = Buffer.byteLength(body).toString(16).toUpperCase().padStart(16, '0');
  const msgHeader = Buffer.from(`\x01\x02N${' '.repeat(10)}${size}\n`, 'latin1');
  return Buffer.concat([header, msgHeader, Buffer.from(body), Buffer.from('\n\x01\x03\n', 'latin1'), meta]);
}

async function readMessage(file: Buffer): Promise<DboxMessage> {
  const src = new BufferFile(file);
  const hdr = await readDboxFileHeader(src, '/x/u.1');
  return readDboxMessage(src, '/x/u.1', hdr, hdr.firstMessageOffset, file.length);
}

const lines = (m: DboxMessage): string[] => m.metadata.map((e) => `${e.key}=${e.bytes.toString('latin1')}`);

test('metadata values are bytes as stored: POP3 UIDL, GUID and mailbox name that are not UTF-8 survive', async (t) => {
  const g = Buffer.from('1234\xfe\xfe', 'latin1');
  const p = Buffer.from('UID\xe9\xff-1', 'latin1');
  const b = Buffer.from('Entw\xfcrfe', 'latin1');
  const meta = Buffer.concat([Buffer.from('G'), g, Buffer.from('\nP'), p, Buffer.from('\nB'), b, Buffer.from('\nR6b0ada32\n\n')]);
  const file = dboxFile('hello\n', meta);
  const m = await readMessage(file);
  t.is(m.endOffset, file.length);
  t.deepEqual(m.metadata.map((e) => e.key), ['G', 'P', 'B', 'R']);
  t.deepEqual(metadataBytes(m.metadata, 'G'), g, 'G bytes unchanged');
  t.deepEqual(metadataBytes(m.metadata, 'P'), p, 'P bytes unchanged');
  t.deepEqual(metadataBytes(m.metadata, 'B'), b, 'B bytes unchanged');
  t.is(metadataValue(m.metadata, 'R'), '6b0ada32');
});

test('metadata written with CRLF parses as Dovecot reads it (i_stream_next_line drops the CR)', async (t) => {
  const file = dboxFile('hello\n', Buffer.from('G0123456789abcdef0123456789abcdef\r\nR6b0ada32\r\nZ6\r\nPuidl-1\r\n\r\n', 'latin1'));
  const m = await readMessage(file);
  t.deepEqual(lines(m), ['G=0123456789abcdef0123456789abcdef', 'R=6b0ada32', 'Z=6', 'P=uidl-1']);
  t.is(m.endOffset, file.length);
});

test('metadata: a line starting with a space or NUL ends the block; a value ends at a NUL (C strings)', async (t) => {
  t.deepEqual(lines(await readMessage(dboxFile('x\n', Buffer.from('Pab\x00cd\nR1\n other\n', 'latin1')))), ['P=ab', 'R=1']);
  t.deepEqual(lines(await readMessage(dboxFile('x\n', Buffer.from('R1\n\x00\n', 'latin1')))), ['R=1']);
});

test('a file ending inside the metadata block gives the whole body, the complete lines and what is missing', async (t) => {
  const cut = await readMessage(dboxFile('x\n', Buffer.from('R1\r\nZ2\r\nG12', 'latin1')));
  t.deepEqual(lines(cut), ['R=1', 'Z=2'], 'the cut line is not taken');
  t.regex(cut.metadataCutShort ?? '', /ends inside the metadata block \(after 2 complete lines/);
  const whole = dboxFile('x\n', Buffer.alloc(0));
  for (const keep of [0, 1, 3]) {
    const file = whole.subarray(0, whole.length - 4 + keep);
    const m = await readMessage(file);
    t.deepEqual(lines(m), []);
    t.regex(m.metadataCutShort ?? '', keep === 0 ? /ends right after the message body/ : /ends inside the metadata magic/);
    t.is(file.toString('latin1', m.bodyOffset, m.bodyOffset + m.bodySize), 'x\n');
  }
  t.is((await readMessage(dboxFile('x\n', Buffer.from('R1\n\n')))).metadataCutShort, undefined);
});

test('other damage after the body is still corruption: no magic, or a short magic that is not one', async (t) => {
  const file = dboxFile('x\n', Buffer.from('R1\n\n'));
  const at = file.indexOf(Buffer.from('\n\x01\x03\n', 'latin1'));
  const broken = Buffer.from(file);
  broken[at + 1] = 0x07;
  await t.throwsAsync(readMessage(broken), { instanceOf: StorageCorruptError, message: /no metadata magic/ });
  await t.throwsAsync(readMessage(Buffer.concat([file.subarray(0, at), Buffer.from('\n\x07')])), { instanceOf: StorageCorruptError, message: /metadata block is missing/ });
});

test('dbox file version 1 is read as dbox_file_parse_header reads it (same message layout; the A key ignored)', async (t) => {
  const v2 = dboxFile('hello\n', Buffer.from('R6b0ada32\n\n'));
  const v1 = Buffer.concat([Buffer.from('1 A0 M1e C6b0ada32\n'), v2.subarray(v2.indexOf(0x0a) + 1)]);
  const m = await readMessage(v1);
  t.is(v1.toString('latin1', m.bodyOffset, m.bodyOffset + m.bodySize), 'hello\n');
  t.deepEqual(lines(m), ['R=6b0ada32']);
  t.is(m.endOffset, v1.length);
  const v3 = Buffer.concat([Buffer.from('3 M1e C6b0ada32\n'), v2.subarray(v2.indexOf(0x0a) + 1)]);
  await t.throwsAsync(readMessage(v3), { instanceOf: StorageCorruptError, message: /dbox version "3" is not supported/ });
});
