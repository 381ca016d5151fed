/**
 * `dovecot-uidlist`: the UID <-> file map of one Maildir mailbox (maildir-uidlist.c).
 *
 *   version 3:  "3 V<uidvalidity> N<nextuid> G<guid32hex> [<K><value> ...]\n"
 *               "<uid> [<K><value> ...] :<base>\n" ...
 *   version 1:  "1 <uidvalidity> <nextuid>\n"  "<uid> <filename>\n" ...
 *
 * Header N can be stale (Dovecot appends records without touching the header): the next UID is
 * max(N, last uid + 1). Record UIDs must increase strictly. Unknown header fields are kept verbatim
 * when the header is rewritten, as Dovecot does.
 */
import fs from 'node:fs';
import readline from 'node:readline';
import { StorageCorruptError, UnexpectedError, fromSystemError } from '../../core/errors.js';
import { decodeText } from '../../core/text-file.js';
import { hashBase, hashBaseBytes } from './base-hash.js';

export interface UidlistHeader {
  readonly version: 1 | 3;
  readonly uidValidity: number;
  /** N as written in the header (may be stale). */
  readonly headerNextUid: number;
  /** Mailbox GUID (32 lowercase hex) or null when the header has none. */
  readonly guid: string | null;
  /** Header fields other than V, N, G, verbatim ("P...", "X..."), in file order. */
  readonly extensions: readonly string[];
}

export interface UidlistRecord {
  readonly uid: number;
  /** Base file name (up to the first ":"), including any ",S=" / ",W=" parts. */
  readonly base: string;
  /** Extension fields by key letter (G = message GUID, S/W = sizes, P = POP3 UIDL, O = POP3 order, ...). */
  readonly ext: Readonly<Record<string, string>>;
}

export interface Uidlist {
  readonly header: UidlistHeader;
  /** Records in ascending UID order (duplicate bases resolved like Dovecot: the later record wins). */
  readonly records: UidlistRecord[];
  /** max(header N, highest record UID + 1). */
  readonly nextUid: number;
  /** False if the file's last line has no LF (an append must start with one). */
  readonly endsWithNewline: boolean;
}

export interface UidlistContext {
  readonly user?: string;
  readonly mailbox?: string;
}

const MAX_UID = 0xfffffffe;

function corrupt(path: string, line: number, why: string, ctx: UidlistContext): StorageCorruptError {
  const box = ctx.mailbox ?? 'MAILBOX';
  const user = ctx.user ?? 'USER';
  return new StorageCorruptError(`corrupt ${path} at line ${line}: ${why}`, {
    path,
    ...(ctx.user === undefined ? {} : { user: ctx.user }),
    ...(ctx.mailbox === undefined ? {} : { mailbox: ctx.mailbox }),
    hint: `let Dovecot repair it with "doveadm force-resync -u ${user} '${box}'", then run the same command again`,
  });
}

function parseDecimal(s: string): number | null {
  if (!/^[0-9]+$/.test(s)) return null;
  const n = Number(s);
  return Number.isSafeInteger(n) && n <= 0xffffffff ? n : null;
}

/** Parse the header line (line 1). */
export function parseUidlistHeader(line: string, path: string, ctx: UidlistContext = {}): UidlistHeader {
  if (!/^[0-9] /.test(line)) throw corrupt(path, 1, `invalid version number in header "${line.slice(0, 80)}"`, ctx);
  const version = Number(line[0]);
  const rest = line.slice(2);
  if (version === 1) {
    const m = /^([0-9]+) ([0-9]+)/.exec(rest);
    const uidValidity = m ? parseDecimal(m[1]!) : null;
    const next = m ? parseDecimal(m[2]!) : null;
    if (!uidValidity || !next) throw corrupt(path, 1, `broken version 1 header "${line.slice(0, 80)}"`, ctx);
    return { version: 1, uidValidity, headerNextUid: next, guid: null, extensions: [] };
  }
  if (version !== 3) throw corrupt(path, 1, `unsupported version ${version}`, ctx);
  let uidValidity = 0;
  let next = 0;
  let guid: string | null = null;
  const extensions: string[] = [];
  for (const field of rest.split(' ')) {
    if (field === '') continue;
    const key = field[0]!;
    const value = field.slice(1);
    if (key === 'V') {
      const v = parseDecimal(value);
      if (v === null) throw corrupt(path, 1, `invalid UIDVALIDITY "${value}"`, ctx);
      uidValidity = v;
    } else if (key === 'N') {
      const v = parseDecimal(value);
      if (v === null) throw corrupt(path, 1, `invalid next UID "${value}"`, ctx);
      next = v;
    } else if (key === 'G') {
      if (!/^[0-9a-fA-F]{32}$/.test(value)) throw corrupt(path, 1, `invalid mailbox GUID "${value}"`, ctx);
      guid = value.toLowerCase();
    } else {
      extensions.push(field);
    }
  }
  if (uidValidity === 0 || next === 0) throw corrupt(path, 1, `broken header (uidvalidity=${uidValidity}, next uid=${next})`, ctx);
  return { version: 3, uidValidity, headerNextUid: next, guid, extensions };
}

