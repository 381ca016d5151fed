/**
 * Parser for the `dovecot.index` snapshot file (reference section 4.2): base header, extension headers
 * (their order defines the ext_id numbers the log uses), and fixed-size records sorted by UID.
 */
import { StorageCorruptError } from '../../core/errors.js';
import { IndexState, UNUSED_RECORD_EXTS, type IndexExtension, type IndexMessage } from './index-state.js';

const RESYNC_HINT = 'the index is damaged or written by an unsupported Dovecot version; run "doveadm force-resync -u <user> <mailbox>" and try again';

export interface IndexFileInfo {
  readonly state: IndexState;
  readonly indexId: number;
  /** The log this snapshot is synced to, and the offset in it up to which changes are applied. */
  readonly logFileSeq: number;
  readonly logFileHeadOffset: number;
}

function corrupt(file: string, offset: number, why: string): StorageCorruptError {
  return new StorageCorruptError(`corrupt Dovecot index ${file} at offset ${offset}: ${why}`, { path: file, offset, hint: RESYNC_HINT });
}

const align8 = (n: number): number => (n + 7) & ~7;

/** Parse a whole `dovecot.index` file. `file` is used in error messages. */
export function parseIndexFile(buf: Buffer, file: string): IndexFileInfo {
  if (buf.length < 8) throw corrupt(file, 0, `file is only ${buf.length} bytes`);
  const major = buf.readUInt8(0);
  if (major !== 7) throw corrupt(file, 0, `major version ${major} is not supported (expected 7)`);
  const baseSize = buf.readUInt16LE(2);
  const headerSize = buf.readUInt32LE(4);
  const recordSize = buf.readUInt32LE(8);
  if (baseSize < 92 || baseSize > headerSize || headerSize > buf.length) throw corrupt(file, 2, `bad header sizes (base ${baseSize}, header ${headerSize}, file ${buf.length})`);
  if ((buf.readUInt8(12) & 0x01) === 0) throw corrupt(file, 12, 'the index is big-endian; only little-endian indexes are supported');
  if (recordSize < 8) throw corrupt(file, 8, `record size ${recordSize} is too small`);
  const base = Buffer.alloc(Math.max(baseSize, 120));
  buf.copy(base, 0, 0, baseSize);
  const state = new IndexState(base);

  // Extension headers.
  interface Layout {
    ext: IndexExtension;
    recordOffset: number;
  }
  const layouts: Layout[] = [];
  let off = align8(baseSize);
  while (off < headerSize) {
    if (off + 16 > headerSize) throw corrupt(file, off, 'truncated extension header');
    const hdrSize = buf.readUInt32LE(off);
    const resetId = buf.readUInt32LE(off + 4);
    const recordOffset = buf.readUInt16LE(off + 8);
    const extRecordSize = buf.readUInt16LE(off + 10);
    const recordAlign = buf.readUInt16LE(off + 12);
    const nameSize = buf.readUInt16LE(off + 14);
    const nameEnd = off + 16 + nameSize;
    const dataStart = off + align8(16 + nameSize);
    const dataEnd = dataStart + hdrSize;
    if (nameEnd > headerSize || dataEnd > headerSize) throw corrupt(file, off, 'extension header runs past the header area');
    if (extRecordSize > 0 && recordOffset + extRecordSize > recordSize) throw corrupt(file, off + 8, 'extension record outside the record');
    const name = buf.toString('latin1', off + 16, nameEnd);
    const ext: IndexExtension = { name, resetId, recordSize: extRecordSize, recordAlign, header: Buffer.from(buf.subarray(dataStart, dataEnd)) };
    state.exts.push(ext);
    layouts.push({ ext, recordOffset });
    off = dataStart + align8(hdrSize);
  }

  const kwExt = state.findExt('keywords');
  if (kwExt) state.keywords.push(...parseKeywordNames(kwExt.header, file));
  const modseqExt = state.findExt('modseq');
  state.modseqEnabled = modseqExt !== undefined;

  // Records.
  const count = buf.readUInt32LE(32);
  if (headerSize + count * recordSize > buf.length) throw corrupt(file, headerSize, `${count} records of ${recordSize} bytes do not fit in ${buf.length} bytes`);
  let prevUid = 0;
  for (let i = 0; i < count; i++) {
    const r = headerSize + i * recordSize;
    const uid = buf.readUInt32LE(r);
    if (uid <= prevUid) throw corrupt(file, r, `record UIDs are not ascending (${uid} after ${prevUid})`);
    prevUid = uid;
    const m: IndexMessage = { uid, flags: buf.readUInt8(r + 4), keywords: null, ext: null, modseq: 0n, expunged: false };
    for (const { ext, recordOffset } of layouts) {
      if (ext.recordSize === 0 || UNUSED_RECORD_EXTS.has(ext.name)) continue;
      const data = buf.subarray(r + recordOffset, r + recordOffset + ext.recordSize);
      if (ext.name === 'keywords') {
        for (let bit = 0; bit < data.length * 8; bit++) if ((data[bit >> 3]! >> (bit & 7)) & 1) (m.keywords ??= new Set()).add(bit);
      } else if (ext.name === 'modseq' && ext.recordSize >= 8) {
        m.modseq = data.readBigUInt64LE(0);
      } else {
        (m.ext ??= new Map()).set(ext.name, Buffer.from(data));
      }
    }
    state.messages.push(m);
  }
  if (modseqExt && modseqExt.header.length >= 8) state.modseqCounter = modseqExt.header.readBigUInt64LE(0);

  return { state, indexId: buf.readUInt32LE(16), logFileSeq: buf.readUInt32LE(60), logFileHeadOffset: buf.readUInt32LE(68) };
}

/** Names from the `keywords` extension header: u32 count, count x {u32, u32 name_offset}, NUL-terminated names. */
export function parseKeywordNames(hdr: Buffer, file: string): string[] {
  if (hdr.length < 4) return [];
  const count = hdr.readUInt32LE(0);
  const namesStart = 4 + count * 8;
  if (namesStart > hdr.length) throw corrupt(file, 0, `keywords header lists ${count} keywords but is only ${hdr.length} bytes`);
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const nameOff = namesStart + hdr.readUInt32LE(4 + i * 8 + 4);
    const end = hdr.indexOf(0, nameOff);
    if (nameOff >= hdr.length || end < 0) throw corrupt(file, 0, `keyword ${i} name is outside the keywords header`);
    names.push(hdr.toString('utf8', nameOff, end));
  }
  return names;
}
