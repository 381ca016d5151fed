/**
 * Reader for `dovecot.index.log` files (reference section 4.3): the file header and the records,
 * read in bounded chunks so a large log is never held in memory whole.
 */
import type { FileHandle } from 'node:fs/promises';
import { StorageCorruptError } from '../../core/errors.js';

export const LOG_RESYNC_HINT = 'the transaction log is damaged or from an unsupported Dovecot version; run "doveadm force-resync -u <user> <mailbox>" and try again';

export interface LogHeader {
  readonly hdrSize: number;
  readonly indexId: number;
  readonly fileSeq: number;
  readonly prevFileSeq: number;
  readonly prevFileOffset: number;
  readonly initialModseq: bigint;
}

export interface LogRecord {
  /** Offset of the record header in the file. */
  readonly offset: number;
  /** Full type word (kind | EXTERNAL | SYNC). */
  readonly type: number;
  /** Payload (size - 8 bytes). Valid until the next record is requested. */
  readonly data: Buffer;
}

/** Record kinds (type & TYPE_MASK). */
export const LogType = {
  EXPUNGE: 0x0001 | 0xcd90,
  APPEND: 0x0002,
  FLAG_UPDATE: 0x0004,
  HEADER_UPDATE: 0x0020,
  EXT_INTRO: 0x0040,
  EXT_RESET: 0x0080,
  EXT_HDR_UPDATE: 0x0100,
  EXT_REC_UPDATE: 0x0200,
  KEYWORD_UPDATE: 0x0400,
  KEYWORD_RESET: 0x0800,
  EXT_ATOMIC_INC: 0x1000,
  EXPUNGE_GUID: 0x2000 | 0xcd90,
  MODSEQ_UPDATE: 0x8000,
  EXT_HDR_UPDATE32: 0x10000,
  INDEX_DELETED: 0x20000,
  INDEX_UNDELETED: 0x40000,
  BOUNDARY: 0x80000,
  ATTRIBUTE_UPDATE: 0x100000,
} as const;
export const LOG_TYPE_MASK = 0x0fffffff;
export const LOG_EXTERNAL = 0x10000000;

export function logCorrupt(file: string, offset: number, why: string): StorageCorruptError {
  return new StorageCorruptError(`corrupt Dovecot transaction log ${file} at offset ${offset}: ${why}`, { path: file, offset, hint: LOG_RESYNC_HINT });
}

export function parseLogHeader(buf: Buffer, file: string): LogHeader {
  if (buf.length < 24) throw logCorrupt(file, 0, `file is only ${buf.length} bytes, too short for a header`);
  const major = buf.readUInt8(0);
  if (major !== 1) throw logCorrupt(file, 0, `major version ${major} is not supported (expected 1)`);
  const hdrSize = buf.readUInt16LE(2);
  if (hdrSize < 24 || hdrSize > buf.length) throw logCorrupt(file, 2, `bad header size ${hdrSize}`);
  const initialModseq = hdrSize >= 32 ? buf.readBigUInt64LE(24) : 0n;
  if (hdrSize >= 33 && (buf.readUInt8(32) & 0x01) === 0) throw logCorrupt(file, 32, 'the log is big-endian; only little-endian logs are supported');
  return {
    hdrSize,
    indexId: buf.readUInt32LE(4),
    fileSeq: buf.readUInt32LE(8),
    prevFileSeq: buf.readUInt32LE(12),
    prevFileOffset: buf.readUInt32LE(16),
    initialModseq,
  };
}

/** Decode the 7-bit-per-byte big-endian record size. Returns -1 when the encoding is invalid. */
export function decodeRecordSize(b: Buffer, at: number): number {
  const v = b.readUInt32BE(at);
  if ((v & 0x80808080) >>> 0 !== 0x80808080) return -1;
  return ((v & 0x7f) | (((v >>> 8) & 0x7f) << 7) | (((v >>> 16) & 0x7f) << 14) | (((v >>> 24) & 0x7f) << 21)) * 4;
}

const CHUNK = 64 * 1024;
/** A single record larger than this is treated as corruption (Dovecot logs rotate at about 1 MB). */
const MAX_RECORD = 64 * 1024 * 1024;

/**
 * Records from `start` up to `end` (exclusive; normally the file size at open). Stops silently before a
 * record that runs past `end`, before a BOUNDARY whose transaction runs past `end` (a writer is
 * mid-append, reference 4.4 step 2), and at a size word of four zero bytes (unwritten space). Any other
 * size that is not a valid encoding, or below 8, is corruption.
 */
export async function* readLogRecords(fh: FileHandle, file: string, start: number, end: number): AsyncGenerator<LogRecord> {
  let buf = Buffer.alloc(0);
  let bufStart = start; // file offset of buf[0]
  let pos = start;
  const fill = async (need: number): Promise<boolean> => {
    // Make sure buf covers [pos, pos + need).
    if (pos + need > end) return false;
    if (pos >= bufStart && pos + need <= bufStart + buf.length) return true;
    const keep = pos >= bufStart && pos < bufStart + buf.length ? buf.subarray(pos - bufStart) : Buffer.alloc(0);
    const want = Math.max(need, CHUNK);
    const readLen = Math.min(want - keep.length, end - (pos + keep.length));
    const fresh = Buffer.alloc(keep.length + Math.max(readLen, 0));
    keep.copy(fresh, 0);
    let got = keep.length;
    while (got < fresh.length) {
      const { bytesRead } = await fh.read(fresh, got, fresh.length - got, pos + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    buf = fresh.subarray(0, got);
    bufStart = pos;
    return buf.length >= need;
  };
  while (pos + 8 <= end) {
    if (!(await fill(8))) return;
    const at = pos - bufStart;
    // A size word of zeros is space not (yet) written: the log's tail after a crash, or a page of an
    // append not yet visible over NFS. Dovecot stops there and keeps what came before
    // (mail-transaction-log-file.c:mail_transaction_log_file_sync, "unfinished or corrupted"), and an
    // unlocked reader like us waits for "the size field will be updated soon".
    if (buf.readUInt32BE(at) === 0) return;
    const size = decodeRecordSize(buf, at);
    // Any other invalid word is not space a writer is about to fill: Dovecot, holding the lock, calls
    // it corruption ("Unexpected garbage at EOF"). Say so rather than end the history quietly there.
    if (size < 0) throw logCorrupt(file, pos, 'invalid record size encoding');
    if (size < 8 || size > MAX_RECORD) throw logCorrupt(file, pos, `invalid record size ${size}`);
    const type = buf.readUInt32LE(at + 4);
    if (pos + size > end) return;
    if (!(await fill(size))) return;
    const rat = pos - bufStart;
    const data = buf.subarray(rat + 8, rat + size);
    if ((type & LOG_TYPE_MASK) === LogType.BOUNDARY && data.length >= 4) {
      const trans = data.readUInt32LE(0);
      if (pos + trans > end) return;
    }
    yield { offset: pos, type, data };
    pos += size;
  }
}