/** One parsed record line: its UID, base file name and extension fields. */
export interface RecordLine {
  readonly uid: number;
  readonly base: string;
  /** Extension fields by key letter; null when not asked for. */
  readonly ext: Record<string, string> | null;
}

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

/**
 * Parse the record line `text[start, end)` (no LF) of a uidlist with `header`, checking it like
 * maildir-uidlist.c: "<uid> [<K><value> ...] :<base>" (version 3) or "<uid> <filename>" (version 1),
 * UIDs ascending after `prevUid`. Fields whose key is not A-Z are dropped, as Dovecot does.
 * The line is parsed as UTF-8 bytes by parseRecordSpan, so both give the same answers and errors.
 */
export function parseRecordLine(
  text: string,
  start: number,
  end: number,
  header: UidlistHeader,
  prevUid: number,
  lineNo: number,
  path: string,
  ctx: UidlistContext,
  wantExt: boolean,
): RecordLine {
  const line = Buffer.from(start === 0 && end === text.length ? text : text.slice(start, end), 'utf8');
  const ext: Record<string, string> | null = wantExt ? {} : null;
  const span = { uid: 0, baseStart: 0, baseEnd: 0 };
  parseRecordSpan(line, 0, line.length, header, prevUid, lineNo, path, ctx, ext, span);
  return { uid: span.uid, base: line.toString('utf8', span.baseStart, span.baseEnd), ext };
}

/** Where a record line's parts are: filled in by parseRecordSpan. */
export interface RecordSpan {
  uid: number;
  /** The base name is data[baseStart, baseEnd) (UTF-8). */
  baseStart: number;
  baseEnd: number;
}

/**
 * The record line `data[start, end)` (the file's bytes, no LF) parsed without allocating: the UID and
 * where the base name is go into `out` (a listing reuses one object for every line), extension fields
 * into `ext` when it is not null. The grammar and checks of parseRecordLine, which calls this.
 * Bytes, not a decoded string: a backup parses every line of every uidlist, and decoding a large
 * uidlist to a string costs more than parsing it. Index arithmetic, not regular expressions, for the
 * same reason.
 */
export function parseRecordSpan(
  data: Buffer,
  start: number,
  end: number,
  header: UidlistHeader,
  prevUid: number,
  lineNo: number,
  path: string,
  ctx: UidlistContext,
  ext: Record<string, string> | null,
  out: RecordSpan,
): void {
  const excerpt = (from: number): string => data.toString('utf8', from, end).slice(0, 80);
  const invalid = (): StorageCorruptError => corrupt(path, lineNo, `invalid record "${excerpt(start)}"`, ctx);
  let i = start;
  let uid = 0;
  for (let c = data[i]!; i < end && isDigit(c); c = data[++i]!) uid = uid * 10 + (c - 0x30);
  if (i === start || i >= end || data[i] !== 0x20) throw invalid();
  if (i - start > 10 || uid > 0xffffffff || uid === 0) throw invalid();
  if (uid <= prevUid) throw corrupt(path, lineNo, `UIDs not ordered (${uid} after ${prevUid})`, ctx);
  if (uid > MAX_UID) throw corrupt(path, lineNo, `UID too high (${uid})`, ctx);
  if (header.version === 1 && uid >= header.headerNextUid) {
    throw corrupt(path, lineNo, `UID ${uid} is not below the header's next UID ${header.headerNextUid}`, ctx);
  }
  while (i < end && data[i] === 0x20) i++;
  if (header.version === 3) {
    while (i < end && data[i] !== 0x3a) {
      let sp = i;
      while (sp < end && data[sp] !== 0x20) sp++;
      const key = data[i]!;
      if (ext !== null && key >= 0x41 && key <= 0x5a) ext[String.fromCharCode(key)] = data.toString('utf8', i + 1, sp);
      i = sp;
      while (i < end && data[i] === 0x20) i++;
    }
    if (i < end && data[i] === 0x3a) i++;
  }
  if (i >= end) throw corrupt(path, lineNo, `record for UID ${uid} has no file name`, ctx);
  let colon = end;
  for (let j = i; j < end; j++) {
    const c = data[j]!;
    if (c === 0x2f) colon = -1;
    else if (c === 0x3a && colon === end) colon = j;
    if (colon < 0) break;
  }
  if (colon < 0) throw corrupt(path, lineNo, `record for UID ${uid} has a broken file name "${excerpt(i)}"`, ctx);
  out.uid = uid;
  out.baseStart = i;
  out.baseEnd = colon;
}

