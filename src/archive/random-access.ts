/**
 * openDumpFile: random access to a dump stored in a seekable file (plain tar, or zstd with a seek
 * table). It reads the trailer (at its fixed position, else by a bounded backward scan), the header and
 * the TOC, and then reads any one message by its TOC id, touching only that message's byte ranges (for
 * zstd: only the frames covering them). Record checks and body hashes are verified on every read.
 *
 * It does not check the whole-stream digest (that needs every byte: use readDump).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { ArchiveCorruptError, ArchiveOrderError, InputNotFoundError, UsageError, fromSystemError, isMailvaultError } from '../core/errors.js';
import { isZstdMagic, SeekableZstdFile } from './compression/index.js';
import { BLOCK, MAX_RECORD_BYTES, TRAILER_BYTES } from './limits.js';
import { blobMember, HEADER_MEMBER, messageMembers, TOC_MEMBER, TRAILER_MEMBER } from './member-names.js';
import { assembleParts, recordPieces, validateParts } from './parts.js';
import { decodeRecord } from './record-codec.js';
import { checkFormatVersion, validateHeader, validateMessage, validateTrailer } from './record-validate.js';
import { FORMAT_VERSION_PARTS, type HeaderRecord, type MessageRecord, type TocEntry, type TocMessageEntry, type TrailerRecord } from './records.js';
import { decodePax, decodeUstar, HeaderFormatError, isZeroBlock, paddingLength } from './tar-header.js';
import { parseTocLine, splitTocLines } from './toc.js';

/** A regular file's typeflag: '0', or NUL (the pre-POSIX spelling), as the one-pass reader takes them (tar-parser.ts). */
function isFileTypeflag(typeflag: string): boolean {
  return typeflag === '0' || typeflag === '\u0000';
}

/** How far back from the end the trailer is searched when it is not at its fixed position. */
const TRAILER_SCAN_BYTES = 4 * 1024 * 1024;

/** Uncompressed byte ranges of a dump file. */
interface ByteSource {
  readonly size: number;
  read(start: number, length: number): Promise<Buffer>;
  stream(start: number, end: number): Readable;
  close(): Promise<void>;
}

async function collect(stream: Readable, length: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let got = 0;
  for await (const c of stream) {
    parts.push(c as Buffer);
    got += (c as Buffer).length;
    if (got >= length) break;
  }
  stream.destroy();
  return Buffer.concat(parts).subarray(0, length);
}

