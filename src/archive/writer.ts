/**
 * DumpWriter: writes a dump (spec: formats/dump-v1.md) to a Writable, optionally through the zstd
 * seekable compressor. The caller hands users, mailboxes and messages in dump order; the writer checks
 * that order, computes hashes while streaming, spools the TOC to a temp file and appends it, the
 * trailer and the end-of-archive marker in finish().
 *
 * Calls must not overlap (await each one). After an error that left bytes half-written the writer is
 * failed: every later call rejects, and the caller should abort().
 */
import { createHash, type Hash } from 'node:crypto';
import { open, rm, mkdtemp, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, type Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ArchiveOrderError, IntegrityError, isMailvaultError, UnexpectedError, UsageError, fromSystemError } from '../core/errors.js';
import { createCompressStream, type CompressionOption } from './compression/index.js';
import { BLOCK, MAX_MEMBER_BYTES, MAX_SUMMARY_FIELD, TRAILER_BYTES } from './limits.js';
import { blobMember, flagTableMember, HEADER_MEMBER, mailboxMember, messageMembers, TOC_MEMBER, TRAILER_MEMBER, userMember } from './member-names.js';
import { encodeRecord, sha256Hex, sortedKeys } from './record-codec.js';
import {
  FLAG_TABLE_MAX_ENTRIES,
  FORMAT_NAME,
  FORMAT_VERSION_INCREMENTAL,
  FORMAT_VERSION_PARTS,
  FORMAT_VERSION_PLAIN,
  type BlobInput,
  type FlagTableEntry,
  type FlagTableRecord,
  type HeaderRecord,
  type PartEncoding,
  type PartRecord,
  type MailboxRecord,
  type MessageInput,
  type MessageRecord,
  type TrailerRecord,
  type UserRecord,
} from './records.js';
import { assembleParts, type AssemblyPiece } from './parts.js';
import { dataPadding, encodeFileHeader } from './tar-header.js';
import { messageTocEntry, plainTocEntry, tocLine, type MemberSpan } from './toc.js';

export interface DumpWriterOptions {
  compression?: CompressionOption;
  /**
   * Allow messages stored as parts (writeMessageParts): the dump is then format version 2, which
   * readers before mailvault 0.2 refuse with "upgrade mailvault". Without it the dump is version 1.
   */
  parts?: boolean;
  /**
   * An incremental dump (header kind "incremental"): format version 3, which may hold flag tables
   * (writeFlagTable). Readers before mailvault 0.3 refuse it with "upgrade mailvault".
   */
  incremental?: boolean;
}

/** One piece of a message handed to writeMessageParts. */
export type WriterPart =
  | { readonly kind: 'inline'; readonly data: Buffer }
  | {
      readonly kind: 'attachment';
      /** Bytes this piece contributes to the message: the content encoded, cut to this size. */
      readonly size: number;
      readonly encoding: PartEncoding;
      /** Bytes of the stored (decoded) content. */
      readonly contentSize: number;
      /** Opens the content; called once to hash it and, if its blob is new, once more to write it. */
      open(): Promise<Readable>;
    };

export interface WrittenMessage {
  readonly id: number;
  /** sha256 of the full message. */
  readonly sha256: string;
  /** Blobs the message references (sha256), and how many of them this call wrote (the others were in the dump already). */
  readonly blobs: readonly string[];
  readonly blobsWritten: number;
}

const TOC_SPOOL_FLUSH = 64 * 1024;

/** Unix seconds of an ISO date, 0 when unparsable. */
function unixSeconds(iso: string): number {
  const ms = Date.parse(iso);
  return Number.isFinite(ms) && ms > 0 ? Math.floor(ms / 1000) : 0;
}