/** Incremental record parser: feed lines 2.. in order. */
export class UidlistParser {
  readonly records: UidlistRecord[] = [];
  private readonly byBase = new Map<string, number>();
  private prevUid = 0;
  private removed = 0;

  constructor(
    readonly header: UidlistHeader,
    private readonly path: string,
    private readonly ctx: UidlistContext = {},
  ) {}

  /** Parse one record line; `lineNo` is 1-based in the file. */
  addLine(line: string, lineNo: number): void {
    const r = parseRecordLine(line, 0, line.length, this.header, this.prevUid, lineNo, this.path, this.ctx, true);
    this.prevUid = r.uid;
    const base = r.base;
    const old = this.byBase.get(base);
    const index = this.records.length;
    if (old !== undefined) {
      // Dovecot: "Duplicate file entry" - the later UID replaces the earlier one.
      (this.records as (UidlistRecord | null)[])[old] = null;
      this.removed++;
    }
    this.byBase.set(base, index);
    this.records.push({ uid: r.uid, base, ext: r.ext! });
  }

  finish(endsWithNewline: boolean): Uidlist {
    const records = this.removed > 0 ? this.records.filter((r): r is UidlistRecord => r !== null) : this.records;
    const last = records.length > 0 ? records[records.length - 1]!.uid : 0;
    return { header: this.header, records, nextUid: Math.max(this.header.headerNextUid, last + 1), endsWithNewline };
  }
}

/** Parse a whole uidlist held in memory (tests, small files). Empty text means "no uidlist yet": null. */
export function parseUidlist(text: string, path: string, ctx: UidlistContext = {}): Uidlist | null {
  if (text === '') return null;
  const lines = text.split('\n');
  const endsWithNewline = text.endsWith('\n');
  if (endsWithNewline) lines.pop();
  const parser = new UidlistParser(parseUidlistHeader(lines[0]!, path, ctx), path, ctx);
  for (let i = 1; i < lines.length; i++) parser.addLine(lines[i]!, i + 1);
  return parser.finish(endsWithNewline);
}

/**
 * Read and parse `path` line by line; null if it does not exist or is empty. With
 * `ignorePartialLastLine` (readers not holding the lock), a last line without LF is skipped: it may be a
 * record Dovecot is appending right now.
 */
