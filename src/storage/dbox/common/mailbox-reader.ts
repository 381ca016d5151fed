/**
 * The MailboxReader shared by sdbox and mdbox: message state (flags, keywords, modseq) comes from the
 * replayed mailbox index, GUID / INTERNALDATE / size / extra metadata from the dbox file, and the body
 * from the dbox file plus, with SIS, the external attachment files. The driver supplies only a
 * DboxMessageLocator that says where a message's dbox record is.
 */
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, statSync } from 'node:fs';

/** Bodies up to this size are read with one synchronous read. */
const SMALL_BODY_BYTES = 256 * 1024;
/** SIS stubs up to this size are read whole before the message is rebuilt (sisMessage). */
const STUB_READ_BYTES = 8 * 1024 * 1024;

/** The located message's stored body (a SIS stub), read by the file's path; a Node error (ENOENT...) is thrown as it is. */
function readStubNow(loc: LocatedMessage): Buffer {
  const { file, message: dm } = loc;
  const buf = Buffer.allocUnsafe(dm.bodySize);
  const fh = SyncFile.open(file);
  try {
    // Shorter: the file was cut; the rebuild then reads by path and reports it with its context.
    return buf.subarray(0, fh.readInto(buf, 0, buf.length, dm.bodyOffset));
  } finally {
    void fh.close();
  }
}

/** How often a message whose file is gone is located again before the error stands (withFile). */
const RELOCATE_ATTEMPTS = 4;
import type { Readable } from 'node:stream';
import { Readable as ReadableStream } from 'node:stream';
import { IntegrityError, StorageCorruptError, StorageNotFoundError, fromSystemError, type MailvaultError } from '../../../core/errors.js';
import type { IndexSnapshot, IndexedMessage } from '../../dovecot-index/index.js';
import { compressionOf, MAGIC_BYTES } from '../../compression.js';
import { normalizeKeywords } from '../../flags.js';
import type { MailboxInfo, MailboxReader, MessageInfo, MessageListOptions, MessagePart, OpenMessageOptions, SystemFlag } from '../../types.js';
import { attachmentPath, fdChunks, openSisMessage, parseExtRefs, sisMessageParts, takeExactly, type ExtRef, type SisMessage } from './attachments.js';
import { SyncFile, metadataBytes, metadataValue, parseHexTime, parseHexValue, type DboxMessage, type DboxMetadataEntry } from './dbox-file.js';

export interface LocatedMessage {
  /** The dbox file holding the message. */
  readonly file: string;
  readonly message: DboxMessage;
  /** Unix seconds, or null. */
  readonly saveDate: number | null;
  /** mdbox: the 16-byte `guid` index extension record, to check against G. */
  readonly guidRecord: Buffer | null;
  /**
   * The whole file, where the locator read it whole (small sdbox files), or the part of it around the
   * message that it read (mdbox: see contentStart): the body is then taken from here instead of being
   * read again.
   */
  readonly content?: Buffer;
  /** The file offset of `content[0]` (0 when absent: `content` is the whole file). */
  readonly contentStart?: number;
  /**
   * Set when `content` is a view of a buffer the locator reuses: true while it still holds this file
   * (until the locator reads another one). Without it, `content` is the message's own.
   */
  readonly contentValid?: () => boolean;
  /** The file's identity and times when it was read: a later use of this description checks them first. */
  readonly stamp?: string;
}

/** What `stamp` compares: the file is the same and unchanged. */
export function fileStamp(st: { ino: number; size: number; mtimeMs: number; ctimeMs: number }): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

function unchangedSince(located: LocatedMessage): boolean {
  if (located.stamp === undefined) return false;
  try {
    return fileStamp(statSync(located.file)) === located.stamp;
  } catch {
    return false;
  }
}

/**
 * The message's body as held in `located.content` (read with its header), while that is still valid;
 * null when its body must be read from the file.
 */
function heldBody(located: LocatedMessage): Buffer | null {
  const { content, message } = located;
  if (content === undefined || (located.contentValid !== undefined && !located.contentValid())) return null;
  const from = message.bodyOffset - (located.contentStart ?? 0);
  const to = from + message.bodySize;
  return from >= 0 && to <= content.length ? content.subarray(from, to) : null;
}

/** True while `located.content` holds the message's body (as read with its header), so it needs no read. */
function holdsBody(located: LocatedMessage): boolean {
  return heldBody(located) !== null;
}