async function plainSource(path: string, handle: FileHandle): Promise<ByteSource> {
  const { size } = await handle.stat();
  return {
    size,
    async read(start, length) {
      const buffer = Buffer.alloc(Math.max(0, Math.min(length, size - start)));
      let done = 0;
      while (done < buffer.length) {
        const { bytesRead } = await handle.read(buffer, done, buffer.length - done, start + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return buffer.subarray(0, done);
    },
    stream(start, end) {
      return end > start ? createReadStream(path, { start, end: end - 1 }) : Readable.from([]);
    },
    close: () => handle.close(),
  };
}

function zstdSource(file: SeekableZstdFile): ByteSource {
  return {
    size: file.decompressedSize,
    read(start, length) {
      const end = Math.min(file.decompressedSize, start + length);
      return end > start ? collect(file.createReadStream(start, end), end - start) : Promise.resolve(Buffer.alloc(0));
    },
    stream(start, end) {
      return end > start ? file.createReadStream(start, end) : Readable.from([]);
    },
    close: () => file.close(),
  };
}

/** Checks size and sha256 of a body while it streams; fails at the end on a mismatch. */
class VerifyingStream extends Transform {
  private readonly hash = createHash('sha256');
  private got = 0;
  constructor(private readonly expected: { size: number; sha256: string }, private readonly describe: () => ArchiveCorruptError) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.got += chunk.length;
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    const sha256 = this.hash.digest('hex');
    if (this.got !== this.expected.size || sha256 !== this.expected.sha256) cb(this.describe());
    else cb();
  }
}

export interface DumpFile {
  readonly path: string;
  readonly compressed: boolean;
  readonly header: HeaderRecord;
  readonly trailer: TrailerRecord;
  /** The TOC lines, read from the file each time (not held in memory). */
  entries(): AsyncIterable<TocEntry>;
  /** One message by TOC id: its verified record and a stream of its body (hash checked at the end: the stream errors on mismatch). */
  readMessage(id: number): Promise<{ record: MessageRecord; body: Readable }>;
  /** The same from a TOC entry in hand (from entries()), without indexing the whole TOC first. */
  readMessageEntry(entry: TocMessageEntry): Promise<{ record: MessageRecord; body: Readable }>;
  close(): Promise<void>;
}

export async function openDumpFile(path: string): Promise<DumpFile> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new InputNotFoundError(`cannot open dump ${path}: no such file`, { path, hint: 'check the path' });
    throw fromSystemError(err, 'open the dump', { path });
  }
  let source: ByteSource;
  let compressed = false;
  try {
    const magic = Buffer.alloc(4);
    const { bytesRead } = await handle.read(magic, 0, 4, 0);
    if (bytesRead === 4 && isZstdMagic(magic)) {
      await handle.close();
      compressed = true;
      const file = await SeekableZstdFile.open(path);
      if (file === null) {
        throw new UsageError(`dump ${path} is zstd-compressed without a seek table: it cannot be read at random`, {
          path,
          hint: 'read it in one pass (verify, restore), or recompress it with mailvault',
        });
      }
      source = zstdSource(file);
    } else {
      source = await plainSource(path, handle);
    }
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw isMailvaultError(err) ? err : fromSystemError(err, 'open the dump', { path });
  }
  try {
    return await openSource(path, source, compressed);
  } catch (err) {
    await source.close().catch(() => undefined);
    throw isMailvaultError(err) ? err : fromSystemError(err, 'read the dump', { path });
  }
}

/** Read the header block(s) at `offset`: name, data offset and size. */
async function readMemberHeader(source: ByteSource, offset: number): Promise<{ name: string; dataOffset: number; size: number }> {
  const block = await source.read(offset, BLOCK);
  const fail = (why: string): ArchiveCorruptError => new ArchiveCorruptError(`archive corrupt: tar header at offset ${offset}: ${why}`, { offset, hint: 'check the dump with "mailvault verify"' });
  if (block.length < BLOCK || isZeroBlock(block)) throw fail('no member header here');
  try {
    let header = decodeUstar(block);
    let at = offset + BLOCK;
    let name = header.name;
    let size = header.size;
    if (header.typeflag === 'x') {
      if (header.size > 64 * 1024) throw fail('pax header too large');
      const pax = decodePax(await source.read(at, header.size));
      at += header.size + paddingLength(header.size);
      header = decodeUstar(await source.read(at, BLOCK));
      at += BLOCK;
      name = pax.get('path') ?? header.name;
      size = pax.has('size') ? Number(pax.get('size')) : header.size;
    }
    return { name, dataOffset: at, size };
  } catch (err) {
    if (err instanceof HeaderFormatError) throw fail(err.message);
    throw err;
  }
}

async function readRecordAt(source: ByteSource, dataOffset: number, size: number, member: string): Promise<Record<string, unknown>> {
  if (size > MAX_RECORD_BYTES) throw new ArchiveCorruptError(`archive corrupt: record "${member}" at offset ${dataOffset}: ${size} bytes is over the ${MAX_RECORD_BYTES}-byte limit`, { member, offset: dataOffset });
  const data = await source.read(dataOffset, size);
  if (data.length !== size) throw new ArchiveCorruptError(`archive corrupt: record "${member}" at offset ${dataOffset}: the file ends inside it`, { member, offset: dataOffset });
  return decodeRecord(data, member, dataOffset);
}