export async function readUidlist(path: string, ctx: UidlistContext = {}, ignorePartialLastLine = false): Promise<Uidlist | null> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fromSystemError(e, 'read the uidlist', { path, ...ctx });
  }
  try {
    const st = await handle.stat();
    if (st.size === 0) return null;
    const last = Buffer.alloc(1);
    await handle.read(last, 0, 1, st.size - 1);
    const endsWithNewline = last[0] === 0x0a;
    const rl = readline.createInterface({ input: handle.createReadStream({ encoding: 'utf8', autoClose: false, start: 0, end: st.size - 1 }), crlfDelay: Infinity });
    let parser: UidlistParser | null = null;
    let lineNo = 0;
    let pending: string | null = null;
    const consume = (line: string, no: number): void => {
      if (parser === null) parser = new UidlistParser(parseUidlistHeader(line, path, ctx), path, ctx);
      else parser.addLine(line, no);
    };
    for await (const line of rl) {
      if (pending !== null) consume(pending, lineNo);
      lineNo++;
      pending = line;
    }
    if (pending !== null && (endsWithNewline || !ignorePartialLastLine || lineNo === 1)) consume(pending, lineNo);
    if (parser === null) return null;
    return (parser as UidlistParser).finish(endsWithNewline);
  } catch (e) {
    throw fromSystemError(e, 'read the uidlist', { path, ...ctx });
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** Header line (with LF) in Dovecot's order: version 3, V, N, G, then kept extensions. */
export function formatUidlistHeader(h: { uidValidity: number; nextUid: number; guid: string; extensions?: readonly string[] }): string {
  const ext = h.extensions && h.extensions.length > 0 ? ' ' + h.extensions.join(' ') : '';
  return `3 V${h.uidValidity} N${h.nextUid} G${h.guid}${ext}\n`;
}

/** One record line (with LF). Extension values must not contain spaces or LF. */
export function formatUidlistRecord(r: UidlistRecord): string {
  let s = String(r.uid);
  for (const [k, v] of Object.entries(r.ext)) {
    if (!/^[A-Z]$/.test(k) || /[\s]/.test(v)) throw new UnexpectedError(`invalid uidlist extension ${k}=${JSON.stringify(v)}`);
    s += ` ${k}${v}`;
  }
  return `${s} :${r.base}\n`;
}

/**
 * A set of 32-bit hashes of base names (open addressing, 4 bytes a slot): what a commit needs to
 * refuse a base the uidlist already lists, without holding the names. A hit is confirmed against the
 * file, so a collision costs a re-read, never a wrong answer.
 */
export class BaseHashes {
  private table = new Uint32Array(1024);
  private count = 0;

  /** hashBase (FNV-1a over the name's UTF-8 bytes), never 0. */
  static hash(base: string): number {
    return hashBase(base) || 1; // 0 marks an empty slot
  }

  /** hash() of the base name data[start, end) (UTF-8). */
  static hashBytes(data: Uint8Array, start: number, end: number): number {
    return hashBaseBytes(data, start, end) || 1;
  }

  add(base: string): void {
    this.addHash(BaseHashes.hash(base));
  }

  /** add() of the base name data[start, end) (UTF-8). */
  addBytes(data: Uint8Array, start: number, end: number): void {
    this.addHash(BaseHashes.hashBytes(data, start, end));
  }

  private addHash(h: number): void {
    if ((this.count + 1) * 2 > this.table.length) this.grow();
    if (this.insert(this.table, h)) this.count++;
  }

  has(base: string): boolean {
    const h = BaseHashes.hash(base);
    const mask = this.table.length - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const v = this.table[i]!;
      if (v === 0) return false;
      if (v === h) return true;
    }
  }

  private insert(table: Uint32Array, h: number): boolean {
    const mask = table.length - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const v = table[i]!;
      if (v === h) return false;
      if (v === 0) {
        table[i] = h;
        return true;
      }
    }
  }

  private grow(): void {
    const next = new Uint32Array(this.table.length * 2);
    for (const v of this.table) if (v !== 0) this.insert(next, v);
    this.table = next;
  }
}

/** What a commit needs of the uidlist it holds the lock of (readUidlistForCommit). */
export interface UidlistCommitView {
  readonly header: UidlistHeader;
  /** max(header N, highest record UID + 1). */
  readonly nextUid: number;
  /** False if the file's last line has no LF (an append must start with one). */
  readonly endsWithNewline: boolean;
  /** The first of `bases` the file already lists, or null. */
  listedBase(bases: Iterable<string>): string | null;
}

interface CachedUidlist {
  readonly dev: number;
  readonly ino: number;
  size: number;
  /**
   * The last bytes before `size` as read: the file must still hold them for the cache to be used. Dovecot
   * replaces the uidlist by rename, and a file system may give the new file the inode number of the
   * one it replaced, at a size no smaller; comparing these bytes (and the first line) tells them apart.
   */
  tail: Buffer;
  readonly head: Buffer;
  lineNo: number;
  readonly header: UidlistHeader;
  lastUid: number;
  readonly bases: BaseHashes;
}

/** Bytes before the cached size compared on each later read (CachedUidlist.tail): a few records. */
const TAIL_BYTES = 256;

