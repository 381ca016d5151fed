/**
 * The dbox file format shared by sdbox `u.<uid>` and mdbox `m.<file_id>` files (reference section 2.2):
 * file header line, then per message a fixed header with the body size, the body, and a metadata block.
 * Reads only headers and metadata; bodies are streamed by the caller from `bodyOffset`.
 */
import fs from 'node:fs';
import { StorageCorruptError } from '../../../core/errors.js';

/** What the parsers need of an open file: positioned reads. fs.promises' FileHandle has this shape. */
export interface PositionalFile {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

/**
 * An open file read with synchronous calls behind the same promise API. One sdbox message costs
 * several small reads; through libuv's thread pool each was a ~150 us round trip on the machines
 * measured, against a few us synchronously (see the Maildir reader for the numbers).
 */
export class SyncFile implements PositionalFile {
  private constructor(private fd: number | null) {}

  /** Opens `file` for reading; ENOENT and other errors are thrown as Node errors. */
  static open(file: string): SyncFile {
    return new SyncFile(fs.openSync(file, 'r'));
  }

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    return { bytesRead: fs.readSync(this.descriptor(), buffer, offset, length, position) };
  }

  async stat(): Promise<fs.Stats> {
    return fs.fstatSync(this.descriptor());
  }

  /** Up to `length` bytes at `position` into `buffer` at `offset`, with as many reads as it takes; fewer at the end of the file. */
  readInto(buffer: Buffer, offset: number, length: number, position: number): number {
    const fd = this.descriptor();
    let got = 0;
    while (got < length) {
      const n = fs.readSync(fd, buffer, offset + got, length - got, position + got);
      if (n === 0) break;
      got += n;
    }
    return got;
  }

  /** The whole file (see readWholeSync), into `into` when given and large enough. */
  readWhole(size: number, into?: Buffer): Buffer {
    return readWholeSync(this.descriptor(), size, into);
  }

  async close(): Promise<void> {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  private descriptor(): number {
    if (this.fd === null) throw new Error('file already closed');
    return this.fd;
  }
}

/** A file already read whole: positional reads from memory. */
export class BufferFile implements PositionalFile {
  constructor(readonly bytes: Buffer) {}

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    if (position >= this.bytes.length) return { bytesRead: 0 };
    return { bytesRead: this.bytes.copy(buffer, offset, position, Math.min(this.bytes.length, position + length)) };
  }
}

/** ReadWindow's buffer: bodies up to this size (with header and metadata) are read in one piece. */
export const READ_WINDOW_BYTES = 1024 * 1024;
/** A window is filled with at least this much: neighbouring small messages come with one read. */
const READ_WINDOW_MIN_FILL = 128 * 1024;
/** A read further ahead than this past the window's end fills only what it needs (see fill()). */
const READ_WINDOW_JUMP = 64 * 1024;

/** What a ReadWindow holds of a file: `bytes[0]` is the file's byte at `start`. */
export interface WindowView {
  readonly bytes: Buffer;
  readonly start: number;
  /** True while the window still holds these bytes (until it is filled again). */
  readonly valid: () => boolean;
}

/**
 * Reads of files through one reusable buffer: the mdbox locator reads a message's header, metadata
 * and body from its m.N file with one read (the map gives where the message starts and how long it
 * is), and the next messages of the same file often come with it. Before, each message cost two
 * reads for its header and metadata, an open, a read and a close for its body, and the same header
 * and metadata reads again when the body was read (profiled: 0.6 s of a 10k-message mdbox backup's
 * 2.7 s main thread, plus the garbage of a 4 KiB buffer per metadata read).
 *
 * Sound for bytes that no longer change: the committed messages of an m.N file. Dovecot appends to
 * m.N files and does not rewrite committed messages (a purge copies them into other files and
 * unlinks; a repair writes a new file and renames it over), but the uncommitted tail of the newest file
 * does change (mdbox-save.c writes a message's header after its body; a rolled-back save is truncated
 * and the next one writes the same offsets). A window may hold such a tail; it is only ever asked for
 * a message the map named when the window was filled or later, and the locator drops the window when
 * it reads another map (invalidate()), so a place the map names later is read anew. The window belongs
 * to the open file it was read from (a SyncFile), and bytes past what it holds are read anew.
 */
export class ReadWindow {
  private buffer: Buffer | null = null;
  private holder: SyncFile | null = null;
  private start = 0;
  private end = 0;
  private fills = 0;

  constructor(private readonly capacity = READ_WINDOW_BYTES) {}

  /** Make the window hold `length` bytes of `fh` at `position` (as far as the file goes), reading only if it does not. */
  prepare(fh: SyncFile, position: number, length: number): void {
    if (length > this.capacity || this.holds(fh, position, position + length)) return;
    this.fill(fh, position, length);
  }

