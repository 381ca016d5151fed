/**
 * Applies transaction log records to an IndexState, as Dovecot's mail-index-sync-update.c does
 * (reference sections 4.4 and 4.5), and counts modseqs as mail-transaction-log-file.c does.
 */
import { keywordKey } from '../flags.js';
import { LOG_EXTERNAL, LOG_TYPE_MASK, LogType, logCorrupt, type LogRecord } from './transaction-log.js';
import { HDR_NEXT_UID, UNUSED_RECORD_EXTS, type IndexExtension, type IndexMessage, type IndexState } from './index-state.js';

const FLAGS_MASK = 0x1f;
const pad4 = (n: number): number => (n + 3) & ~3;

/** Advance the modseq counter for one record (called for every record read, applied or not). */
export function countModseq(state: IndexState, rec: LogRecord): void {
  const kind = rec.type & LOG_TYPE_MASK;
  const d = rec.data;
  if (state.modseqCounter === 0n) {
    // Not tracking modseqs yet (logs from old versions): tracking starts with the modseq ext intro.
    if (kind === LogType.EXT_INTRO && d.length >= 20) {
      const nameSize = d.readUInt16LE(18);
      if (nameSize === 6 && d.toString('latin1', 20, 26) === 'modseq') state.modseqCounter = 1n;
    }
    return;
  }
  switch (kind) {
    case LogType.EXPUNGE:
    case LogType.EXPUNGE_GUID:
      if ((rec.type & LOG_EXTERNAL) !== 0) state.modseqCounter += 1n;
      break;
    case LogType.APPEND:
    case LogType.KEYWORD_UPDATE:
    case LogType.KEYWORD_RESET:
    case LogType.ATTRIBUTE_UPDATE:
      state.modseqCounter += 1n;
      break;
    case LogType.FLAG_UPDATE:
      for (let i = 0; i + 12 <= d.length; i += 12) {
        if (((d[i + 8]! | d[i + 9]!) & FLAGS_MASK) !== 0 || d[i + 10] !== 0) {
          state.modseqCounter += 1n;
          break;
        }
      }
      break;
    case LogType.MODSEQ_UPDATE:
      for (let i = 0; i + 12 <= d.length; i += 12) {
        const v = (BigInt(d.readUInt32LE(i + 8)) << 32n) | BigInt(d.readUInt32LE(i + 4));
        if (v > state.modseqCounter) state.modseqCounter = v;
      }
      break;
    default:
      break;
  }
}

function touch(state: IndexState, m: IndexMessage): void {
  if (state.modseqEnabled) m.modseq = state.modseqCounter;
}

function* uidRanges(d: Buffer, start: number): Generator<[number, number]> {
  for (let i = start; i + 8 <= d.length; i += 8) yield [d.readUInt32LE(i), d.readUInt32LE(i + 4)];
}