async function findTrailer(source: ByteSource, path: string): Promise<TrailerRecord> {
  const fixed = source.size - 2 * BLOCK - TRAILER_BYTES - BLOCK;
  if (fixed >= 0) {
    const block = await source.read(fixed, BLOCK);
    try {
      const h = decodeUstar(block);
      if (h.name === TRAILER_MEMBER && isFileTypeflag(h.typeflag) && h.size <= MAX_RECORD_BYTES) {
        return validateTrailer(await readRecordAt(source, fixed + BLOCK, h.size, TRAILER_MEMBER), TRAILER_MEMBER, fixed + BLOCK);
      }
    } catch (err) {
      if (!(err instanceof HeaderFormatError)) throw err;
    }
  }
  // Backward scan over block-aligned positions near the end.
  const scanStart = Math.max(0, source.size - TRAILER_SCAN_BYTES);
  const alignedStart = scanStart - (scanStart % BLOCK);
  const tail = await source.read(alignedStart, source.size - alignedStart);
  for (let p = tail.length - BLOCK - (tail.length % BLOCK); p >= 0; p -= BLOCK) {
    const block = tail.subarray(p, p + BLOCK);
    if (block.length < BLOCK || isZeroBlock(block)) continue;
    let h;
    try {
      h = decodeUstar(block);
    } catch {
      continue;
    }
    if (h.name !== TRAILER_MEMBER || !isFileTypeflag(h.typeflag) || h.size > MAX_RECORD_BYTES) continue;
    const at = alignedStart + p + BLOCK;
    return validateTrailer(await readRecordAt(source, at, h.size, TRAILER_MEMBER), TRAILER_MEMBER, at);
  }
  throw new ArchiveCorruptError(`archive truncated or corrupt: no trailer found in the last ${TRAILER_SCAN_BYTES} bytes of ${path}`, {
    path,
    hint: 'the dump is incomplete (the backup did not finish, or the copy was cut short): check it with "mailvault verify"',
  });
}

