/**
 * Reading one Maildir mailbox (MailboxReader): the uidlist joined with the files in new/ and cur/ by base
 * name (maildir-sync.c, maildir-uidlist.c).
 *
 * - Files without a uidlist record have no UID yet (Dovecot assigns one at its next sync): they are not
 *   messages yet and are skipped. Records without a file are expunged messages.
 * - Flags come from the `:2,` info, keywords from its a..z letters via dovecot-keywords, plus the
 *   keywords Dovecot keeps only in its index (index-keywords.ts: those without a letter, beyond 26 for
 *   one). A flag change Dovecot still has pending ("dirty" index records) is not seen.
 * - INTERNALDATE = file mtime. saveDate = null: Dovecot takes it from its cache or the file ctime, and
 *   ctime changes at every flag rename, so it is not a save date; it is given as changedAt (a bound:
 *   a time-based incremental carries what changed since, moved and copied mail included).
 * - size = `,S=` in the name, else the record's S extension, else the file size. openMessage yields
 *   exactly that many bytes or fails with an IntegrityError.
 * - A message renamed (flag change) or moved new/ -> cur/ by Dovecot meanwhile is found again by
 *   rescanning both directories for its base name.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Transform, pipeline, type TransformCallback } from 'node:stream';
import { pipeline as pipelinePromise } from 'node:stream/promises';
import { IntegrityError, StorageNotFoundError, UnsupportedMessageError, fromSystemError, isMailvaultError, type MailvaultError } from '../../core/errors.js';
import { canDecompress, compressionOf, decompressStream, decompressWhole, MAGIC_BYTES, type Compression } from '../compression.js';
import type { MailboxInfo, MailboxReader, MessageInfo, MessageListOptions, MessageWithBody, OpenMessageOptions, SystemFlag } from '../types.js';
import { baseName, filenameSize, isMessageFileName, parseInfo } from './filename.js';
import { keywordKey } from '../flags.js';
import { KeywordMap, readKeywords } from './keywords.js';
import type { MailboxPaths } from './mailbox-names.js';
import { maildirChangeToken } from './change-token.js';
import { MaildirListing } from './listing.js';
import type { UidlistRecord } from './uidlist.js';
import { readAheadPool } from './read-ahead.js';
import { NO_INDEX_KEYWORDS, type IndexKeywords } from './index-keywords.js';
import { META_FIELDS, PATH_SEPARATOR, type ReadBatch } from './read-files.js';

export const UIDLIST_FILE = 'dovecot-uidlist';
export const KEYWORDS_FILE = 'dovecot-keywords';

export interface FileEntry {
  readonly sub: 'new' | 'cur';
  /** The file name (for a name that is not valid UTF-8: its decoding with U+FFFD, for messages). */
  readonly name: string;
  /** The file name's bytes where they are not valid UTF-8: the file is opened by them. */
  readonly raw?: Buffer;
}

/**
 * The file whose base name is the bytes `base` (not valid UTF-8: Node's strings cannot name it), read
 * by bytes from new/ then cur/ (cur/ wins); null if there is none.
 */
async function findRawFile(mailDir: string, base: Buffer): Promise<FileEntry | null> {
  let found: FileEntry | null = null;
  for (const sub of ['new', 'cur'] as const) {
    let names: Buffer[];
    try {
      names = await fs.promises.readdir(path.join(mailDir, sub), { encoding: 'buffer' });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw fromSystemError(e, 'list the messages', { path: path.join(mailDir, sub) });
    }
    for (const raw of names) {
      const colon = raw.indexOf(0x3a);
      if ((colon < 0 ? raw.length : colon) === base.length && raw.subarray(0, base.length).equals(base)) found = { sub, name: raw.toString('utf8'), raw };
    }
  }
  return found;
}

/** Files in new/ and cur/ by base name (cur/ wins a duplicate). Missing directories count as empty. */
export async function scanMailDirs(mailDir: string, onlyBase?: string): Promise<Map<string, FileEntry>> {
  const files = new Map<string, FileEntry>();
  for (const sub of ['new', 'cur'] as const) {
    let names: string[];
    try {
      names = await fs.promises.readdir(path.join(mailDir, sub));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw fromSystemError(e, 'list the messages', { path: path.join(mailDir, sub) });
    }
    for (const name of names) {
      if (!isMessageFileName(name)) continue;
      const base = baseName(name);
      if (onlyBase !== undefined && base !== onlyBase) continue;
      files.set(base, { sub, name });
    }
  }
  return files;
}

