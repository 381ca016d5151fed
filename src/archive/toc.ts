/**
 * TOC lines (`mailvault/toc.jsonl`): building them in a fixed key order (writer and reader share this so
 * the reader can recompute what the TOC must say), parsing and projecting them for comparison.
 */
import { firstOfEachKeyword } from './keywords.js';
import { ArchiveCorruptError } from '../core/errors.js';
import type { MessageRecord, TocEntry, TocEntryType, TocMessageEntry } from './records.js';

/** Where a member sits in the uncompressed stream. */
export interface MemberSpan {
  readonly member: string;
  readonly offset: number;
  readonly dataOffset: number;
  readonly size: number;
  readonly sha256: string;
}

export function plainTocEntry(id: number, type: Exclude<TocEntryType, 'message'>, span: MemberSpan, names: { user?: string; mailbox?: string } = {}): TocEntry {
  const base = { id, member: span.member, type, offset: span.offset, dataOffset: span.dataOffset, size: span.size, sha256: span.sha256 };
  if (type === 'user') return { ...base, type, user: names.user ?? '' };
  if (type === 'mailbox') return { ...base, type, user: names.user ?? '', mailbox: names.mailbox ?? '' };
  if (type === 'flags') return { ...base, type, user: names.user ?? '', mailbox: names.mailbox ?? '' };
  return { ...base, type };
}

export function messageTocEntry(id: number, body: MemberSpan, record: MemberSpan, message: MessageRecord): TocMessageEntry {
  return {
    id,
    member: body.member,
    type: 'message',
    offset: body.offset,
    dataOffset: body.dataOffset,
    size: body.size,
    sha256: body.sha256,
    recordOffset: record.offset,
    recordDataOffset: record.dataOffset,
    recordSize: record.size,
    recordSha256: record.sha256,
    user: message.user,
    mailbox: message.mailbox,
    uid: message.uid,
    flags: [...message.flags],
    keywords: [...message.keywords],
    internalDate: message.internalDate,
    summary: {
      from: message.summary.from,
      subject: message.summary.subject,
      messageId: message.summary.messageId,
      date: message.summary.date,
    },
  };
}

/** The TOC line text ("\n"-terminated). */
export function tocLine(entry: TocEntry): string {
  return `${JSON.stringify(entry)}\n`;
}

const COMMON_KEYS = ['id', 'member', 'type', 'offset', 'dataOffset', 'size', 'sha256'] as const;
const EXTRA_KEYS: Record<TocEntryType, readonly string[]> = {
  header: [],
  blob: [],
  user: ['user'],
  mailbox: ['user', 'mailbox'],
  flags: ['user', 'mailbox'],
  message: ['recordOffset', 'recordDataOffset', 'recordSize', 'recordSha256', 'user', 'mailbox', 'uid', 'flags', 'keywords', 'internalDate', 'summary'],
};

/**
 * The known fields of a TOC line in a fixed order, as text: two lines describe the same member iff their
 * projections are equal. Unknown keys (forward-compatible additions) are ignored.
 */
export function tocProjection(line: Record<string, unknown>): string {
  const type = line['type'] as TocEntryType;
  const keys = [...COMMON_KEYS, ...(EXTRA_KEYS[type] ?? [])];
  return JSON.stringify(keys.map((k) => {
    const v = line[k];
    if (k === 'summary' && v !== null && typeof v === 'object') {
      const s = v as Record<string, unknown>;
      return [s['from'], s['subject'], s['messageId'], s['date']];
    }
    // As the record's keywords are read (5.5): the first of keywords equal but for ASCII case.
    if (k === 'keywords' && Array.isArray(v) && v.every((x) => typeof x === 'string')) return firstOfEachKeyword(v as string[]);
    return v === undefined ? null : v;
  }));
}