function isoNow(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function cut(value: string): string {
  return value.length > MAX_SUMMARY_FIELD ? value.slice(0, MAX_SUMMARY_FIELD) : value;
}

/** Write with backpressure: wait for 'drain', or fail on 'error'/'close'. */
/** Why the output failed: its own error (ENOSPC, EPIPE, ...) as a typed error when it has one. */
function outputError(stream: Writable, err?: unknown): Error {
  const cause = err ?? (stream as Writable & { errored?: Error | null }).errored;
  if (cause) return fromSystemError(cause, 'write the dump');
  return new UnexpectedError('cannot write the dump: the output stream is closed');
}

async function writeChunk(stream: Writable, chunk: Buffer): Promise<void> {
  if (stream.destroyed || stream.writableEnded) throw outputError(stream);
  if (stream.write(chunk)) return;
  await new Promise<void>((resolve, reject) => {
    const cleanup = (): void => {
      stream.off('drain', onDrain);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
    const onDrain = (): void => {
      cleanup();
      resolve();
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(outputError(stream, err));
    };
    const onClose = (): void => {
      cleanup();
      reject(outputError(stream));
    };
    stream.on('drain', onDrain);
    stream.on('error', onError);
    stream.on('close', onClose);
  });
}

type State = 'open' | 'busy' | 'finished' | 'failed';

export class DumpWriter {
  private offset = 0;
  private readonly digest: Hash = createHash('sha256');
  private state: State = 'open';
  private failure: Error | null = null;
  private nextId = 1;
  private currentUser: string | null = null;
  private currentMailbox: string | null = null;
  private lastUid = 0;
  /** Flag tables written for the current mailbox, and the last UID in them. */
  private flagTables = 0;
  private lastFlagUid = 0;
  private partsOn = false;
  private tocSpool: FileHandle | null = null;
  private tocPending: string[] = [];
  private tocPendingBytes = 0;
  private tocSize = 0;
  private readonly tocHash: Hash = createHash('sha256');
  private readonly counts = { users: 0, mailboxes: 0, messages: 0, blobs: 0, messageBytes: 0 };
  /** sha256 of every blob written: about 120 bytes of memory per distinct blob (1 million blobs: ~120 MB). */
  private readonly blobsWritten = new Set<string>();
  private blobBytesWritten = 0;

  private constructor(
    private readonly sink: Transform,
    private readonly done: Promise<void>,
    private readonly header: HeaderRecord,
    private readonly tocDir: string,
  ) {}

  /** Start a dump: opens the TOC spool and writes the header member. */
  static async create(output: Writable, header: Omit<HeaderRecord, 'type' | 'format' | 'version'>, options: DumpWriterOptions = {}): Promise<DumpWriter> {
    const compression = options.compression ?? { type: 'none' };
    const sink: Transform = compression.type === 'none' ? new PassThrough() : createCompressStream(compression);
    const done = pipeline(sink, output);
    done.catch(() => undefined); // observed in finish()/abort()
    const record: HeaderRecord = {
      type: 'header',
      format: FORMAT_NAME,
      version: options.incremental === true || header.kind === 'incremental' ? FORMAT_VERSION_INCREMENTAL : options.parts === true ? FORMAT_VERSION_PARTS : FORMAT_VERSION_PLAIN,
      creator: header.creator,
      created: header.created,
      runId: header.runId,
      kind: header.kind,
      base: header.base === null ? null : { runId: header.base.runId, created: header.base.created },
      source: { driver: header.source.driver, location: header.source.location, host: header.source.host },
      options: sortedKeys(header.options),
    };
    let tocDir: string;
    try {
      tocDir = await mkdtemp(join(tmpdir(), 'mailvault-toc-'));
    } catch (err) {
      sink.destroy();
      throw fromSystemError(err, 'create the TOC spool directory', { path: tmpdir() });
    }
    const writer = new DumpWriter(sink, done, record, tocDir);
    writer.partsOn = options.parts === true;
    await writer.run(async () => {
      writer.tocSpool = await open(join(tocDir, 'toc.jsonl'), 'w+', 0o600).catch((err: unknown) => {
        throw fromSystemError(err, 'create the TOC spool file', { path: tocDir });
      });
      const span = await writer.writeBufferMember(HEADER_MEMBER, encodeRecord(record), unixSeconds(record.created));
      await writer.addToc(tocLine(plainTocEntry(0, 'header', span)));
    });
    return writer;
  }

  /** The header record as written. */
  get headerRecord(): HeaderRecord {
    return this.header;
  }

  /** True if writeMessageParts may be used (the dump is version 2). */
  get partsAllowed(): boolean {
    return this.partsOn && this.header.version >= FORMAT_VERSION_PARTS;
  }

  /** True if writeFlagTable may be used (an incremental, format version 3). */
  get flagTablesAllowed(): boolean {
    return this.header.version >= FORMAT_VERSION_INCREMENTAL;
  }

  /** False once the writer failed (bytes half-written) or finished: an error from it then concerned the dump, not one message. */
  get usable(): boolean {
    return this.state === 'open';
  }

  /** Bytes of all blobs written so far. */
  get blobBytes(): number {
    return this.blobBytesWritten;
  }

  /** True if the blob with this sha256 is already in the dump. */
  hasBlob(sha256: string): boolean {
    return this.blobsWritten.has(sha256);
  }

  /** Write a user record; users come in ascending UTF-8 byte order, each once. */
  async writeUser(input: Omit<UserRecord, 'type'>): Promise<void> {
    await this.run(async () => {
      const member = userMember(input.user);
      if (this.currentUser !== null && compareBytes(input.user, this.currentUser) <= 0) {
        throw new ArchiveOrderError(
          `cannot write user "${input.user}" after user "${this.currentUser}": users must come in ascending UTF-8 byte order, each once`,
          { user: input.user, member, hint: 'the caller must sort users by their UTF-8 bytes' },
        );
      }
      const record: UserRecord = { type: 'user', user: input.user, subscriptions: [...input.subscriptions] };
      const span = await this.writeBufferMember(member, encodeRecord(record), 0);
      this.currentUser = input.user;
      this.currentMailbox = null;
      this.counts.users++;
      await this.addToc(tocLine(plainTocEntry(this.nextId++, 'user', span, { user: input.user })));
    });
  }

  /** Write a mailbox record of the current user; mailboxes come in ascending name byte order. */
  async writeMailbox(input: Omit<MailboxRecord, 'type'>): Promise<void> {
    await this.run(async () => {
      const member = mailboxMember(input.user, input.name);
      if (this.currentUser !== input.user) {
        throw new ArchiveOrderError(
          `cannot write mailbox "${input.name}" of user "${input.user}": the current user is ${this.currentUser === null ? 'none' : `"${this.currentUser}"`}; write the user record first`,
          { user: input.user, mailbox: input.name, member },
        );
      }
      if (this.currentMailbox !== null && compareBytes(input.name, this.currentMailbox) <= 0) {
        throw new ArchiveOrderError(
          `cannot write mailbox "${input.name}" after "${this.currentMailbox}" (user "${input.user}"): mailboxes must come in ascending UTF-8 byte order, each once`,
          { user: input.user, mailbox: input.name, member },
        );
      }
      const record: MailboxRecord = {
        type: 'mailbox',
        user: input.user,
        name: input.name,
        guid: input.guid,
        uidValidity: input.uidValidity,
        uidNext: input.uidNext,
        highestModseq: input.highestModseq,
        messageCount: input.messageCount,
        specialUse: [...input.specialUse],
        subscribed: input.subscribed,
        selectable: input.selectable,
        metadata: sortedKeys(input.metadata),
        acl: sortedKeys(input.acl),
        ...(input.uidSet !== undefined ? { uidSet: input.uidSet } : {}),
        ...(input.reset !== undefined && this.flagTablesAllowed ? { reset: input.reset } : {}),
      };
      const span = await this.writeBufferMember(member, encodeRecord(record), 0);
      this.currentMailbox = input.name;
      this.lastUid = 0;
      this.flagTables = 0;
      this.lastFlagUid = 0;
      this.counts.mailboxes++;
      await this.addToc(tocLine(plainTocEntry(this.nextId++, 'mailbox', span, { user: input.user, mailbox: input.name })));
    });
  }

  /**
   * Incrementals (version 3): write the next flag table of the current mailbox (`flags.<n>.json`): after
   * its mailbox record, before its first message, UIDs ascending across tables, at most
   * FLAG_TABLE_MAX_ENTRIES entries each.
   */
  async writeFlagTable(user: string, mailbox: string, entries: readonly FlagTableEntry[]): Promise<void> {
    await this.run(async () => {
      if (!this.flagTablesAllowed) throw new UsageError('cannot write a flag table into a full dump: create the writer for an incremental (kind "incremental")');
      const member = flagTableMember(user, mailbox, this.flagTables + 1);
      if (this.currentUser !== user || this.currentMailbox !== mailbox || this.lastUid !== 0) {
        throw new ArchiveOrderError(`cannot write flag table "${member}": it must follow its mailbox record and precede the mailbox's messages`, { user, mailbox, member });
      }
      if (entries.length === 0 || entries.length > FLAG_TABLE_MAX_ENTRIES) throw new UsageError(`cannot write flag table "${member}" with ${entries.length} entries: give 1 to ${FLAG_TABLE_MAX_ENTRIES}`);
      let last = this.lastFlagUid;
      for (const e of entries) {
        if (e.uid <= last) throw new ArchiveOrderError(`cannot write flag table "${member}": UID ${e.uid} after UID ${last}; UIDs must ascend`, { user, mailbox, member });
        last = e.uid;
      }
      const record: FlagTableRecord = { type: 'flags', user, mailbox, seq: this.flagTables + 1, entries: entries.map((e) => ({ uid: e.uid, flags: [...e.flags], keywords: [...e.keywords] })) };
      const span = await this.writeBufferMember(member, encodeRecord(record), 0);
      this.flagTables++;
      this.lastFlagUid = last;
      await this.addToc(tocLine(plainTocEntry(0, 'flags', span, { user, mailbox })));
    });
  }

  /**
   * Write a message of the current mailbox: the body member (exactly `input.size` bytes from `body`),
   * then its record. UIDs ascend. If `body` fails before its first byte, nothing is written and the
   * writer stays usable (the caller may skip the message); a later failure or a size mismatch
   * (IntegrityError) fails the writer.
   */
  async writeMessage(input: MessageInput, body: Readable | Buffer): Promise<{ id: number; sha256: string }> {
    return this.run(async () => {
      const where = { user: input.user, mailbox: input.mailbox, uid: input.uid };
      let names;
      try {
        names = this.checkMessage(input);
      } catch (err) {
        if (!Buffer.isBuffer(body)) body.destroy();
        throw err;
      }
      const mtime = unixSeconds(input.internalDate);
      const bodySpan = Buffer.isBuffer(body) ? await this.writeBodyBuffer(names.body, input.size, mtime, body, where) : await this.writeStreamMember(names.body, input.size, mtime, body, where);
      const record = this.messageRecord(input, bodySpan.sha256);
      const recordSpan = await this.writeBufferMember(names.record, encodeRecord(record), mtime);
      this.lastUid = input.uid;
      this.counts.messages++;
      this.counts.messageBytes += input.size;
      const id = this.nextId++;
      await this.addToc(tocLine(messageTocEntry(id, bodySpan, recordSpan, record)));
      return { id, sha256: bodySpan.sha256 };
    });
  }

  /**
   * Write a message as parts (format version 2): every blob its attachments need that the dump does not
   * hold yet (`blobs/<2 hex>/<sha256>`), then the stub (`<uid>.stub`: the inline pieces), then the record
   * with `stub` and `parts`. First every attachment is read once to learn its sha256 and the full
   * message's sha256 and size; an error there (unreadable or short content, size mismatch, or a full
   * sha256 other than `expectedSha256`) writes nothing and leaves the writer usable, so the caller may
   * skip the message or store it whole. A message without attachment pieces is written whole (`.eml`).
   *
   * A blob is then read a second time to be written; if its content changed in between (so that it no
   * longer hashes to the name learned in the first pass), the writer fails (IntegrityError).
   */
  async writeMessageParts(input: MessageInput, parts: readonly WriterPart[], expectedSha256?: string): Promise<WrittenMessage> {
    if (!this.partsAllowed) throw new UsageError('cannot write a message as parts into a version 1 dump: create the writer with { parts: true }');
    const where = { user: input.user, mailbox: input.mailbox, uid: input.uid };
    const describe = `message UID ${input.uid} of mailbox "${input.mailbox}" (user "${input.user}")`;
    if (!parts.some((p) => p.kind === 'attachment')) {
      const data = Buffer.concat(parts.map((p) => (p as { data: Buffer }).data));
      const r = await this.writeMessage(input, Readable.from(data.length === 0 ? [] : [data]));
      return { ...r, blobs: [], blobsWritten: 0 };
    }
    // Pass 1: nothing written; learn the content hashes and the full hash.
    const pieces: AssemblyPiece[] = parts.map((p) =>
      p.kind === 'inline'
        ? { type: 'inline', size: p.data.length }
        : { type: 'blob', size: p.size, contentSize: p.contentSize, encoding: p.encoding, sha256: null, open: async () => p.open() },
    );
    const stub = Buffer.concat(parts.filter((p): p is Extract<WriterPart, { kind: 'inline' }> => p.kind === 'inline').map((p) => p.data));
    const full = await this.run(async () => {
      this.checkMessage(input);
      const { stream, result } = assembleParts(pieces, Readable.from(stub.length === 0 ? [] : [stub]), (i, why) =>
        new IntegrityError(`cannot write ${describe} as parts: piece ${i}: ${why}`, { ...where, hint: 'the attachment changed or is damaged; the message can be stored whole' }),
      );
      const hash = createHash('sha256');
      let size = 0;
      try {
        for await (const chunk of stream) {
          hash.update(chunk);
          size += chunk.length;
        }
      } catch (err) {
        if (isMailvaultError(err)) throw err;
        throw new UnexpectedError(`cannot read an attachment of ${describe}: ${(err as Error)?.message ?? String(err)}`, { ...where, cause: err });
      }
      const sha256 = hash.digest('hex');
      if (size !== input.size) throw new IntegrityError(`cannot write ${describe} as parts: the parts give ${size} bytes, the message has ${input.size}`, where);
      if (expectedSha256 !== undefined && sha256 !== expectedSha256) {
        throw new IntegrityError(`cannot write ${describe} as parts: the parts rebuild to sha256 ${sha256}, the message is ${expectedSha256}`, { ...where, hint: 'store the message whole' });
      }
      return { sha256, content: result.contentSha256 };
    });
    // Blobs not yet in the dump.
    let blobsWritten = 0;
    const blobs: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (p.kind !== 'attachment') continue;
      const sha256 = full.content.get(i)!;
      blobs.push(sha256);
      if (this.blobsWritten.has(sha256)) continue;
      await this.writeBlob({ sha256, size: p.contentSize }, await p.open());
      blobsWritten++;
    }
    // Stub and record.
    return this.run(async () => {
      const names = this.checkMessage(input);
      for (const sha256 of blobs) {
        if (!this.blobsWritten.has(sha256)) throw new UnexpectedError(`internal: blob ${sha256} of ${describe} was not written`, where);
      }
      const mtime = unixSeconds(input.internalDate);
      const stubSpan = await this.writeBufferMember(names.stub, stub, mtime);
      const records: PartRecord[] = [];
      let stubPos = 0;
      let blobIndex = 0;
      for (const p of parts) {
        if (p.kind === 'inline') {
          if (p.data.length === 0) continue;
          const last = records[records.length - 1];
          if (last?.type === 'inline') records[records.length - 1] = { ...last, size: last.size + p.data.length };
          else records.push({ type: 'inline', offset: stubPos, size: p.data.length });
          stubPos += p.data.length;
        } else {
          const sha256 = blobs[blobIndex++]!;
          records.push(
            p.encoding.type === 'raw'
              ? { type: 'blob', sha256, contentSize: p.contentSize, size: p.size, encoding: 'raw' }
              : { type: 'blob', sha256, contentSize: p.contentSize, size: p.size, encoding: 'base64', lineLength: p.encoding.lineLength, crlf: p.encoding.crlf },
          );
        }
      }
      const record = { ...this.messageRecord(input, full.sha256), stub: { size: stubSpan.size, sha256: stubSpan.sha256 }, parts: records };
      const recordSpan = await this.writeBufferMember(names.record, encodeRecord(record), mtime);
      this.lastUid = input.uid;
      this.counts.messages++;
      this.counts.messageBytes += input.size;
      const id = this.nextId++;
      await this.addToc(tocLine(messageTocEntry(id, stubSpan, recordSpan, record)));
      return { id, sha256: full.sha256, blobs, blobsWritten };
    });
  }

  /**
   * Write a content-addressed blob (`blobs/<2 hex>/<sha256>`), once per dump. It must precede the first
   * message that references it. The content must hash to `input.sha256` (IntegrityError otherwise).
   */
  async writeBlob(input: BlobInput, content: Readable): Promise<void> {
    await this.run(async () => {
      if (!/^[0-9a-f]{64}$/.test(input.sha256)) {
        content.destroy();
        throw new UsageError(`cannot write blob "${input.sha256}": its name must be 64 lowercase hex digits (sha256)`);
      }
      if (this.blobsWritten.has(input.sha256)) {
        content.destroy();
        throw new UsageError(`cannot write blob "${input.sha256}" twice: a dump holds each blob once (ask hasBlob first)`);
      }
      const member = blobMember(input.sha256);
      const span = await this.writeStreamMember(member, input.size, 0, content, {});
      if (span.sha256 !== input.sha256) {
        throw new IntegrityError(`blob "${input.sha256}" hashes to ${span.sha256}: its content does not match its name`, { member });
      }
      this.blobsWritten.add(input.sha256);
      this.blobBytesWritten += span.size;
      this.counts.blobs++;
      await this.addToc(tocLine(plainTocEntry(0, 'blob', span)));
    });
  }

  /** Append the TOC, the trailer and the end-of-archive marker; end the output and wait for it. Consumes the writer. */
  async finish(): Promise<TrailerRecord> {
    const trailer = await this.run(async () => {
      await this.flushToc();
      const spool = this.tocSpool!;
      const tocSha256 = this.tocHash.digest('hex');
      const created = unixSeconds(this.header.created);
      const tocHeaderOffset = this.offset;
      await this.writeRaw(encodeFileHeader(TOC_MEMBER, this.tocSize, created));
      const tocDataOffset = this.offset;
      const buffer = Buffer.alloc(256 * 1024);
      for (let position = 0; position < this.tocSize; ) {
        const { bytesRead } = await spool.read(buffer, 0, Math.min(buffer.length, this.tocSize - position), position);
        if (bytesRead === 0) throw new UnexpectedError('cannot copy the TOC spool: it is shorter than written', { path: this.tocDir });
        await this.writeRaw(Buffer.from(buffer.subarray(0, bytesRead)));
        position += bytesRead;
      }
      await this.writeRaw(dataPadding(this.tocSize));
      const record: TrailerRecord = {
        type: 'trailer',
        format: FORMAT_NAME,
        version: this.header.version,
        runId: this.header.runId,
        completed: isoNow(),
        counts: { ...this.counts },
        toc: { offset: tocHeaderOffset, dataOffset: tocDataOffset, size: this.tocSize, sha256: tocSha256 },
        digest: { algorithm: 'sha256', value: this.digest.copy().digest('hex') },
        complete: true,
      };
      const text = encodeRecord(record, TRAILER_BYTES);
      await this.writeRaw(encodeFileHeader(TRAILER_MEMBER, text.length, unixSeconds(record.completed)));
      await this.writeRaw(text);
      await this.writeRaw(Buffer.alloc(2 * BLOCK));
      this.sink.end();
      await this.done;
      return record;
    }, 'finished');
    await this.cleanup();
    return trailer;
  }

  /** Tear down: destroy the output, delete the TOC spool. Safe to call more than once and after failures. */
  async abort(error: Error): Promise<void> {
    if (this.state !== 'finished') {
      this.state = 'failed';
      this.failure ??= error;
    }
    if (!this.sink.destroyed) this.sink.destroy(error);
    await this.done.catch(() => undefined);
    await this.cleanup();
  }

  // ---- internals ----

  /** The record of a message (without stub and parts). */
  private messageRecord(input: MessageInput, sha256: string): MessageRecord {
    return {
      type: 'message',
      user: input.user,
      mailbox: input.mailbox,
      uid: input.uid,
      guid: input.guid,
      flags: [...input.flags],
      keywords: [...input.keywords],
      internalDate: input.internalDate,
      saveDate: input.saveDate,
      modseq: input.modseq,
      size: input.size,
      sha256,
      summary: { from: cut(input.summary.from), subject: cut(input.summary.subject), messageId: cut(input.summary.messageId), date: cut(input.summary.date) },
      extra: sortedKeys(input.extra),
    };
  }

  /** UID range, size range and order of a message about to be written (nothing written). */
  private checkMessage(input: MessageInput): { body: string; stub: string; record: string } {
    const where = { user: input.user, mailbox: input.mailbox, uid: input.uid };
    if (!Number.isInteger(input.uid) || input.uid < 1 || input.uid > 0xffffffff) {
      throw new UsageError(`cannot write message UID ${input.uid} of mailbox "${input.mailbox}": a UID is an integer from 1 to 2^32-1`, where);
    }
    if (!Number.isSafeInteger(input.size) || input.size < 0 || input.size > MAX_MEMBER_BYTES) {
      throw new UsageError(`cannot write message UID ${input.uid} of mailbox "${input.mailbox}": size ${input.size} is not a byte count up to 2^40`, where);
    }
    const names = messageMembers(input.user, input.mailbox, input.uid);
    if (this.currentUser !== input.user || this.currentMailbox !== input.mailbox) {
      throw new ArchiveOrderError(
        `cannot write message UID ${input.uid} of mailbox "${input.mailbox}" (user "${input.user}"): the current mailbox is ${this.currentMailbox === null ? 'none' : `"${this.currentMailbox}" of user "${this.currentUser}"`}; write the mailbox record first`,
        { ...where, member: names.body },
      );
    }
    if (input.uid <= this.lastUid) {
      throw new ArchiveOrderError(
        `cannot write message UID ${input.uid} after UID ${this.lastUid} in mailbox "${input.mailbox}" (user "${input.user}"): UIDs must ascend`,
        { ...where, member: names.body },
      );
    }
    return names;
  }

  /** Run one API call: no overlap, and any error that may have left bytes half-written fails the writer. */
  private async run<T>(fn: () => Promise<T>, after: State = 'open'): Promise<T> {
    if (this.state === 'busy') throw new UsageError('DumpWriter calls must not overlap: await each call before the next');
    if (this.state === 'finished') throw new UsageError('the dump is finished: no more members can be written');
    if (this.state === 'failed') {
      throw new UsageError(`the dump writer failed earlier (${this.failure?.message ?? 'unknown error'}): abort it`, { cause: this.failure });
    }
    this.state = 'busy';
    const startOffset = this.offset;
    try {
      const result = await fn();
      this.state = after;
      return result;
    } catch (err) {
      const error = isMailvaultError(err) ? err : fromSystemError(err, 'write the dump');
      if (this.offset === startOffset && !this.sink.destroyed) {
        this.state = 'open'; // nothing written: still usable
      } else {
        this.state = 'failed';
        this.failure = error;
        this.sink.destroy(error);
        await this.cleanup();
      }
      throw error;
    }
  }

  private async writeRaw(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    await writeChunk(this.sink, chunk);
    this.digest.update(chunk);
    this.offset += chunk.length;
  }

  private async writeBufferMember(member: string, data: Buffer, mtime: number): Promise<MemberSpan> {
    const offset = this.offset;
    const header = encodeFileHeader(member, data.length, mtime);
    await this.writeRaw(Buffer.concat([header, data, dataPadding(data.length)]));
    return { member, offset, dataOffset: offset + header.length, size: data.length, sha256: sha256Hex(data) };
  }

  /** Stream exactly `size` bytes from `body` into a member; the header is written with the first byte. */
  /** A body already in memory: checked, hashed and written with its header and padding in one write. */
  private async writeBodyBuffer(member: string, size: number, mtime: number, body: Buffer, where: { user?: string; mailbox?: string; uid?: number }): Promise<MemberSpan> {
    if (body.length !== size) {
      const describe = where.uid === undefined ? `"${member}"` : `message UID ${where.uid} of mailbox "${where.mailbox}" (user "${where.user}")`;
      throw new IntegrityError(`cannot write ${describe}: the body yields ${body.length} bytes, but ${size} were declared (expected ${size}, got ${body.length})`, { ...where, member });
    }
    const offset = this.offset;
    const header = encodeFileHeader(member, size, mtime);
    await this.writeRaw(Buffer.concat([header, body, dataPadding(size)]));
    return { member, offset, dataOffset: offset + header.length, size, sha256: sha256Hex(body) };
  }

  private async writeStreamMember(member: string, size: number, mtime: number, body: Readable, where: { user?: string; mailbox?: string; uid?: number }): Promise<MemberSpan> {
    const hash = createHash('sha256');
    const offset = this.offset;
    let dataOffset = -1;
    let got = 0;
    const describe = where.uid === undefined ? `"${member}"` : `message UID ${where.uid} of mailbox "${where.mailbox}" (user "${where.user}")`;
    const startMember = async (): Promise<void> => {
      await this.writeRaw(encodeFileHeader(member, size, mtime));
      dataOffset = this.offset;
    };
    try {
      for await (const piece of body) {
        const chunk = Buffer.isBuffer(piece) ? piece : Buffer.from(piece as Uint8Array);
        if (chunk.length === 0) continue;
        if (dataOffset < 0) await startMember();
        if (got + chunk.length > size) {
          throw new IntegrityError(`cannot write ${describe}: the body yields more than the ${size} bytes declared (expected ${size}, got at least ${got + chunk.length})`, { ...where, member });
        }
        hash.update(chunk);
        got += chunk.length;
        await this.writeRaw(chunk);
      }
    } catch (err) {
      body.destroy();
      if (isMailvaultError(err)) throw err;
      throw new UnexpectedError(`cannot read the body of ${describe}: ${(err as Error)?.message ?? String(err)}`, { ...where, member, cause: err });
    }
    if (got !== size) {
      throw new IntegrityError(`cannot write ${describe}: the body yields ${got} bytes, but ${size} were declared (expected ${size}, got ${got})`, { ...where, member });
    }
    if (dataOffset < 0) await startMember();
    await this.writeRaw(dataPadding(size));
    return { member, offset, dataOffset, size, sha256: hash.digest('hex') };
  }

  private async addToc(line: string): Promise<void> {
    this.tocHash.update(line);
    const bytes = Buffer.byteLength(line);
    this.tocPending.push(line);
    this.tocPendingBytes += bytes;
    if (this.tocPendingBytes >= TOC_SPOOL_FLUSH) await this.flushToc();
  }

  private async flushToc(): Promise<void> {
    if (this.tocPending.length === 0 || this.tocSpool === null) return;
    const data = Buffer.from(this.tocPending.join(''));
    this.tocPending = [];
    this.tocPendingBytes = 0;
    try {
      await this.tocSpool.write(data, 0, data.length, this.tocSize);
    } catch (err) {
      throw fromSystemError(err, 'write the TOC spool file', { path: this.tocDir });
    }
    this.tocSize += data.length;
  }

  private async cleanup(): Promise<void> {
    const spool = this.tocSpool;
    this.tocSpool = null;
    await spool?.close().catch(() => undefined);
    await rm(this.tocDir, { recursive: true, force: true }).catch(() => undefined);
  }
}