export interface MailboxState {
  readonly paths: MailboxPaths;
  readonly listing: MaildirListing;
  readonly keywords: KeywordMap;
  readonly info: MailboxInfo;
  /** Files without a UID that could not be given one (MailboxReader.notListed). */
  readonly notListed?: readonly MailvaultError[];
}

/** Read uidlist, keywords and directory listing of a mailbox. */
export async function loadMailboxState(paths: MailboxPaths, user: string): Promise<MailboxState> {
  const ctx = { user, mailbox: paths.name };
  // Before the listing: a change while it is read then shows in the next run's token.
  const changeToken = maildirChangeToken(path.join(paths.controlDir, UIDLIST_FILE), path.join(paths.controlDir, KEYWORDS_FILE), paths.mailDir, paths.indexDir);
  const listing = MaildirListing.load(path.join(paths.controlDir, UIDLIST_FILE), paths.mailDir, ctx);
  let { map: keywords } = await readKeywords(path.join(paths.controlDir, KEYWORDS_FILE));
  // Dovecot puts a new keyword's letter into file names during its sync and writes dovecot-keywords
  // at the sync's end (maildir-keywords.c maildir_keywords_sync_deinit): a letter without a name may
  // be one it is about to write, under the uidlist lock. Wait for that lock to go (2 s at most), then
  // read the file once more before calling the letter "unknown-N".
  if (hasUnnamedLetter(listing, keywords)) {
    await lockGone(path.join(paths.controlDir, `${UIDLIST_FILE}.lock`), KEYWORDS_WAIT_MS);
    ({ map: keywords } = await readKeywords(path.join(paths.controlDir, KEYWORDS_FILE)));
  }
  const info: MailboxInfo = {
    name: paths.name,
    guid: listing.header?.guid ?? null,
    uidValidity: listing.header?.uidValidity ?? 0,
    uidNext: listing.nextUid,
    highestModseq: null,
    messageCount: listing.messageCount,
    specialUse: [],
    selectable: true,
    changeToken,
  };
  return { paths, listing, keywords, info };
}

const KEYWORDS_WAIT_MS = 2000;