const HEX64 = /^[0-9a-f]{64}$/;

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/** Parse and validate one TOC line. `lineNo` is 1-based; `offset` is where the line starts. */
export function parseTocLine(text: string, lineNo: number, member: string, offset: number): TocEntry {
  const fail = (why: string): ArchiveCorruptError =>
    new ArchiveCorruptError(`archive corrupt: "${member}" line ${lineNo} at offset ${offset}: ${why}`, {
      member,
      offset,
      hint: 'the table of contents was damaged: check the dump with "mailvault verify"',
    });
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (cause) {
    throw fail(`not valid JSON (${(cause as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw fail('not a JSON object');
  const o = v as Record<string, unknown>;
  const type = o['type'];
  if (typeof type !== 'string' || !(type in EXTRA_KEYS)) throw fail(`unknown entry type ${JSON.stringify(type)}`);
  if (!isCount(o['id']) || typeof o['member'] !== 'string' || !isCount(o['offset']) || !isCount(o['dataOffset']) || !isCount(o['size'])) {
    throw fail('id, member, offset, dataOffset or size missing or of the wrong type');
  }
  if (typeof o['sha256'] !== 'string' || !HEX64.test(o['sha256'])) throw fail('sha256 is not 64 lowercase hex digits');
  if ((type === 'user' || type === 'mailbox' || type === 'message') && typeof o['user'] !== 'string') throw fail('user missing');
  if ((type === 'mailbox' || type === 'message') && typeof o['mailbox'] !== 'string') throw fail('mailbox missing');
  if (type === 'message') {
    if (!isCount(o['recordOffset']) || !isCount(o['recordDataOffset']) || !isCount(o['recordSize']) || !isCount(o['uid'])) {
      throw fail('recordOffset, recordDataOffset, recordSize or uid missing or of the wrong type');
    }
    if (typeof o['recordSha256'] !== 'string' || !HEX64.test(o['recordSha256'])) throw fail('recordSha256 is not 64 lowercase hex digits');
    if (!isStringArray(o['flags']) || !isStringArray(o['keywords']) || typeof o['internalDate'] !== 'string') {
      throw fail('flags, keywords or internalDate missing or of the wrong type');
    }
    const s = o['summary'] as Record<string, unknown> | null;
    if (s === null || typeof s !== 'object' || !['from', 'subject', 'messageId', 'date'].every((k) => typeof s[k] === 'string')) {
      throw fail('summary missing or of the wrong type');
    }
    o['keywords'] = firstOfEachKeyword(o['keywords'] as string[]);
  }
  return o as unknown as TocEntry;
}

/**
 * Split the TOC data into lines (each at most MAX_RECORD_BYTES), yielding the line text and the offset
 * of its first byte. `start` is the offset of the first byte of `source`.
 */
export async function* splitTocLines(source: AsyncIterable<Buffer>, start: number, member: string, maxLine: number): AsyncGenerator<{ text: string; offset: number; lineNo: number }> {
  let parts: Buffer[] = [];
  let length = 0;
  let lineStart = start;
  let position = start;
  let lineNo = 0;
  for await (const raw of source) {
    let chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw as Uint8Array);
    while (chunk.length > 0) {
      const nl = chunk.indexOf(0x0a);
      const piece = nl === -1 ? chunk : chunk.subarray(0, nl);
      length += piece.length;
      if (length > maxLine) {
        throw new ArchiveCorruptError(`archive corrupt: "${member}" line ${lineNo + 1} at offset ${lineStart} is longer than ${maxLine} bytes`, { member, offset: lineStart });
      }
      parts.push(piece);
      position += piece.length;
      if (nl === -1) break;
      lineNo++;
      yield { text: Buffer.concat(parts, length).toString('utf8'), offset: lineStart, lineNo };
      parts = [];
      length = 0;
      position += 1;
      lineStart = position;
      chunk = chunk.subarray(nl + 1);
    }
  }
  if (length > 0) {
    throw new ArchiveCorruptError(`archive corrupt: "${member}" line ${lineNo + 1} at offset ${lineStart} does not end with a newline`, { member, offset: lineStart });
  }
}