/** Up to `length` bytes of `fd` from `position` (fewer at the end of the file). */
function readAt(fd: number, position: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = fs.readSync(fd, out, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return out.subarray(0, got);
}

/** The uidlists of the mailboxes this process commits to (a few at a time; oldest dropped). */
const committedUidlists = new Map<string, CachedUidlist>();
const MAX_CACHED_UIDLISTS = 16;

/**
 * The uidlist at `path` as a commit needs it, or null when there is none (or it is empty). Called under
 * the uidlist lock, so the whole file is final. When the file (same device and inode) has only grown
 * since this process last read it, only the appended lines are parsed: a restore that commits every few
 * hundred messages into a large mailbox would otherwise re-parse the whole file each time. What is kept
 * between calls is the header, the last UID and 4 bytes per base name (BaseHashes), not the records.
 * The file must end with a newline (it does under the lock); otherwise, and whenever the inode changed
 * or the file shrank, it is read whole. Every line is checked as a reader checks it.
 */
export function readUidlistForCommit(path: string, ctx: UidlistContext = {}): UidlistCommitView | null {
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
  } catch (e) {
    committedUidlists.delete(path);
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fromSystemError(e, 'read the uidlist', { path, ...ctx });
  }
  let cached = committedUidlists.get(path);
  let endsWithNewline = true;
  try {
    if (cached && cached.dev === st.dev && cached.ino === st.ino && st.size >= cached.size) {
      // One read: the first line and the kept tail (both must be unchanged), then what was appended.
      const c: CachedUidlist = cached;
      const fd = fs.openSync(path, 'r');
      let head: Buffer;
      let rest: Buffer;
      try {
        head = readAt(fd, 0, c.head.length);
        rest = readAt(fd, c.size - c.tail.length, st.size - c.size + c.tail.length);
      } finally {
        fs.closeSync(fd);
      }
      const added = rest.subarray(c.tail.length);
      if (!head.equals(c.head) || !rest.subarray(0, c.tail.length).equals(c.tail)) {
        cached = readWhole();
      } else if (added.length > 0) {
        if (added[added.length - 1] !== 0x0a) {
          cached = readWhole();
        } else {
          addLines(c, added, 0, added.length - 1);
          c.size += added.length;
          c.tail = Buffer.from(rest.subarray(rest.length - Math.min(TAIL_BYTES, rest.length)));
        }
      }
    } else {
      cached = readWhole();
    }
  } catch (e) {
    committedUidlists.delete(path);
    throw fromSystemError(e, 'read the uidlist', { path, ...ctx });
  }
  if (cached === undefined) return null;
  const view = cached;
  return {
    header: view.header,
    nextUid: Math.max(view.header.headerNextUid, view.lastUid + 1),
    endsWithNewline,
    listedBase(bases: Iterable<string>): string | null {
      const suspects = [...bases].filter((b) => view.bases.has(b));
      if (suspects.length === 0) return null;
      // A hash hit: confirm against the names themselves.
      const names = new Set((parseUidlist(decodeText(fs.readFileSync(path)), path, ctx)?.records ?? []).map((r) => r.base));
      return suspects.find((b) => names.has(b)) ?? null;
    },
  };

  /** Parse the record lines of data[from, to) (LF-separated, no LF at `to`) into `c`. */
  function addLines(c: CachedUidlist, data: Buffer, from: number, to: number): void {
    const span: RecordSpan = { uid: 0, baseStart: 0, baseEnd: 0 };
    let lineStart = from;
    while (lineStart < to) {
      let lineEnd = data.indexOf(0x0a, lineStart);
      if (lineEnd < 0 || lineEnd > to) lineEnd = to;
      parseRecordSpan(data, lineStart, lineEnd, c.header, c.lastUid, ++c.lineNo, path, ctx, null, span);
      c.lastUid = span.uid;
      c.bases.addBytes(data, span.baseStart, span.baseEnd);
      lineStart = lineEnd + 1;
    }
  }

  function readWhole(): CachedUidlist | undefined {
    committedUidlists.delete(path);
    const data = fs.readFileSync(path);
    if (data.length === 0) return undefined;
    endsWithNewline = data[data.length - 1] === 0x0a;
    const firstEnd = data.indexOf(0x0a);
    const header = parseUidlistHeader(data.toString('utf8', 0, firstEnd < 0 ? data.length : firstEnd), path, ctx);
    const headEnd = firstEnd < 0 ? data.length : firstEnd + 1;
    const c: CachedUidlist = {
      dev: st.dev,
      ino: st.ino,
      size: data.length,
      tail: Buffer.from(data.subarray(Math.max(headEnd, data.length - TAIL_BYTES))),
      head: Buffer.from(data.subarray(0, headEnd)),
      lineNo: 1,
      header,
      lastUid: 0,
      bases: new BaseHashes(),
    };
    if (firstEnd >= 0) addLines(c, data, firstEnd + 1, endsWithNewline ? data.length - 1 : data.length);
    if (endsWithNewline) {
      if (committedUidlists.size >= MAX_CACHED_UIDLISTS) committedUidlists.delete(committedUidlists.keys().next().value!);
      committedUidlists.set(path, c);
    }
    return c;
  }
}