async function openSource(path: string, source: ByteSource, compressed: boolean): Promise<DumpFile> {
  const first = await readMemberHeader(source, 0);
  if (first.name !== HEADER_MEMBER) {
    throw new ArchiveCorruptError(`archive corrupt: the first member of ${path} is "${first.name}", not "${HEADER_MEMBER}"`, { path, member: first.name, offset: 0 });
  }
  if (first.size > MAX_RECORD_BYTES) throw new ArchiveCorruptError(`archive corrupt: header record of ${first.size} bytes is over the limit`, { path, member: HEADER_MEMBER, offset: 0 });
  const headerData = await source.read(first.dataOffset, first.size);
  try {
    checkFormatVersion(JSON.parse(headerData.toString('utf8')) as Record<string, unknown>, HEADER_MEMBER, first.dataOffset);
  } catch (err) {
    if (isMailvaultError(err)) throw err;
  }
  const header = validateHeader(decodeRecord(headerData, HEADER_MEMBER, first.dataOffset), HEADER_MEMBER, first.dataOffset);
  const trailer = await findTrailer(source, path);
  if (trailer.runId !== header.runId) {
    throw new ArchiveCorruptError(`archive corrupt: the trailer of ${path} belongs to run ${trailer.runId}, the header to ${header.runId}`, { path, member: TRAILER_MEMBER });
  }
  const toc = trailer.toc;
  const tocHeader = await readMemberHeader(source, toc.offset);
  if (tocHeader.name !== TOC_MEMBER || tocHeader.dataOffset !== toc.dataOffset || tocHeader.size !== toc.size) {
    throw new ArchiveCorruptError(`archive corrupt: the trailer points at offset ${toc.offset} for "${TOC_MEMBER}", but "${tocHeader.name}" is there`, { path, member: TOC_MEMBER, offset: toc.offset });
  }

  // The TOC is indexed lazily, in one pass that also checks its hash: by the first entries() scan
  // that runs to its end, or by readMessage(id) when no scan has. Opening costs the trailer only.
  let index = new Float64Array(4 * 1024);
  let maxId = 0;
  // Blobs by sha256 (version 2): about 150 bytes of memory per distinct blob.
  const blobIndex = new Map<string, { offset: number; dataOffset: number; size: number }>();
  let indexed = false;
  let indexing: Promise<void> | null = null;
  const addToIndex = (entry: TocEntry, lineNo: number, lineOffset: number): void => {
    if (entry.type === 'blob' && header.version >= FORMAT_VERSION_PARTS) {
      const sha256 = /^blobs\/[0-9a-f]{2}\/([0-9a-f]{64})$/.exec(entry.member)?.[1];
      if (sha256 !== entry.sha256) throw new ArchiveCorruptError(`archive corrupt: "${TOC_MEMBER}" line ${lineNo}: blob member "${entry.member}" is not named by its sha256 ${entry.sha256}`, { path, member: TOC_MEMBER, offset: lineOffset });
      blobIndex.set(sha256, { offset: entry.offset, dataOffset: entry.dataOffset, size: entry.size });
      return;
    }
    if (entry.type !== 'message') return;
    if (entry.id < 1 || entry.id > 0xffffffff) throw new ArchiveCorruptError(`archive corrupt: "${TOC_MEMBER}" line ${lineNo}: message id ${entry.id} out of range`, { path, member: TOC_MEMBER, offset: lineOffset });
    while (4 * (entry.id + 1) > index.length) {
      const bigger = new Float64Array(index.length * 2);
      bigger.set(index);
      index = bigger;
    }
    index.set([entry.dataOffset, entry.size, entry.recordDataOffset, entry.recordSize + 1], 4 * entry.id);
    maxId = Math.max(maxId, entry.id);
  };
  /** Every TOC entry in order; indexes them and checks the TOC's hash when the scan reaches its end. */
  async function* scanToc(): AsyncGenerator<TocEntry> {
    const hash = createHash('sha256');
    const hashing = async function* (s: Readable): AsyncGenerator<Buffer> {
      for await (const c of s) {
        hash.update(c as Buffer);
        yield c as Buffer;
      }
    };
    for await (const line of splitTocLines(hashing(source.stream(toc.dataOffset, toc.dataOffset + toc.size)), toc.dataOffset, TOC_MEMBER, MAX_RECORD_BYTES)) {
      const entry = parseTocLine(line.text, line.lineNo, TOC_MEMBER, line.offset);
      if (!indexed) addToIndex(entry, line.lineNo, line.offset);
      yield entry;
    }
    const tocSha256 = hash.digest('hex');
    if (tocSha256 !== toc.sha256) {
      throw new ArchiveCorruptError(`archive corrupt: "${TOC_MEMBER}" of ${path} hashes to ${tocSha256}, the trailer says ${toc.sha256}`, { path, member: TOC_MEMBER, offset: toc.offset });
    }
    indexed = true;
  }
  const ensureIndexed = (): Promise<void> => {
    if (indexed) return Promise.resolve();
    indexing ??= (async () => {
      for await (const _ of scanToc()) {
        /* indexing */
      }
    })();
    return indexing;
  };

  return {
    path,
    compressed,
    header,
    trailer,
    entries(): AsyncIterable<TocEntry> {
      return { [Symbol.asyncIterator]: () => scanToc() };
    },
    async readMessage(id: number) {
      await ensureIndexed();
      const slot = 4 * id;
      if (!Number.isInteger(id) || id < 1 || id > maxId || index[slot + 3] === 0) {
        throw new UsageError(`dump ${path} has no message with id ${id}`, { path, hint: 'take ids from "mailvault list"' });
      }
      const [dataOffset, size, recordDataOffset, recordSizePlus1] = index.subarray(slot, slot + 4) as unknown as [number, number, number, number];
      return readAt(`message id ${id}`, dataOffset, size, recordDataOffset, recordSizePlus1 - 1);
    },
    async readMessageEntry(entry: TocMessageEntry) {
      return readAt(`message id ${entry.id}`, entry.dataOffset, entry.size, entry.recordDataOffset, entry.recordSize);
    },
    close: () => source.close(),
  };

  /** A message from its TOC positions: its record (checked), its body verified against the record. */
  async function readAt(label: string, dataOffset: number, size: number, recordDataOffset: number, recordSize: number): Promise<{ record: MessageRecord; body: Readable }> {
      const record = validateMessage(await readRecordAt(source, recordDataOffset, recordSize, label), label, recordDataOffset, header.version);
      const names = messageMembers(record.user, record.mailbox, record.uid);
      const stored = record.parts !== undefined || record.stub !== undefined;
      const member = stored ? names.stub : names.body;
      const where = { path, member, offset: dataOffset, user: record.user, mailbox: record.mailbox, uid: record.uid };
      const what = `message UID ${record.uid} of mailbox "${record.mailbox}" (user "${record.user}")`;
      if (!stored && record.size !== size) {
        throw new ArchiveCorruptError(`archive corrupt: ${what}: the TOC says ${size} bytes, the record ${record.size}`, where);
      }
      const verify = new VerifyingStream(record, () => new ArchiveCorruptError(
        `archive corrupt: ${what}, member "${member}" at offset ${dataOffset}: the ${stored ? 'stub and blobs do' : 'body does'} not match the size and sha256 of its record: the ${stored ? 'dump' : 'body'} was damaged`,
        { ...where, hint: 'check the dump with "mailvault verify"' },
      ));
      if (!stored) {
        const raw = source.stream(dataOffset, dataOffset + size);
        raw.on('error', (err) => verify.destroy(err));
        verify.on('close', () => raw.destroy());
        return { record, body: raw.pipe(verify) };
      }
      const { stub, parts } = validateParts(record, label, recordDataOffset);
      if (stub.size !== size) throw new ArchiveCorruptError(`archive corrupt: ${what}: the TOC says the stub has ${size} bytes, the record ${stub.size}`, where);
      // Blobs precede their first use, so a TOC scan in progress has indexed them already; else index now.
      if (parts.some((p) => p.type === 'blob' && !blobIndex.has(p.sha256))) await ensureIndexed();
      for (const p of parts) {
        if (p.type !== 'blob') continue;
        const blob = blobIndex.get(p.sha256);
        if (blob === undefined) {
          throw new ArchiveCorruptError(`archive corrupt: ${what} needs blob "${blobMember(p.sha256)}", which the dump does not hold`, { ...where, hint: 'the dump was damaged or altered: check it with "mailvault verify"' });
        }
        if (blob.offset > dataOffset) {
          throw new ArchiveOrderError(`archive out of order: member "${member}" at offset ${dataOffset} needs blob "${blobMember(p.sha256)}", which comes after it (offset ${blob.offset}): a blob must precede the first message that references it`, where);
        }
        if (blob.size !== p.contentSize) throw new ArchiveCorruptError(`archive corrupt: ${what}: blob "${blobMember(p.sha256)}" has ${blob.size} bytes, the record says ${p.contentSize}`, where);
      }
      const stubHash = createHash('sha256');
      const stubStream = (async function* (): AsyncGenerator<Buffer> {
        for await (const c of source.stream(dataOffset, dataOffset + size)) {
          stubHash.update(c as Buffer);
          yield c as Buffer;
        }
        if (stubHash.digest('hex') !== stub.sha256) throw new ArchiveCorruptError(`archive corrupt: ${what}: stub member "${member}" at offset ${dataOffset} does not hash to the sha256 in its record: the stub was damaged`, where);
      })();
      const { stream } = assembleParts(
        recordPieces(parts, async (sha256) => {
          const blob = blobIndex.get(sha256)!;
          return source.stream(blob.dataOffset, blob.dataOffset + blob.size);
        }),
        stubStream,
        (i, why) => new ArchiveCorruptError(`archive corrupt: ${what}, part ${i}: ${why}`, { ...where, hint: 'check the dump with "mailvault verify"' }),
      );
      const raw = Readable.from(stream, { objectMode: false });
      raw.on('error', (err) => verify.destroy(err));
      verify.on('close', () => raw.destroy());
      return { record, body: raw.pipe(verify) };
  }
}