export interface DboxMessageLocator {
  /** Find and parse the dbox record of `m`. Throws per-message errors (not found, corrupt). */
  locate(m: IndexedMessage): Promise<LocatedMessage>;
  /**
   * Optional: locate `m` again after its file was found gone (mdbox: a purge moved the message to
   * another file), with nothing remembered of earlier reads (the map read again, no file kept open).
   */
  relocate?(m: IndexedMessage): Promise<LocatedMessage>;
  /** Suffix appended to an X path on disk (sdbox: `-<mailbox guid>-<uid>`; mdbox: none). */
  attachmentSuffixes(uid: number): readonly string[];
  close(): Promise<void>;
}

/** Metadata keys turned into MessageInfo fields; all others are carried in `extra` as `dbox.<key>`. */
const CONSUMED_KEYS = new Set(['G', 'R', 'Z', 'X', 'V']);

const FLAG_BITS: readonly [number, SystemFlag][] = [
  [0x01, '\\Answered'],
  [0x04, '\\Deleted'],
  [0x10, '\\Draft'],
  [0x02, '\\Flagged'],
  [0x08, '\\Seen'],
];

/**
 * The system flags of an index flags byte. One shared, frozen array per byte value: a flag table's JSON
 * is then made once per distinct flag set (flagTableJson), and a 50k-message listing allocates none.
 */
export function flagsFromByte(b: number): readonly SystemFlag[] {
  return FLAGS_BY_BYTE[b & 0xff]!;
}

const FLAGS_BY_BYTE: readonly (readonly SystemFlag[])[] = Array.from({ length: 256 }, (_, b) => Object.freeze(FLAG_BITS.filter(([bit]) => (b & bit) !== 0).map(([, f]) => f)));

/** normalizeKeywords of an index keyword list, once per list (the index shares one empty list among all messages without keywords). */
const normalizedKeywords = new WeakMap<readonly string[], readonly string[]>();
function keywordsOf(keywords: readonly string[]): readonly string[] {
  let out = normalizedKeywords.get(keywords);
  if (out === undefined) {
    out = Object.freeze(normalizeKeywords(keywords));
    normalizedKeywords.set(keywords, out);
  }
  return out;
}

/**
 * The 128-bit GUID Dovecot derives from a G value (mail.c:mail_generate_guid_128_hash): the value itself
 * when it is 32 hex digits, else the last 16 bytes of the SHA-1 of its bytes (as stored, not as decoded).
 */
function guid128(g: Buffer): string {
  if (g.length === 32 && /^[0-9a-fA-F]{32}$/.test(g.toString('latin1'))) return g.toString('latin1').toLowerCase();
  return createHash('sha1').update(g).digest().subarray(4).toString('hex');
}

/** Suffix of an `extra` key whose value is the base64 of bytes that are not valid UTF-8. */
export const BASE64_EXTRA_SUFFIX = '.base64';

/**
 * The extra key of a metadata key byte: `dbox.<K>` for the n-th line with that key (n > 1: `dbox.<K>.<n>`),
 * `%HH` for a byte that is not printable ASCII (Dovecot's keys are uppercase letters).
 */
function extraKeyOf(key: string, n: number): string {
  const c = key.charCodeAt(0);
  const name = c > 0x20 && c < 0x7f ? key : `%${c.toString(16).toUpperCase().padStart(2, '0')}`;
  return n === 1 ? `dbox.${name}` : `dbox.${name}.${n}`;
}

/**
 * Put a metadata value into `extra` losslessly. `extra` is a string map that ends up in the dump's JSON:
 * valid UTF-8 is carried as the text (as before, so existing dumps and readers are unchanged); other
 * bytes as base64 under the key with BASE64_EXTRA_SUFFIX, so a reader never mistakes the encoded form
 * for the value, and the bytes come back exactly (a latin1 string would be lossless too, but reads as
 * a different value wherever the text is taken as it is).
 */
function putExtra(extra: Record<string, string>, key: string, bytes: Buffer): void {
  if (isUtf8(bytes)) extra[key] = bytes.toString('utf8');
  else extra[key + BASE64_EXTRA_SUFFIX] = bytes.toString('base64');
}