  /** `fh` as a PositionalFile whose reads are served from the window (filled as needed). */
  over(fh: SyncFile): PositionalFile {
    return {
      read: async (buffer, offset, length, position) => {
        if (length > this.capacity) return fh.read(buffer, offset, length, position);
        if (!this.holds(fh, position, position + length)) this.fill(fh, position, length);
        const n = Math.max(0, Math.min(length, this.end - position));
        this.buffer!.copy(buffer, offset, position - this.start, position - this.start + n);
        return { bytesRead: n };
      },
    };
  }

  /** Forget what the window holds (its views become invalid). */
  invalidate(): void {
    this.holder = null;
    this.fills++;
  }

  /** The window, if it holds bytes [from, to) of `fh`. */
  view(fh: SyncFile, from: number, to: number): WindowView | null {
    if (!this.holds(fh, from, to)) return null;
    const fills = this.fills;
    return { bytes: this.buffer!.subarray(0, this.end - this.start), start: this.start, valid: () => this.fills === fills };
  }

  private holds(fh: SyncFile, from: number, to: number): boolean {
    return this.holder === fh && from >= this.start && to <= this.end;
  }

  /**
   * Read from `position` at least `length` bytes (up to the end of the file), and READ_WINDOW_MIN_FILL
   * unless this read jumps ahead of the last one by more than READ_WINDOW_JUMP (the mailbox's messages
   * are spread through the file among other mailboxes': the bytes in between would be read for nothing).
   */
  private fill(fh: SyncFile, position: number, length: number): void {
    const buffer = (this.buffer ??= Buffer.allocUnsafeSlow(this.capacity));
    const jump = this.holder === fh && (position < this.start || position > this.end + READ_WINDOW_JUMP);
    this.fills++;
    // Invalid until read: a failed read leaves nothing that looks held.
    this.holder = null;
    const got = fh.readInto(buffer, 0, Math.min(this.capacity, jump ? length : Math.max(length, READ_WINDOW_MIN_FILL)), position);
    this.holder = fh;
    this.start = position;
    this.end = position + got;
  }
}

/** Files up to this size are read whole by one read (sdbox: most messages, with their metadata). */
export const WHOLE_FILE_BYTES = 256 * 1024;

/**
 * Read an open file of `size` bytes whole with synchronous reads; fewer bytes when it shrank meanwhile
 * (the parsers then report it as cut short).
 */