/** Apply one record (after countModseq). `file` is for error messages. */
export function applyRecord(state: IndexState, rec: LogRecord, file: string): void {
  const kind = rec.type & LOG_TYPE_MASK;
  const d = rec.data;
  const bad = (why: string): Error => logCorrupt(file, rec.offset, why);
  switch (kind) {
    case LogType.APPEND: {
      if (d.length % 8 !== 0) throw bad(`append record size ${d.length} is not a multiple of 8`);
      for (let i = 0; i < d.length; i += 8) {
        const uid = d.readUInt32LE(i);
        if (uid === 0) throw bad('append with UID 0');
        if (uid <= state.lastUid() || state.lookup(uid)) continue; // already in the snapshot
        const m: IndexMessage = { uid, flags: d.readUInt8(i + 4), keywords: null, ext: null, modseq: 0n, expunged: false };
        state.messages.push(m);
        touch(state, m);
        if (uid + 1 > state.nextUid) state.nextUid = uid + 1;
      }
      break;
    }
    case LogType.EXPUNGE:
      if ((rec.type & LOG_EXTERNAL) === 0) break; // only a request
      for (const [a, b] of uidRanges(d, 0)) for (const m of state.range(a, b)) m.expunged = true;
      break;
    case LogType.EXPUNGE_GUID:
      if ((rec.type & LOG_EXTERNAL) === 0) break;
      for (let i = 0; i + 20 <= d.length; i += 20) {
        const m = state.lookup(d.readUInt32LE(i));
        if (m) m.expunged = true;
      }
      break;
    case LogType.FLAG_UPDATE:
      for (let i = 0; i + 12 <= d.length; i += 12) {
        const [uid1, uid2, add, remove, modseqInc] = [d.readUInt32LE(i), d.readUInt32LE(i + 4), d[i + 8]!, d[i + 9]!, d[i + 10]!];
        const visible = ((add | remove) & FLAGS_MASK) !== 0 || modseqInc !== 0;
        for (const m of state.range(uid1, uid2)) {
          m.flags = (m.flags & ~remove & 0xff) | add;
          if (visible) touch(state, m);
        }
      }
      break;
    case LogType.HEADER_UPDATE:
      for (let i = 0; i + 4 <= d.length; ) {
        const off = d.readUInt16LE(i);
        const size = d.readUInt16LE(i + 2);
        if (i + 4 + size > d.length) throw bad('header update runs past the record');
        if (off + size > state.baseHeader.length) throw bad(`header update outside the base header (${off} + ${size})`);
        const nextUid = state.nextUid;
        d.copy(state.baseHeader, off, i + 4, i + 4 + size);
        if (state.nextUid < nextUid) state.baseHeader.writeUInt32LE(nextUid, HDR_NEXT_UID); // never lowered
        i = pad4(i + 4 + size);
      }
      break;
    case LogType.EXT_INTRO:
      for (let i = 0; i + 20 <= d.length; ) {
        const extId = d.readUInt32LE(i);
        const resetId = d.readUInt32LE(i + 4);
        const hdrSize = d.readUInt32LE(i + 8);
        const recordSize = d.readUInt16LE(i + 12);
        const recordAlign = d.readUInt16LE(i + 14);
        const nameSize = d.readUInt16LE(i + 18);
        if (i + 20 + nameSize > d.length) throw bad('extension intro name runs past the record');
        introduce(state, extId, resetId, hdrSize, recordSize, recordAlign, d.toString('latin1', i + 20, i + 20 + nameSize), bad);
        i = pad4(i + 20 + nameSize);
      }
      break;
    case LogType.EXT_RESET: {
      const cur = state.current;
      if (!cur) throw bad('extension reset without an intro');
      if (d.length < 4) throw bad('extension reset record too short');
      cur.ext.resetId = d.readUInt32LE(0);
      const preserve = d.length >= 5 && d[4] !== 0;
      if (!preserve) {
        cur.ext.header.fill(0);
        if (cur.ext.name === 'modseq') for (const m of state.messages) m.modseq = 0n;
        for (const m of state.messages) m.ext?.delete(cur.ext.name);
      }
      break;
    }
    case LogType.EXT_HDR_UPDATE:
    case LogType.EXT_HDR_UPDATE32: {
      const cur = state.current;
      if (!cur) throw bad('extension header update without an intro');
      const wide = kind === LogType.EXT_HDR_UPDATE32;
      const itemHdr = wide ? 8 : 4;
      for (let i = 0; i + itemHdr <= d.length; ) {
        const off = wide ? d.readUInt32LE(i) : d.readUInt16LE(i);
        const size = wide ? d.readUInt32LE(i + 4) : d.readUInt16LE(i + 2);
        if (i + itemHdr + size > d.length) throw bad('extension header update runs past the record');
        if (!cur.ignore) {
          if (off + size > cur.ext.header.length) throw bad(`extension "${cur.ext.name}" header update outside its header (${off} + ${size} > ${cur.ext.header.length})`);
          d.copy(cur.ext.header, off, i + itemHdr, i + itemHdr + size);
        }
        i = pad4(i + itemHdr + size);
      }
      break;
    }
    case LogType.EXT_REC_UPDATE: {
      const cur = state.current;
      if (!cur) throw bad('extension record update without an intro');
      if (cur.ignore) break;
      const step = pad4(4 + cur.recordSize);
      for (let i = 0; i + step <= d.length; i += step) {
        const m = state.lookup(d.readUInt32LE(i));
        if (!m) continue;
        if (cur.ext.name === 'modseq') continue; // tracked by the counter
        if (UNUSED_RECORD_EXTS.has(cur.ext.name)) continue;
        const rec = state.record(m, cur.ext);
        d.copy(rec, 0, i + 4, i + 4 + Math.min(cur.recordSize, rec.length));
      }
      break;
    }
    case LogType.EXT_ATOMIC_INC: {
      const cur = state.current;
      if (!cur) throw bad('extension atomic increment without an intro');
      if (cur.ignore) break;
      for (let i = 0; i + 8 <= d.length; i += 8) {
        const m = state.lookup(d.readUInt32LE(i));
        if (!m) continue;
        atomicInc(state.record(m, cur.ext), d.readInt32LE(i + 4));
      }
      break;
    }
    case LogType.KEYWORD_UPDATE: {
      if (d.length < 4) throw bad('keyword update record too short');
      const remove = d[0] !== 0;
      const nameSize = d.readUInt16LE(2);
      if (4 + nameSize > d.length) throw bad('keyword name runs past the record');
      const name = d.toString('utf8', 4, 4 + nameSize);
      let idx = keywordIndex(state.keywords, name);
      if (idx < 0) {
        if (remove) break; // nothing to remove
        if (!state.findExt('keywords')) state.exts.push({ name: 'keywords', resetId: 0, recordSize: 0, recordAlign: 1, header: Buffer.alloc(0) });
        state.keywords.push(name);
        idx = state.keywords.length - 1;
      }
      for (const [a, b] of uidRanges(d, pad4(4 + nameSize))) {
        for (const m of state.range(a, b)) {
          if (remove) m.keywords?.delete(idx);
          else (m.keywords ??= new Set()).add(idx);
          touch(state, m);
        }
      }
      break;
    }
    case LogType.KEYWORD_RESET:
      for (const [a, b] of uidRanges(d, 0)) {
        for (const m of state.range(a, b)) {
          m.keywords = null;
          touch(state, m);
        }
      }
      break;
    case LogType.MODSEQ_UPDATE:
      for (let i = 0; i + 12 <= d.length; i += 12) {
        const uid = d.readUInt32LE(i);
        if (uid === 0) continue;
        const m = state.lookup(uid);
        const v = (BigInt(d.readUInt32LE(i + 8)) << 32n) | BigInt(d.readUInt32LE(i + 4));
        if (m && state.modseqEnabled && m.modseq < v) m.modseq = v;
      }
      break;
    case LogType.BOUNDARY:
    case LogType.INDEX_DELETED:
    case LogType.INDEX_UNDELETED:
    case LogType.ATTRIBUTE_UPDATE:
      break;
    default:
      throw bad(`unknown record type 0x${(rec.type >>> 0).toString(16)}`);
  }
}