/** The metadata lines not turned into MessageInfo fields, as `extra` (see putExtra). */
function extraOf(meta: readonly DboxMetadataEntry[]): Record<string, string> {
  const extra: Record<string, string> = {};
  const seen = new Map<string, number>();
  for (const { key, bytes } of meta) {
    if (CONSUMED_KEYS.has(key)) continue;
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    putExtra(extra, extraKeyOf(key, n), bytes);
  }
  return extra;
}

interface Described {
  readonly info: MessageInfo;
  readonly located: LocatedMessage;
  readonly refs: readonly ExtRef[] | null;
}

/** The first MAGIC_BYTES bytes of a located message's body (fewer for a shorter body; none if unreadable). */
function bodyHead(loc: LocatedMessage): Uint8Array {
  const { file, message: dm } = loc;
  const n = Math.min(MAGIC_BYTES, dm.bodySize);
  const held = heldBody(loc);
  if (held !== null) return held.subarray(0, n);
  const head = Buffer.alloc(n);
  let fd: number | null = null;
  try {
    fd = openSync(file, 'r');
    return head.subarray(0, readSync(fd, head, 0, n, dm.bodyOffset));
  } catch {
    return head.subarray(0, 0); // the read of the body reports what is wrong with the file
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

export interface DboxReaderOptions {
  readonly attachmentDir: string | null;
  /** What the backup must report for this mailbox although it cannot list it (MailboxReader.notListed). */
  readonly notListed?: readonly MailvaultError[];
}

/** A message as the index alone tells it (MessageListOptions.flagsOnly): no size, GUID or dates. */
function indexOnlyInfo(m: IndexedMessage): MessageInfo {
  return { uid: m.uid, guid: null, flags: flagsFromByte(m.flags), keywords: keywordsOf(m.keywords), internalDate: 0, saveDate: null, size: 0, modseq: m.modseq };
}

export class DboxMailboxReader implements MailboxReader {
  private closed = false;
  /**
   * The message described last. A backup describes a message when it lists it, then asks for its parts
   * and its body: those are answered from here while the file is unchanged (a stat instead of an open,
   * three reads and a close each; with LocatedMessage.content the body is not read again either).
   */
  private lastDescribed: { readonly m: IndexedMessage; readonly d: Described } | null = null;

  constructor(
    readonly info: MailboxInfo,
    private readonly snapshot: IndexSnapshot,
    private readonly locator: DboxMessageLocator,
    private readonly options: DboxReaderOptions,
  ) {
    if (options.attachmentDir !== null) this.openMessageParts = (message) => this.parts(message);
    this.notListed = options.notListed ?? [];
  }

  readonly notListed: readonly MailvaultError[];

  openMessageParts?: (message: MessageInfo) => Promise<MessagePart[] | null>;

  /** See MailboxReader.listFlags: the index snapshot is in memory once the mailbox is open. */
  *listFlags(): Iterable<MessageInfo> {
    this.assertOpen();
    for (const m of this.snapshot.messages) yield indexOnlyInfo(m);
  }

  /**
   * Messages in ascending UID order. A message whose dbox record cannot be read makes `next()` reject
   * with a typed error for that message only; calling `next()` again continues with the next message.
   */
  messages(options: MessageListOptions = {}): AsyncIterable<MessageInfo> {
    const minUid = options.minUid ?? 0;
    const since = options.changedSinceModseq === undefined ? null : BigInt(options.changedSinceModseq);
    const list = this.snapshot.messages.filter((m) => m.uid >= minUid && (since === null || BigInt(m.modseq) > since));
    let i = 0;
    return {
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<MessageInfo>> => {
          this.assertOpen();
          if (i >= list.length) return { done: true, value: undefined };
          const m = list[i++]!;
          // Everything asked for is in the index: the message file is not opened.
          if (options.flagsOnly === true) return { done: false, value: indexOnlyInfo(m) };
          return { done: false, value: (await this.describe(m)).info };
        },
        return: async (): Promise<IteratorResult<MessageInfo>> => {
          i = list.length;
          return { done: true, value: undefined };
        },
      }),
    };
  }

  /**
   * A body that is in the locator's buffer (read with the file's header) or small enough for one
   * synchronous read (a thread-pool round trip costs more than the read), as one Buffer; null for a
   * SIS message or a large body (openMessage streams those).
   */
  async readMessage(message: MessageInfo, options: OpenMessageOptions = {}): Promise<Buffer | null> {
    const d = await this.describeForRead(message);
    return d.refs ? null : this.withFile(message, d, (now) => this.readBody(message, now.located, options.scratch));
  }

  private readBody(message: MessageInfo, loc: LocatedMessage, scratch: Buffer | undefined): Buffer | null {
    const { file, message: dm } = loc;
    if (dm.bodySize === 0) return Buffer.alloc(0);
    const into = (n: number): Buffer => (scratch !== undefined && scratch.length >= n ? scratch.subarray(0, n) : Buffer.allocUnsafe(n));
    const bytes = heldBody(loc);
    if (bytes !== null) {
      if (loc.contentValid === undefined) return bytes;
      // The locator's buffer is reused by its next read: copy the body out now (synchronously, while
      // it is still this file), into the caller's scratch when it has room.
      const copy = into(bytes.length);
      bytes.copy(copy);
      return copy;
    }
    if (dm.bodySize > SMALL_BODY_BYTES) return null;
    const buf = into(dm.bodySize);
    let got = 0;
    let fd: number | null = null;
    try {
      fd = openSync(file, 'r');
      while (got < buf.length) {
        const n = readSync(fd, buf, got, buf.length - got, dm.bodyOffset + got);
        if (n === 0) break;
        got += n;
      }
    } catch (e) {
      throw fromSystemError(e, 'read a dbox message file', { path: file, mailbox: this.info.name, uid: message.uid });
    } finally {
      if (fd !== null) closeSync(fd);
    }
    if (got !== dm.bodySize) throw this.shortBody(message, file, got, dm.bodySize);
    return buf;
  }

  private shortBody(message: MessageInfo, file: string, got: number, size: number): IntegrityError {
    return new IntegrityError(`message UID ${message.uid} in mailbox "${this.info.name}": ${file} gave ${got} of ${size} bytes`, {
      mailbox: this.info.name,
      uid: message.uid,
      path: file,
      hint: 'the dbox file changed while it was read; run the backup again',
    });
  }

  async openMessage(message: MessageInfo, options: OpenMessageOptions = {}): Promise<Readable> {
    const d = await this.describeForRead(message);
    if (d.refs) return this.withFile(message, d, (now) => openSisMessage(this.sisMessage(now)));
    return this.withFile(message, d, (now) => {
      const whole = this.readBody(message, now.located, options.scratch);
      if (whole !== null) return ReadableStream.from(whole.length === 0 ? [] : [whole], { objectMode: false });
      const { file, message: dm } = now.located;
      // Opened now, not when the stream is first read: a file gone by now is relocated above.
      const fd = openSync(file, 'r');
      let closed = false;
      const stream = ReadableStream.from(
        takeExactly(
          (async function* () {
            closed = true; // from here on, fdChunks closes it
            yield* fdChunks(fd, dm.bodyOffset, dm.bodySize);
          })(),
          dm.bodySize,
          (got) => this.shortBody(message, file, got, dm.bodySize),
        ),
        { objectMode: false },
      );
      stream.once('close', () => {
        if (!closed) closeSync(fd);
      });
      return stream;
    });
  }

  /**
   * Run `read` (which opens the message's dbox file by its path) on `d`; if the file is gone (ENOENT),
   * locate the message again and retry, up to RELOCATE_ATTEMPTS times. mdbox: a purge (doveadm purge,
   * nightly on many servers) copies the messages still in use out of an m.N file and deletes it, so a
   * file found when the message was listed may be gone when its body is read; Dovecot's mdbox_mail_open
   * then reads the map again and opens the file it names now. Where the locator cannot (sdbox), the
   * error stands: the message was expunged.
   */
  private async withFile<T>(message: MessageInfo, d: Described, read: (d: Described) => T | Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await read(d);
      } catch (e) {
        // Raw from an open, or mapped by fromSystemError with the Node error as its cause.
        const gone = (e as NodeJS.ErrnoException).code === 'ENOENT' || ((e as Error).cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
        if (!gone || this.locator.relocate === undefined || attempt >= RELOCATE_ATTEMPTS) throw e;
        d = await this.describeAgain(message);
      }
    }
  }

  /** A fresh description of `message` from the locator's relocate(), checked against the listed size. */
  private async describeAgain(message: MessageInfo): Promise<Described> {
    this.assertOpen();
    const d = await this.describe(this.byUid(message.uid)!, true);
    this.assertListedSize(message, d);
    return d;
  }

  /** The message must still be the size it was listed with. */
  private assertListedSize(message: MessageInfo, d: Described): void {
    if (d.info.size !== message.size) {
      throw new IntegrityError(`message UID ${message.uid} in mailbox "${this.info.name}" is ${d.info.size} bytes now, ${message.size} when listed`, { mailbox: this.info.name, uid: message.uid, path: d.located.file, hint: 'the message changed while it was read; run the backup again' });
    }
  }

  private async parts(message: MessageInfo): Promise<MessagePart[] | null> {
    const d = await this.describeForRead(message);
    return d.refs ? this.withFile(message, d, (now) => sisMessageParts(this.sisMessage(now))) : null;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.lastDescribed = null;
    await this.locator.close();
  }

  /** The message with `uid`: a binary search of the snapshot (ascending UIDs), no per-message map. */
  private byUid(uid: number): IndexedMessage | undefined {
    const list = this.snapshot.messages;
    let lo = 0;
    let hi = list.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const m = list[mid]!;
      if (m.uid < uid) lo = mid + 1;
      else if (m.uid > uid) hi = mid - 1;
      else return m;
    }
    return undefined;
  }

  private assertOpen(): void {
    if (this.closed) throw new StorageNotFoundError(`mailbox "${this.info.name}" was closed`, { mailbox: this.info.name, hint: 'open the mailbox again' });
  }

  private async describeForRead(message: MessageInfo): Promise<Described> {
    this.assertOpen();
    const m = this.byUid(message.uid);
    if (!m) throw new StorageNotFoundError(`message UID ${message.uid} is not in mailbox "${this.info.name}"`, { mailbox: this.info.name, uid: message.uid, hint: 'it was expunged; list the mailbox again' });
    // The description made when the message was listed serves while its file is unchanged (one stat),
    // or without a stat while it holds the body as read then (LocatedMessage.content, still
    // valid) and the message has no SIS references (whose inline pieces are read from the file again):
    // it is then a snapshot of the file at that moment, header and body alike, and nothing is read
    // from the file again. (20k stats, 0.24 s of a 10k sdbox backup's 4.6 s main thread.)
    const last = this.lastDescribed;
    const reuse = last !== null && last.m === m && ((last.d.refs === null && holdsBody(last.d.located)) || unchangedSince(last.d.located));
    const d = reuse ? last.d : await this.describe(m);
    this.assertListedSize(message, d);
    if (d.refs && this.options.attachmentDir === null) {
      throw new StorageNotFoundError(`message UID ${message.uid} in mailbox "${this.info.name}" has external attachments (Dovecot SIS), but no attachment directory was given`, {
        mailbox: this.info.name,
        uid: message.uid,
        path: d.located.file,
        hint: 'give the attachment directory (Dovecot mail_attachment_dir) with --attachment-dir',
      });
    }
    return d;
  }

  private sisMessage(d: Described): SisMessage {
    const dir = this.options.attachmentDir!;
    // The stub as read with the header, else now (up to STUB_READ_BYTES): read by its path later, while
    // the message streams, a file a purge deleted meanwhile could no longer be located again (withFile).
    const held = heldBody(d.located) ?? (d.located.message.bodySize <= STUB_READ_BYTES ? readStubNow(d.located) : null);
    const uid = d.info.uid;
    const suffixes = this.locator.attachmentSuffixes(uid);
    return {
      mailbox: this.info.name,
      uid,
      file: d.located.file,
      stubOffset: d.located.message.bodyOffset,
      stubSize: d.located.message.bodySize,
      fullSize: d.info.size,
      refs: d.refs!,
      attachmentPaths: (ref) => suffixes.map((s) => attachmentPath(dir, ref.relPath, s)),
      // A copy: the locator's buffer holds the next file once another message is located.
      ...(held !== null ? { stub: Buffer.from(held) } : {}),
    };
  }

  /** `fresh`: located anew by the locator's relocate() (the file found before is gone). */
  private async describe(m: IndexedMessage, fresh = false): Promise<Described> {
    this.lastDescribed = null;
    const d = await this.describeNow(m, fresh);
    this.lastDescribed = { m, d };
    return d;
  }

  private async describeNow(m: IndexedMessage, fresh = false): Promise<Described> {
    const located = fresh && this.locator.relocate !== undefined ? await this.locator.relocate(m) : await this.locator.locate(m);
    const { file, message: dm } = located;
    const meta = dm.metadata;
    const metaAt = dm.bodyOffset + dm.bodySize;
    const corrupt = (why: string): StorageCorruptError =>
      new StorageCorruptError(`message UID ${m.uid} in mailbox "${this.info.name}": ${why} (${file} at offset ${dm.offset})`, {
        mailbox: this.info.name,
        uid: m.uid,
        path: file,
        offset: dm.offset,
        hint: 'run "doveadm force-resync -u <user> <mailbox>"; the message is skipped',
      });
    let warning: string | undefined;
    if (dm.metadataCutShort !== undefined) {
      // With mail_attachment_dir Dovecot reads the metadata before serving the body (X may name
      // attachments the stored body is only the stub of: dbox_attachment_file_get_stream) and fails
      // the message; so does the backup, rather than store a stub as the message.
      if (this.options.attachmentDir !== null) {
        throw corrupt(`${dm.metadataCutShort}; with attachment storage (SIS) the stored body may be a stub whose attachments only the metadata names, so it cannot be taken as the message`);
      }
      // A body compressed by the zlib plugin shows by Z only, and Z was in the lost metadata: Dovecot
      // goes by the body's first bytes (it serves it decompressed), so the backup looks at them too and
      // refuses the message, as it refuses any compressed dbox message, rather than store the
      // compressed bytes as the mail.
      const kind = compressionOf(bodyHead(located));
      if (kind !== null) throw corrupt(`${dm.metadataCutShort}, and the body is ${kind}-compressed (mail_plugins zlib), which is not supported`);
      // Without, Dovecot serves the body (dbox-mail.c:get_mail_stream) and takes GUID and received
      // date from its cache; the backup takes the body with what the index and the file tell.
      warning = `${dm.metadataCutShort} (${file} at offset ${metaAt}); backed up with the whole body and what the index knows (${metadataBytes(meta, 'R') === undefined ? 'INTERNALDATE is the save date' : 'INTERNALDATE as stored'}${metadataBytes(meta, 'G') === undefined && (located.guidRecord === null || located.guidRecord.every((b) => b === 0)) ? ', no GUID' : ''}); run "doveadm force-resync" on the mailbox to have Dovecot check the file`;
    }
    const z = parseHexValue(metadataValue(meta, 'Z'), file, metaAt, 'Z');
    const r = parseHexTime(metadataValue(meta, 'R'), file, metaAt, 'R');
    // X names attachment files: UTF-8, as Node encodes the paths it opens.
    const x = metadataBytes(meta, 'X')?.toString('utf8');
    const refs = x === undefined || x.trim() === '' ? null : parseExtRefs(x, file);
    const size = z ?? dm.bodySize;
    if (!refs && size !== dm.bodySize) throw corrupt(`the full size Z (${size}) differs from the stored size (${dm.bodySize}) without external attachments: the message is probably compressed (mail_plugins zlib), which is not supported`);
    const extra = extraOf(meta);
    const g = metadataBytes(meta, 'G');
    let guid: string | null = null;
    if (g !== undefined && g.length > 0) {
      if (isUtf8(g)) guid = g.toString('utf8');
      else {
        // A GUID that is not text (from a migration) cannot be a JSON string as it is: the message is
        // known by the 128-bit GUID Dovecot derives from it (the one mdbox keeps in its index), and the
        // bytes are carried in extra.
        guid = guid128(g);
        putExtra(extra, 'dbox.G', g);
      }
    }
    if (located.guidRecord && located.guidRecord.length === 16 && located.guidRecord.some((b) => b !== 0)) {
      const fromIndex = located.guidRecord.toString('hex');
      if (guid === null) guid = fromIndex;
      else if (guid128(g!) !== fromIndex) throw corrupt(`GUID "${guid}" in the dbox file does not match the index GUID ${fromIndex}`);
    }
    const info: MessageInfo = {
      uid: m.uid,
      guid,
      flags: flagsFromByte(m.flags),
      keywords: normalizeKeywords(m.keywords),
      internalDate: r ?? located.saveDate ?? 0,
      saveDate: located.saveDate,
      size,
      modseq: m.modseq,
      ...(Object.keys(extra).length > 0 ? { extra } : {}),
      ...(warning !== undefined ? { warning } : {}),
    };
    return { info, located, refs };
  }
}
