import test from 'ava';
import { createHash } from 'node:crypto';
import { EncodedBlobCache } from '../../../src/archive/encoded-blob-cache.js';
import { assembleParts, type AssemblyPiece } from '../../../src/archive/parts.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of it) out.push(Buffer.from(c));
  return Buffer.concat(out);
}

async function* once(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}

/** A message: "head\r\n" inline, then the blob base64-encoded (76 columns, CRLF), cut to `size`. */
function pieces(blob: Buffer, size: number, opened: { count: number }, sha256 = sha(blob)): AssemblyPiece[] {
  return [
    { type: 'inline', size: 6 },
    { type: 'blob', size, contentSize: blob.length, encoding: { type: 'base64', lineLength: 76, crlf: true }, sha256, open: async () => (opened.count++, once(blob)) },
  ];
}

async function assemble(cache: EncodedBlobCache, ps: AssemblyPiece[]): Promise<Buffer> {
  const prepared = cache.prepare(ps);
  const { stream, result } = assembleParts(prepared, once(Buffer.from('head\r\n')), (i, why) => new Error(`part ${i}: ${why}`));
  const bytes = await collect(stream);
  cache.keep(prepared, result.encoded, result.contentSha256);
  return bytes;
}

test('a blob used again is taken encoded from the cache: same bytes, the spool not read again', async (t) => {
  const blob = Buffer.alloc(30_000, 7);
  const full = Buffer.from(blob.toString('base64').replace(/.{76}/g, '$&\r\n'));
  const opened = { count: 0 };
  const cache = new EncodedBlobCache();
  const first = await assemble(cache, pieces(blob, full.length, opened));
  const second = await assemble(cache, pieces(blob, full.length - 10, opened)); // another cut of the same blob
  const third = await assemble(cache, pieces(blob, full.length, opened));
  t.true(first.equals(Buffer.concat([Buffer.from('head\r\n'), full])));
  t.true(second.equals(Buffer.concat([Buffer.from('head\r\n'), full.subarray(0, full.length - 10)])));
  t.true(third.equals(first));
  t.is(opened.count, 2, 'kept at its second use, taken from the cache at the third');
});

test('a blob whose content does not match its sha256 is not cached, and fails every time', async (t) => {
  const blob = Buffer.alloc(1000, 1);
  const opened = { count: 0 };
  const cache = new EncodedBlobCache();
  const wrong = 'ab'.repeat(32);
  for (let i = 0; i < 3; i++) await t.throwsAsync(assemble(cache, pieces(blob, 100, opened, wrong)), { message: /hashes to/ });
  t.is(opened.count, 3);
});

test('blobs too large for the cache are read each time', async (t) => {
  const blob = Buffer.alloc(900_000, 3); // 1.2 MB encoded
  const opened = { count: 0 };
  const cache = new EncodedBlobCache();
  for (let i = 0; i < 3; i++) await assemble(cache, pieces(blob, 10, opened));
  t.is(opened.count, 3);
});

test('a record that gives a blob another content size than it has is not served from the cache: it fails as without one', async (t) => {
  const blob = Buffer.alloc(3000, 9);
  const opened = { count: 0 };
  const cache = new EncodedBlobCache();
  for (let i = 0; i < 3; i++) await assemble(cache, pieces(blob, 100, opened));
  t.is(opened.count, 2);
  const wrongSize: AssemblyPiece[] = pieces(blob, 100, opened).map((p) => (p.type === 'blob' ? { ...p, contentSize: 2999 } : p));
  await t.throwsAsync(assemble(cache, wrongSize), { message: /content has 3000 bytes, 2999 were expected/ });
});