/** Resolves once `lockFile` does not exist, or after `ms`. */
async function lockGone(lockFile: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (fs.existsSync(lockFile) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
}

function hasUnnamedLetter(listing: MaildirListing, keywords: KeywordMap): boolean {
  return listing.distinctSuffixes.some((suffix) => parseInfo(suffix).keywordSlots.some((slot) => keywords.names[slot] === undefined));
}

function sortKeywords(names: Iterable<string>): string[] {
  const seen = new Map<string, string>();
  for (const n of names) if (!seen.has(keywordKey(n))) seen.set(keywordKey(n), n);
  return [...seen.values()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Messages up to this size are read with one read() into memory; larger ones are streamed. */
const SMALL_MESSAGE_BYTES = 1024 * 1024;
/** Read-ahead batches (messagesWithBodies): about this many bytes or files each, this many ahead. */
const READ_AHEAD_BATCH_BYTES = 512 * 1024;
const READ_AHEAD_BATCH_FILES = 128;
const READ_AHEAD_BATCHES = 3;

interface BatchItem {
  readonly i: number;
  readonly record: UidlistRecord;
  /** Index of its file in the batch read, -1 if not read ahead. */
  readonly slot: number;
}

interface PendingBatch {
  readonly items: readonly BatchItem[];
  readonly read: Promise<ReadBatch | null>;
}
/**
 * Read size for larger messages: each read is a thread-pool round trip (~150 us on the machines
 * measured), so 1 MiB instead of the stream default of 64 KiB.
 */
const STREAM_CHUNK_BYTES = 1024 * 1024;

class SizeCheck extends Transform {
  private seen = 0;
  constructor(
    private readonly expected: number,
    private readonly fail: (actual: string) => IntegrityError,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.expected) return cb(this.fail(`more than ${this.expected}`));
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (this.seen !== this.expected) return cb(this.fail(String(this.seen)));
    cb();
  }
}

export class MaildirMailboxReader implements MailboxReader {
  private closed = false;

  constructor(
    private readonly state: MailboxState,
    private readonly user: string,
    private readonly indexKeywords: IndexKeywords = NO_INDEX_KEYWORDS,
  ) {
    this.dirPrefix = path.join(state.paths.mailDir, '/');
    this.warnings = indexKeywords.warning === undefined ? [] : [indexKeywords.warning];
  }

  readonly warnings: readonly string[];

  get info(): MailboxInfo {
    return this.state.info;
  }

  get notListed(): readonly MailvaultError[] {
    return this.state.notListed ?? [];
  }

  /** mailDir with one trailing "/": file paths are built by concatenation (path.join per message showed in profiles). */
  private readonly dirPrefix: string;

  /** The path to open: a string, or bytes for a file name that is not valid UTF-8. */
  private filePath(entry: FileEntry): string | Buffer {
    if (entry.raw !== undefined) return Buffer.concat([Buffer.from(`${this.dirPrefix}${entry.sub}/`), entry.raw]);
    return this.shownPath(entry);
  }

  /** The path for messages (a name that is not valid UTF-8 shows U+FFFD). */
  private shownPath(entry: FileEntry): string {
    // entry.name comes from readdir (no "/"), entry.sub is "new" or "cur".
    return `${this.dirPrefix}${entry.sub}/${entry.name}`;
  }

  private notFound(uid: number, why: string): StorageNotFoundError {
    return new StorageNotFoundError(`message UID ${uid} in mailbox "${this.state.paths.name}" of user ${this.user} ${why}`, {
      user: this.user,
      mailbox: this.state.paths.name,
      uid,
      path: this.state.paths.mailDir,
      hint: 'it was probably expunged meanwhile; run the same command again to get a consistent listing',
    });
  }

  /** Find the file of record i again (after a rename by Dovecot); null if it is gone. */
  private async relocate(i: number): Promise<FileEntry | null> {
    const raw = this.state.listing.rawBase(i);
    const base = this.state.listing.base(i);
    const found = raw !== null ? await findRawFile(this.state.paths.mailDir, raw) : ((await scanMailDirs(this.state.paths.mailDir, base)).get(base) ?? null);
    this.state.listing.relocate(i, found);
    return found;
  }

  private async statRecord(i: number): Promise<{ entry: FileEntry; st: fs.Stats } | null> {
    let entry: FileEntry | null = this.state.listing.file(i);
    for (let attempt = 0; entry !== null && attempt < 3; attempt++) {
      try {
        // Synchronous on purpose: ~5 us, against ~150 us for a thread-pool round trip (see openMessage).
        return { entry, st: fs.statSync(this.filePath(entry)) };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw fromSystemError(e, 'read the message file', { path: this.shownPath(entry), user: this.user, mailbox: this.state.paths.name, uid: this.state.listing.uid(i) });
        }
        entry = await this.relocate(i);
      }
    }
    return null;
  }

  /**
   * Flags and keywords by file-name suffix id: a mailbox has few distinct suffixes (":2,S", ":2,RS",
   * ...). Frozen: flagsOnly listings hand them out shared (MessageInfo's arrays are readonly).
   */
  private readonly flagsBySuffix = new Map<number, { readonly flags: readonly SystemFlag[]; readonly keywords: readonly string[] }>();

  private flagsOf(i: number): { readonly flags: readonly SystemFlag[]; readonly keywords: readonly string[] } {
    const id = this.state.listing.suffixIdOf(i);
    let known = this.flagsBySuffix.get(id);
    if (known === undefined) {
      const { flags, keywordSlots } = parseInfo(this.state.listing.file(i).name);
      const keywords = keywordSlots.length === 0 ? [] : sortKeywords(keywordSlots.map((s) => this.state.keywords.nameOf(s)));
      known = { flags: Object.freeze(flags), keywords: Object.freeze(keywords) };
      this.flagsBySuffix.set(id, known);
    }
    return known;
  }

  /** Keywords of record i: its file name's, and any Dovecot keeps for its UID only in the index. */
  private keywordsOf(uid: number, known: { readonly keywords: readonly string[] }): readonly string[] {
    const indexOnly = this.indexKeywords.byUid.get(uid);
    return indexOnly === undefined ? known.keywords : Object.freeze(sortKeywords([...known.keywords, ...indexOnly]));
  }

  /** The size Dovecot recorded: `,S=` in the file name, else the record's S extension; null if neither. */
  private static recordedSize(record: UidlistRecord): number | null {
    const sizeFromRecord = record.ext['S'] !== undefined && /^[0-9]+$/.test(record.ext['S']) ? Number(record.ext['S']) : null;
    return filenameSize(record.base, 'S') ?? sizeFromRecord;
  }

  /** `st`: the file's mtime and size (fs.Stats, or what the read-ahead saw); null when not looked at. */
  private toInfo(i: number, record: UidlistRecord, st: { readonly mtimeMs: number; readonly size: number; readonly ctimeMs?: number } | null, recorded: number | null = MaildirMailboxReader.recordedSize(record)): MessageInfo {
    const known = this.flagsOf(i);
    const size = recorded ?? st?.size ?? 0;
    let extra: Record<string, string> | null = null;
    for (const k in record.ext) if (k !== 'G' && k !== 'S' && k !== 'W') (extra ??= {})[`maildir.${k}`] = record.ext[k]!;
    return {
      uid: record.uid,
      guid: record.ext['G'] || record.base,
      flags: known.flags.slice(),
      keywords: this.keywordsOf(record.uid, known).slice(),
      internalDate: st === null ? 0 : Math.floor(st.mtimeMs / 1000),
      saveDate: null,
      size,
      modseq: null,
      ...(st?.ctimeMs !== undefined ? { changedAt: Math.floor(st.ctimeMs / 1000) } : {}),
      ...(extra !== null ? { extra } : {}),
    };
  }

  /**
   * UID and flags only (an incremental's comparison): no uidlist record parsed, no file name built, no
   * stat; flags come from the file-name suffix, parsed once per distinct suffix.
   */
  private *flagListing(minUid: number): Generator<MessageInfo> {
    const listing = this.state.listing;
    for (let i = listing.lowerBound(minUid); i < listing.recordCount; i++) {
      if (!listing.hasFile(i)) continue;
      const known = this.flagsOf(i);
      const uid = listing.uid(i);
      yield { uid, guid: null, flags: known.flags, keywords: this.keywordsOf(uid, known), internalDate: 0, saveDate: null, size: 0, modseq: null };
    }
  }

  /** See MailboxReader.listFlags: everything is in memory once the mailbox is open. */
  listFlags(): Iterable<MessageInfo> {
    return this.flagListing(1);
  }

  async *messages(options: MessageListOptions = {}): AsyncIterable<MessageInfo> {
    const listing = this.state.listing;
    if (options.flagsOnly === true && options.dates === false) {
      for (const m of this.flagListing(options.minUid ?? 1)) {
        if (this.closed) return;
        yield m;
      }
      return;
    }
    for (let i = listing.lowerBound(options.minUid ?? 1); i < listing.recordCount; i++) {
      if (this.closed) return;
      if (!listing.hasFile(i)) continue;
      const record = listing.record(i);
      if (options.dates === false && MaildirMailboxReader.recordedSize(record) !== null) {
        // No stat: the size is in the name or the record, and the caller needs no dates.
        yield this.toInfo(i, record, null);
        continue;
      }
      const found = await this.statRecord(i);
      if (found === null) continue; // expunged since the listing
      yield await this.statedInfo(i, record, found);
    }
  }

  /**
   * Messages whose files are compressed (Dovecot's zlib plugin, or a compression script) but whose size
   * is not recorded (no ,S= in the name, no S in the record: mail an MTA delivered, compressed outside
   * Dovecot), by UID: the compression, and for the formats mailvault reads the size decompressed.
   * Dovecot serves such a file decompressed (it goes by the first bytes), so that is the message.
   */
  private readonly unrecordedCompressed = new Map<number, { readonly kind: Compression; readonly size: number | null }>();

  /**
   * toInfo for a message that was stat'ed. Where the size is not recorded, the file's first bytes say
   * whether it is compressed (as Dovecot decides); if so, the message size is the decompressed length
   * (counted by decompressing the file once), and reads decompress it.
   */
  private async statedInfo(i: number, record: UidlistRecord, found: { entry: FileEntry; st: fs.Stats }): Promise<MessageInfo> {
    const recorded = MaildirMailboxReader.recordedSize(record);
    const info = this.toInfo(i, record, found.st, recorded);
    if (recorded !== null || found.st.size < 2) return info;
    // Never throws: what cannot be looked at here is reported by the read of this message (which
    // checks the first bytes again: compressedWithoutSize), not by ending the listing.
    let entry: FileEntry | null = found.entry;
    for (let attempt = 0; entry !== null && attempt < 3; attempt++) {
      const file = this.filePath(entry);
      let kind: Compression | null;
      try {
        kind = readCompression(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return info;
        entry = await this.relocate(i); // renamed by Dovecot (flags, new/ -> cur/): look at it there
        continue;
      }
      if (kind === null) return info;
      if (!canDecompress(kind)) {
        this.unrecordedCompressed.set(record.uid, { kind, size: null });
        return info;
      }
      try {
        const size = await decompressedLength(kind, file);
        this.unrecordedCompressed.set(record.uid, { kind, size });
        return { ...info, size };
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          entry = await this.relocate(i);
          continue;
        }
        // A file-system error other than that: the read reports it. Anything else: the data does not
        // decompress, and the read says so (damagedUnrecorded).
        if (!isFileSystemError(e)) this.unrecordedCompressed.set(record.uid, { kind, size: null });
        return info;
      }
    }
    return info;
  }

  /**
   * A message read with the size it was listed with, whose bytes start as compressed data although
   * neither its name nor its record gives a size and the listing did not find it compressed (it could
   * not look: permissions, an I/O error, a race): its size is that of the compressed file, not of the
   * message, so it must not be taken as it is. The compression, or null when this is not the case.
   */
  private compressedWithoutSize(message: MessageInfo, head: Buffer): Compression | null {
    const c = head[0];
    if (c !== 0x1f && c !== 0x28 && c !== 0x42 && c !== 0xfd && c !== 0x44) return null; // no magic starts otherwise
    const kind = compressionOf(head.subarray(0, MAGIC_BYTES));
    if (kind === null || this.unrecordedCompressed.has(message.uid)) return null;
    const i = this.state.listing.indexOfUid(message.uid);
    if (i < 0 || MaildirMailboxReader.recordedSize(this.state.listing.record(i)) !== null) return null;
    return kind;
  }

  private unprobedCompressed(message: MessageInfo, file: string, kind: Compression): IntegrityError {
    return new IntegrityError(`message UID ${message.uid} in mailbox "${this.state.paths.name}" of user ${this.user}: the file ${file} starts as ${kind} data, no size is recorded for it (no S= in its name or the uidlist), and it could not be looked at when the mailbox was listed`, {
      user: this.user,
      mailbox: this.state.paths.name,
      uid: message.uid,
      path: file,
      hint: 'check that the file is readable (permissions, I/O errors), then back up again',
    });
  }

  /**
   * See MailboxReader.messagesWithBodies. Messages whose recorded size is at most SMALL_MESSAGE_BYTES
   * go to the read-ahead (read-ahead.ts) in batches of about READ_AHEAD_BATCH_BYTES, up to
   * READ_AHEAD_BATCHES batches ahead of the one being yielded. What it could not read (a file renamed
   * by Dovecot meanwhile, a size other than recorded, an error), and larger messages, are stat'ed here
   * as messages() does and yielded without a body.
   */
  async *messagesWithBodies(options: { readonly minUid?: number } = {}): AsyncIterable<MessageWithBody> {
    const listing = this.state.listing;
    const end = listing.recordCount;
    const pool = readAheadPool();
    let next = listing.lowerBound(options.minUid ?? 1);
    const takeBatch = (): PendingBatch => {
      const items: BatchItem[] = [];
      const paths: string[] = [];
      const sizes: number[] = [];
      let bytes = 0;
      for (; next < end && bytes < READ_AHEAD_BATCH_BYTES && items.length < READ_AHEAD_BATCH_FILES; next++) {
        if (!listing.hasFile(next)) continue;
        const record = listing.record(next);
        const size = MaildirMailboxReader.recordedSize(record);
        const entry = listing.file(next);
        // The worker takes paths as one string: a name that is not UTF-8 is read here.
        if (size === null || size > SMALL_MESSAGE_BYTES || entry.raw !== undefined) {
          items.push({ i: next, record, slot: -1 });
          continue;
        }
        items.push({ i: next, record, slot: paths.length });
        paths.push(this.shownPath(entry));
        sizes.push(size);
        bytes += size;
      }
      // A failed worker loses nothing: those messages are read the ordinary way.
      const read = paths.length === 0 ? Promise.resolve(null) : pool.read({ paths: paths.join(PATH_SEPARATOR), sizes: Float64Array.from(sizes), capacity: READ_AHEAD_BATCH_BYTES + SMALL_MESSAGE_BYTES }).catch(() => null);
      return { items, read };
    };
    const queue: PendingBatch[] = [];
    while (queue.length < READ_AHEAD_BATCHES && next < end) queue.push(takeBatch());
    while (queue.length > 0) {
      const batch = queue.shift()!;
      if (next < end) queue.push(takeBatch());
      const read = await batch.read;
      let digest = 0;
      for (const item of batch.items) {
        if (this.closed) return;
        const at = read !== null && item.slot >= 0 ? read.meta[item.slot * META_FIELDS]! : -1;
        if (at >= 0) {
          const m = item.slot * META_FIELDS;
          const size = read!.meta[m + 1]!;
          const sha256 = read!.digests.slice(digest, digest + 64);
          digest += 64;
          yield { info: this.toInfo(item.i, item.record, { mtimeMs: read!.meta[m + 2]!, ctimeMs: read!.meta[m + 3]!, size }), body: { bytes: Buffer.from(read!.buffer, at, size), sha256 } };
          continue;
        }
        const found = await this.statRecord(item.i);
        if (found === null) continue; // expunged since the listing
        yield { info: await this.statedInfo(item.i, item.record, found), body: null };
      }
      if (read !== null) pool.release(read.buffer);
    }
  }

  /** Opens the file of `message` with `open` (called with its path), following a rename by Dovecot. */
  private async openFile<T>(message: MessageInfo, open: (file: string | Buffer) => T | Promise<T>): Promise<{ opened: T; file: string; target: string | Buffer }> {
    const i = this.state.listing.indexOfUid(message.uid);
    if (i < 0) throw this.notFound(message.uid, 'does not exist');
    let entry: FileEntry | null = this.state.listing.file(i);
    for (let attempt = 0; entry !== null && attempt < 3; attempt++) {
      const file = this.shownPath(entry);
      const target = this.filePath(entry);
      try {
        return { opened: await open(target), file, target };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw fromSystemError(e, 'open the message file', { path: file, user: this.user, mailbox: this.state.paths.name, uid: message.uid });
        }
        entry = await this.relocate(i);
      }
    }
    throw this.notFound(message.uid, 'was expunged: its file is gone from new/ and cur/');
  }

  private sizeMismatch(message: MessageInfo, file: string, actual: string): IntegrityError {
    return new IntegrityError(`message UID ${message.uid} in mailbox "${this.state.paths.name}" of user ${this.user}: expected ${message.size} bytes, the file ${file} has ${actual}`, {
      user: this.user,
      mailbox: this.state.paths.name,
      uid: message.uid,
      path: file,
      hint: 'the file is not the size its name (S=) or the uidlist records: it was changed after delivery, or damaged. Dovecot fixes the name when it notices (e.g. when the message is fetched over IMAP); check the file, then back up again',
    });
  }

  /**
   * Most mail is small: read it whole with one synchronous read of size + 1 bytes (to notice a longer
   * file). On the machines measured, an fs.promises round trip through libuv's thread pool cost ~150 us
   * per file against ~7 us for a synchronous open+read+close of a small file (bench/memory.ts).
   */
  async readMessage(message: MessageInfo, options: OpenMessageOptions = {}): Promise<Buffer | null> {
    if (message.size > SMALL_MESSAGE_BYTES) return null;
    const { opened: fd, file, target } = await this.openFile(message, (f) => fs.openSync(f, 'r'));
    const scratch = options.scratch;
    const buf = scratch !== undefined && scratch.length > message.size ? scratch.subarray(0, message.size + 1) : Buffer.allocUnsafe(message.size + 1);
    let got = 0;
    try {
      for (;;) {
        const n = fs.readSync(fd, buf, got, buf.length - got, got);
        if (n === 0) break;
        got += n;
        if (got === buf.length) break;
      }
    } catch (e) {
      throw fromSystemError(e, 'read the message file', { path: file, user: this.user, mailbox: this.state.paths.name, uid: message.uid });
    } finally {
      fs.closeSync(fd);
    }
    if (got !== message.size || this.unrecordedCompressed.has(message.uid)) return this.readCompressed(message, file, target, buf.subarray(0, got), got > message.size ? `more than ${message.size}` : String(got));
    const unprobed = this.compressedWithoutSize(message, buf.subarray(0, got));
    if (unprobed !== null) throw this.unprobedCompressed(message, file, unprobed);
    return buf.subarray(0, got);
  }

  /**
   * A file whose size is not the message's: compressed by Dovecot's zlib plugin (compressed.ts), then
   * the message is the file decompressed, which must have exactly the recorded size; otherwise the
   * size mismatch it is.
   */
  private readCompressed(message: MessageInfo, file: string, target: string | Buffer, head: Buffer, actual: string): Buffer {
    const kind = compressionOf(head.subarray(0, MAGIC_BYTES));
    if (kind === null) throw this.sizeMismatch(message, file, actual);
    const unrecorded = this.unrecordedCompressed.get(message.uid);
    if (unrecorded !== undefined && canDecompress(unrecorded.kind) && unrecorded.size === null) throw this.damagedUnrecorded(message, file, unrecorded.kind);
    if (!canDecompress(kind)) throw this.unsupportedCompression(message, file, kind);
    let data: Buffer;
    try {
      data = decompressWhole(kind, fs.readFileSync(target), message.size);
    } catch (e) {
      throw this.sizeMismatch(message, file, `${actual} bytes that do not decompress as ${kind} (${(e as Error).message})`);
    }
    if (data.length !== message.size) throw this.sizeMismatch(message, file, `${actual}, ${data.length > message.size ? `more than ${message.size}` : data.length} decompressed (${kind})`);
    return data;
  }

  private damagedUnrecorded(message: MessageInfo, file: string, kind: Compression): IntegrityError {
    return new IntegrityError(`message UID ${message.uid} in mailbox "${this.state.paths.name}" of user ${this.user}: the file ${file} starts as ${kind} data but does not decompress, and no size is recorded for it (no S= in its name or the uidlist)`, {
      user: this.user,
      mailbox: this.state.paths.name,
      uid: message.uid,
      path: file,
      hint: 'the file is damaged, or was compressed outside Dovecot and cut short; check it (e.g. with gzip -t or zstd -t), then back up again',
    });
  }

  private unsupportedCompression(message: MessageInfo, file: string, kind: Compression): UnsupportedMessageError {
    return new UnsupportedMessageError(`message UID ${message.uid} in mailbox "${this.state.paths.name}" of user ${this.user}: the file ${file} is compressed with ${kind} (Dovecot's zlib plugin); mailvault reads gzip and zstd only`, {
      user: this.user,
      mailbox: this.state.paths.name,
      uid: message.uid,
      path: file,
      hint: 'back this user up through IMAP (--imap), which serves the message decompressed, or recompress the store with zlib_save = gz or zstd',
    });
  }

  async openMessage(message: MessageInfo, options: OpenMessageOptions = {}): Promise<Readable> {
    const whole = await this.readMessage(message, options);
    if (whole !== null) return Readable.from([whole], { objectMode: false });
    const { opened: handle, file } = await this.openFile(message, (f) => fs.promises.open(f, 'r'));
    const fail = (actual: string): IntegrityError => this.sizeMismatch(message, file, actual);
    let st: fs.Stats;
    try {
      st = await handle.stat();
    } catch (e) {
      await handle.close().catch(() => undefined);
      throw fromSystemError(e, 'read the message file', { path: file, user: this.user, mailbox: this.state.paths.name, uid: message.uid });
    }
    // The first bytes say whether the file is compressed (Dovecot's zlib plugin, or a script).
    const head = Buffer.alloc(MAGIC_BYTES);
    let headBytes = head.subarray(0, 0);
    try {
      headBytes = head.subarray(0, (await handle.read(head, 0, MAGIC_BYTES, 0)).bytesRead);
    } catch {
      // the reads below report it
    }
    if (st.size !== message.size || this.unrecordedCompressed.has(message.uid)) {
      const kind = compressionOf(headBytes);
      if (kind === null || !canDecompress(kind) || this.unrecordedCompressed.get(message.uid)?.size === null) {
        await handle.close().catch(() => undefined);
        throw kind === null ? fail(String(st.size)) : !canDecompress(kind) ? this.unsupportedCompression(message, file, kind) : this.damagedUnrecorded(message, file, kind);
      }
      // Compressed: the message is the file decompressed, exactly message.size bytes.
      const compressed = handle.createReadStream({ autoClose: true, highWaterMark: STREAM_CHUNK_BYTES, start: 0 });
      const check = new SizeCheck(message.size, (actual) => fail(`${st.size}, ${actual} decompressed (${kind})`));
      const inflate = decompressStream(kind);
      const typed = (e: Error): void => {
        check.destroy(isMailvaultError(e) ? e : fail(`${st.size} bytes that do not decompress as ${kind} (${e.message})`));
      };
      compressed.once('error', typed);
      inflate.once('error', typed);
      pipeline(compressed, inflate, check, () => undefined);
      return check;
    }
    const unprobed = this.compressedWithoutSize(message, headBytes);
    if (unprobed !== null) {
      await handle.close().catch(() => undefined);
      throw this.unprobedCompressed(message, file, unprobed);
    }
    // At most size + 1 bytes (`end` is inclusive): the extra byte, if there is one, is a file that grew
    // since the fstat above, which SizeCheck reports. Without `end`, Node read a whole 1 MiB buffer
    // for the short tail before copying it out.
    const source = handle.createReadStream({ autoClose: true, highWaterMark: STREAM_CHUNK_BYTES, start: 0, end: message.size });
    const check = new SizeCheck(message.size, fail);
    // Registered before pipeline() so the consumer sees a typed error, not a raw Node one.
    source.once('error', (e) => check.destroy(fromSystemError(e, 'read the message file', { path: file, user: this.user, mailbox: this.state.paths.name, uid: message.uid })));
    pipeline(source, check, () => undefined);
    return check;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** The length of `file` decompressed (`kind`), by streaming it through the decompressor once. */
async function decompressedLength(kind: 'gzip' | 'zstd', file: string | Buffer): Promise<number> {
  let n = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      n += chunk.length;
      callback();
    },
  });
  await pipelinePromise(fs.createReadStream(file, { highWaterMark: STREAM_CHUNK_BYTES }), decompressStream(kind), counter);
  return n;
}

/** The compression `file` starts with, or null (reads its first MAGIC_BYTES bytes). */
function readCompression(file: string | Buffer): Compression | null {
  const head = Buffer.alloc(MAGIC_BYTES);
  const fd = fs.openSync(file, 'r');
  try {
    return compressionOf(head.subarray(0, fs.readSync(fd, head, 0, MAGIC_BYTES, 0)));
  } finally {
    fs.closeSync(fd);
  }
}

/** An error from a file-system call (it has a syscall), as opposed to one from a decompressor. */
function isFileSystemError(e: unknown): boolean {
  return typeof (e as NodeJS.ErrnoException | null)?.syscall === 'string';
}