export function readWholeSync(fd: number, size: number, into?: Buffer): Buffer {
  const buf = into !== undefined && into.length >= size ? into.subarray(0, size) : Buffer.allocUnsafe(size);
  let got = 0;
  while (got < size) {
    const n = fs.readSync(fd, buf, got, size - got, got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

const DBOX_HINT = 'the dbox file is damaged (cut short or overwritten); run "doveadm force-resync -u <user> <mailbox>" and check the file with "doveadm dump"';
/** Bound for the file header line and for one metadata block (X lists can be long, but not this long). */
const MAX_FILE_HEADER = 4096;
const MAX_METADATA = 1024 * 1024;

export interface DboxFileHeader {
  /** Offset of the first message header. */
  readonly firstMessageOffset: number;
  /** Message header size (the `M` key). */
  readonly messageHeaderSize: number;
}

/**
 * One metadata line. Dovecot reads these as bytes (C strings): a value need not be UTF-8 (a POP3 UIDL
 * `P` or GUID `G` brought in by a migration, a mailbox name `B`), so the bytes are kept as stored and
 * each user decodes what it knows (metadataBytes).
 */
export interface DboxMetadataEntry {
  /** The key byte, as one character (latin1). */
  readonly key: string;
  /** The value: the bytes after the key, up to the LF (a CR before it and anything from a NUL on excluded). */
  readonly bytes: Buffer;
}

export interface DboxMessage {
  /** Offset of the message header. */
  readonly offset: number;
  readonly bodyOffset: number;
  /** Bytes of body stored in the file (the SIS stub when X is present). */
  readonly bodySize: number;
  /** Metadata lines in file order (duplicates kept). */
  readonly metadata: readonly DboxMetadataEntry[];
  /** Offset just past the metadata block (the next message in an mdbox file). */
  readonly endOffset: number;
  /**
   * Set when the file ends after a complete body but before the metadata block does (disk full, a
   * crash): what is missing. `metadata` then holds the lines that are complete. Dovecot still serves
   * such a body (dbox-mail.c:get_mail_stream reads no metadata without mail_attachment_dir).
   */
  readonly metadataCutShort?: string;
}

export function dboxCorrupt(file: string, offset: number, why: string): StorageCorruptError {
  return new StorageCorruptError(`corrupt dbox file ${file} at offset ${offset}: ${why}`, { path: file, offset, hint: DBOX_HINT });
}

async function readAt(fh: PositionalFile, pos: number, len: number): Promise<Buffer> {
  // Not zero-filled: only the bytes read are handed out (subarray below).
  const buf = Buffer.allocUnsafe(len);
  let got = 0;
  while (got < len) {
    const { bytesRead } = await fh.read(buf, got, len - got, pos + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

/** Parse the `2 M1e C<hex>` file header line (version 1 or 2). */
export async function readDboxFileHeader(fh: PositionalFile, file: string): Promise<DboxFileHeader> {
  const head = await readAt(fh, 0, MAX_FILE_HEADER);
  const lf = head.indexOf(0x0a);
  if (lf < 0) throw dboxCorrupt(file, 0, head.length < MAX_FILE_HEADER ? 'file header line is cut short' : 'no file header line');
  // i_stream_next_line: a CR before the LF is not part of the line.
  const line = head.toString('latin1', 0, lf > 0 && head[lf - 1] === 0x0d ? lf - 1 : lf);
  const [version, ...fields] = line.split(' ');
  // dbox_file_parse_header accepts version 1 (files from Dovecot 1.x never rewritten since) as well as
  // 2: the message headers and metadata that follow are read the same way (a v1 `A` key is ignored).
  if (version !== '2' && version !== '1') throw dboxCorrupt(file, 0, `dbox version "${version}" is not supported (expected 1 or 2)`);
  let msgHdr = 30;
  for (const f of fields) {
    if (f.startsWith('M')) {
      msgHdr = parseInt(f.slice(1), 16);
      if (!Number.isFinite(msgHdr) || msgHdr < 30) throw dboxCorrupt(file, 0, `bad message header size "${f}"`);
    }
  }
  return { firstMessageOffset: lf + 1, messageHeaderSize: msgHdr };
}

/**
 * Parse the message at `offset`: header (magic 01 02 'N', 16 hex digits of body size at byte 13),
 * then the metadata after the body (`0a 01 03 0a`, `<key><value>` lines, an empty line).
 */
export async function readDboxMessage(fh: PositionalFile, file: string, hdr: DboxFileHeader, offset: number, fileSize: number): Promise<DboxMessage> {
  if (offset + hdr.messageHeaderSize > fileSize) throw dboxCorrupt(file, offset, `message header runs past the end of the file (${fileSize} bytes)`);
  const mh = await readAt(fh, offset, hdr.messageHeaderSize);
  if (mh.length < hdr.messageHeaderSize) throw dboxCorrupt(file, offset, 'message header is cut short');
  if (mh[0] !== 0x01 || mh[1] !== 0x02) throw dboxCorrupt(file, offset, 'no message header magic (01 02)');
  if (mh[2] !== 0x4e) throw dboxCorrupt(file, offset + 2, `message type "${String.fromCharCode(mh[2]!)}" is not supported (expected N)`);
  const sizeHex = mh.toString('latin1', 13, 29);
  if (!/^[0-9A-Fa-f]{16}$/.test(sizeHex)) throw dboxCorrupt(file, offset + 13, `bad message size "${sizeHex}"`);
  const bodySize = Number.parseInt(sizeHex, 16);
  if (!Number.isSafeInteger(bodySize)) throw dboxCorrupt(file, offset + 13, `message size ${sizeHex} is too large`);
  const bodyOffset = offset + hdr.messageHeaderSize;
  const metaOffset = bodyOffset + bodySize;
  if (metaOffset > fileSize) throw dboxCorrupt(file, bodyOffset, `message body of ${bodySize} bytes runs past the end of the file (${fileSize} bytes): the file is truncated`);
  const { metadata, end, cutShort } = await readMetadata(fh, file, metaOffset, fileSize);
  return { offset, bodyOffset, bodySize, metadata, endOffset: end, ...(cutShort !== undefined ? { metadataCutShort: cutShort } : {}) };
}

const METADATA_MAGIC = Buffer.from([0x0a, 0x01, 0x03, 0x0a]);
/** How much of a metadata block is read first (more when it is longer). */
export const METADATA_FIRST_READ = 1024;

/**
 * The metadata block at `at`. The file ending inside it (the magic or the lines, as far as they go,
 * being what was written) is reported as `cutShort`, with the complete lines; other damage is an error.
 */
async function readMetadata(fh: PositionalFile, file: string, at: number, fileSize: number): Promise<{ metadata: DboxMetadataEntry[]; end: number; cutShort?: string }> {
  let buf: Buffer;
  let chunk = METADATA_FIRST_READ;
  for (;;) {
    const want = Math.min(chunk, fileSize - at);
    buf = await readAt(fh, at, want);
    if (buf.length < 4 && buf.equals(METADATA_MAGIC.subarray(0, buf.length)) && at + buf.length >= fileSize) {
      return { metadata: [], end: at + buf.length, cutShort: `the file ends ${buf.length === 0 ? 'right after the message body' : 'inside the metadata magic'}: the metadata block is missing` };
    }
    if (buf.length < 4) throw dboxCorrupt(file, at, 'metadata block is missing: the file is truncated');
    if (buf[0] !== 0x0a || buf[1] !== 0x01 || buf[2] !== 0x03 || buf[3] !== 0x0a) throw dboxCorrupt(file, at, 'no metadata magic (0a 01 03 0a) after the message body');
    const metadata: DboxMetadataEntry[] = [];
    let pos = 4;
    let done = false;
    while (pos < buf.length) {
      const lf = buf.indexOf(0x0a, pos);
      if (lf < 0) break;
      // As Dovecot's i_stream_next_line: a CR before the LF is not part of the line.
      const end = lf > pos && buf[lf - 1] === 0x0d ? lf - 1 : lf;
      const first = end > pos ? buf[pos]! : 0;
      const next = lf + 1;
      // dbox_file_metadata_read_at ends the block at an empty line or one starting with a space (the old
      // v1 terminator); its lines are C strings, so a NUL first byte is an empty line too.
      if (end === pos || first === 0x20 || first === 0x00) {
        pos = next;
        done = true;
        break;
      }
      // dbox_file_metadata_get returns a C string: the value ends at the first NUL.
      const nul = buf.indexOf(0x00, pos + 1);
      metadata.push({ key: String.fromCharCode(first), bytes: buf.subarray(pos + 1, nul >= 0 && nul < end ? nul : end) });
      pos = next;
    }
    if (done) return { metadata, end: at + pos };
    if (buf.length >= fileSize - at) return { metadata, end: at + buf.length, cutShort: `the file ends inside the metadata block (after ${metadata.length} complete lines, before its end line)` };
    if (chunk >= MAX_METADATA) throw dboxCorrupt(file, at, `metadata block is larger than ${MAX_METADATA} bytes`);
    chunk *= 4;
  }
}

/** The bytes of the first line with `key` (dbox_file_metadata_get: first match), or undefined. */
export function metadataBytes(meta: readonly DboxMetadataEntry[], key: string): Buffer | undefined {
  return meta.find((m) => m.key === key)?.bytes;
}

/**
 * The first value of `key` as text, for values Dovecot writes in ASCII (hex numbers R, V, Z): latin1, so
 * that any other byte shows as itself in an error message instead of becoming U+FFFD.
 */
export function metadataValue(meta: readonly DboxMetadataEntry[], key: string): string | undefined {
  return metadataBytes(meta, key)?.toString('latin1');
}

/** Parse a lowercase/uppercase hex metadata value (R, V, Z). */
export function parseHexValue(value: string | undefined, file: string, offset: number, key: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9A-Fa-f]{1,16}$/.test(value)) throw dboxCorrupt(file, offset, `bad ${key} metadata value "${value}"`);
  const n = Number.parseInt(value, 16);
  if (!Number.isSafeInteger(n)) throw dboxCorrupt(file, offset, `${key} metadata value ${value} is too large`);
  return n;
}

/**
 * Parse the received time `R` (Unix seconds). Dovecot writes a signed 64-bit time_t with "%lx"
 * (dbox-save.c:dbox_save_write_metadata, PRIxTIME_T), so a date before 1970 is 16 hex digits of two's
 * complement (-3600 is "fffffffffffff1f0"), and reads it back with str_to_uintmax_hex and a cast to
 * time_t (dbox-mail.c:dbox_mail_get_received_date). Do the same: 64 bits, then signed.
 */
export function parseHexTime(value: string | undefined, file: string, offset: number, key: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9A-Fa-f]{1,16}$/.test(value)) throw dboxCorrupt(file, offset, `bad ${key} metadata value "${value}"`);
  const seconds = BigInt.asIntN(64, BigInt(`0x${value}`));
  // Beyond 2^53 seconds (285 million years either way) it is not a date a mail can carry.
  if (seconds > BigInt(Number.MAX_SAFE_INTEGER) || seconds < BigInt(Number.MIN_SAFE_INTEGER)) throw dboxCorrupt(file, offset, `${key} metadata value ${value} is out of range for a date`);
  return Number(seconds);
}