function introduce(
  state: IndexState,
  extId: number,
  resetId: number,
  hdrSize: number,
  recordSize: number,
  recordAlign: number,
  name: string,
  bad: (why: string) => Error,
): void {
  let ext: IndexExtension | undefined;
  if (extId !== 0xffffffff) {
    ext = state.exts[extId];
    if (!ext) throw bad(`extension intro for unknown ext_id ${extId}`);
  } else {
    if (name === '') throw bad('extension intro without id or name');
    ext = state.findExt(name);
  }
  if (ext) {
    const ignore = ext.resetId !== resetId;
    if (!ignore) resize(ext, hdrSize, recordSize, recordAlign);
    state.current = { ext, ignore, recordSize };
    return;
  }
  ext = { name, resetId, recordSize, recordAlign, header: Buffer.alloc(hdrSize) };
  state.exts.push(ext);
  state.current = { ext, ignore: false, recordSize };
  if (name === 'modseq' && !state.modseqEnabled) {
    // Per-message modseqs start now; existing messages are pinned to the current counter.
    state.modseqEnabled = true;
    for (const m of state.messages) if (!m.expunged) m.modseq = state.modseqCounter;
  }
}

function resize(ext: IndexExtension, hdrSize: number, recordSize: number, recordAlign: number): void {
  if (hdrSize !== ext.header.length) {
    const h = Buffer.alloc(hdrSize);
    ext.header.copy(h, 0, 0, Math.min(hdrSize, ext.header.length));
    ext.header = h;
  }
  ext.recordSize = recordSize;
  ext.recordAlign = recordAlign;
}

function atomicInc(rec: Buffer, diff: number): void {
  switch (rec.length) {
    case 1:
      rec.writeUInt8((rec.readUInt8(0) + diff) & 0xff, 0);
      break;
    case 2:
      rec.writeUInt16LE((rec.readUInt16LE(0) + diff) & 0xffff, 0);
      break;
    case 4:
      rec.writeUInt32LE((rec.readUInt32LE(0) + diff) >>> 0, 0);
      break;
    case 8:
      rec.writeBigUInt64LE(BigInt.asUintN(64, rec.readBigUInt64LE(0) + BigInt(diff)), 0);
      break;
    default:
      break;
  }
}

/**
 * The number of keyword `name`, or -1. Dovecot looks names up in keywords_hash, made with
 * strcase_hash/strcasecmp (mail-index.c:mail_index_alloc), and keyword_lookup in
 * mail-index-sync-keywords.c takes the first keyword of the map with that name: two sessions that
 * created "$Junk" and "$junk" at once share one keyword, and a remove in either spelling clears it.
 */
function keywordIndex(keywords: readonly string[], name: string): number {
  const want = keywordKey(name);
  return keywords.findIndex((k) => k === name || (k.length === name.length && keywordKey(k) === want));
}

