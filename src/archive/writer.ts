/**
 * DumpWriter: writes a dump (spec: formats/dump-v1.md) to a Writable, optionally through the zstd
 * seekable compressor. The caller hands users, mailboxes and messages in dump order; the writer checks
 * that order, computes hashes while streaming, spools the TOC to a temp file and appends it, the
 * trailer and the end-of-archive marker in finish().
 *
 * Calls must not overlap (await each one). After an error that left bytes half-written the writer is
 * failed: every later call rejects, and the caller should abort().
 */
import { firstOfEachKeyword } from './keywords.js';
import { createHash, type Hash } from 'node:crypto';
import { open, rm, mkdtemp, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable, type Transform } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { ArchiveOrderError, IntegrityError, isMailvaultError, UnexpectedError, UsageError, fromSystemError } from '../core/errors.js';
import type { CompressionOption } from './compression/index.js';
import { createSeekableCompressStream, type SeekableCompressStream } from './compression/compress-stream.js';
import { BLOCK, MAX_MEMBER_BYTES, MAX_RECORD_BYTES, MAX_SUMMARY_FIELD, TRAILER_BYTES } from './limits.js';
import { blobMember, flagTableMember, HEADER_MEMBER, mailboxDir, mailboxMember, messageMembers, messageMembersIn, TOC_MEMBER, TRAILER_MEMBER, userMember } from './member-names.js';
import { messageJsonParts, messageRecordJson, messageTocLineJson, type MessageJsonParts } from './message-json.js';
import { encodedRecordLength, encodeRecord, encodeRecordInto, encodeRecordJson, recordJson, sha256Hex, sortedKeys } from './record-codec.js';
import {
  FLAG_TABLE_MAX_ENTRIES,
  FORMAT_NAME,
  FORMAT_VERSION_PARTS,
  FORMAT_VERSION_WRITTEN,
  HASHED_CONTENT_DIGEST,
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
import { unixSecondsOfIso } from './iso-time.js';
import { isUidSet, UidSetCursor } from './uid-set.js';
import { EncodedContentCache } from './encoded-blob-cache.js';
import { assembleParts, encodingFitsDump, MAX_BASE64_LINE, type AssemblyPiece } from './parts.js';
import { encodeFileHeader, encodeUstarInto, paddingLength } from './tar-header.js';
import { messageTocEntry, plainTocEntry, tocLine, type MemberSpan } from './toc.js';

export interface DumpWriterOptions {
  compression?: CompressionOption;
  /** Allow messages stored as parts (writeMessageParts). */
  parts?: boolean;
  /**
   * An incremental dump, which may hold flag tables (writeFlagTable). Must agree with the header's
   * kind ("incremental"); the header's kind alone decides.
   */
  incremental?: boolean;
  /**
   * Start the zstd compression worker now, so it boots while the caller lists its source, instead of
   * at the second frame. A worker takes about 70 ms to start; started late, the main thread waited for
   * it once its few buffers were out (profiled: 70 ms idle in a 0.5 s backup). For callers about to
   * write much; a tiny dump is then compressed in the worker too.
   */
  startWorkersEarly?: boolean;
  /**
   * The output is done with a chunk when it calls back for it (a file or socket stream of Node's own,
   * process.stdout): uncompressed, the writer then writes to it directly and reuses its chunks, instead
   * of going through a PassThrough, which may hold a chunk after its callback. Measured on a 10k-message
   * Maildir backup to /dev/null: fresh 512 KiB chunks for 370 MB cost about 0.5 s of page faults and
   * copies. Leave it unset for streams that keep what they are given (buffers, test collectors).
   */
  outputReleasesChunks?: boolean;
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
      /**
       * Optional: names this content for the life of the writer (a whole backup, all its sources): parts
       * with the same key have the same content (dbox: the SIS file's content-hash name, device, inode,
       * size and mtime). The writer may then take the content's encoding and hash from an earlier
       * message instead of opening it (only for the same contentSize).
       */
      readonly contentKey?: string;
      /**
       * Opens the content; called once to hash it and, if its blob is new and was too large to keep
       * (KEPT_CONTENT_BYTES), once more to write it.
       */
      open(): Promise<Readable>;
      /**
       * Optional: the content read into `scratch` (each chunk a view of it, valid until the next is
       * requested). Used instead of open() to hash it, which consumes every chunk before the next.
       */
      openChunks?(scratch: Buffer): AsyncIterable<Buffer>;
    };

export interface WrittenMessage {
  readonly id: number;
  /** sha256 of the full message. */
  readonly sha256: string;
  /** Blobs the message references (sha256), and how many of them this call wrote (the others were in the dump already). */
  readonly blobs: readonly string[];
  readonly blobsWritten: number;
}

/** TOC lines are gathered in a buffer of this size, hashed and appended to the spool file a buffer at a time. */
const TOC_BUFFER = 256 * 1024;

/**
 * The dump is written in chunks of this size: members (headers, records, bodies, padding) are
 * encoded or copied straight into the chunk being filled, and each full chunk is one write to the
 * output. Writing each small piece on its own (a header, a
 * body, a record, ... per message) cost more than the bytes themselves for small mail. Chunks are
 * not reused (the output may still hold one), so a chunk is the unit of garbage too.
 */
const OUT_CHUNK = 512 * 1024;
/** Chunks kept for reuse (see spareChunks); the compressor holds at most one at a time. */
const MAX_SPARE_CHUNKS = 4;
/** Read size for attachment contents hashed by writeMessageParts (as the dbox driver's own reads). */
const PART_SCRATCH_BYTES = 256 * 1024;
/**
 * writeMessageParts keeps the encoding of attachment contents it has hashed (WriterPart.contentKey),
 * up to this many bytes in all, for contents of at most ENCODED_CACHE_MAX_CONTENT bytes: a message
 * whose attachment another message already had (Dovecot SIS) then costs the hash of its own bytes,
 * not a read, a hash and a base64 encoding of the attachment again. 10k-message sdbox bench store
 * (660 messages with attachments, 86 distinct): encodeBase64Lines was 0.29 s of a 2.9 s backup.
 */
const ENCODED_CACHE_BYTES = 16 * 1024 * 1024;
/**
 * writeMessageParts copies the contents it reads to hash (pass 1) into one reused buffer of up to this
 * many bytes, and writes a blob the dump does not hold yet from those very bytes: not read and hashed
 * a second time. 100k-message sdbox bench store (665 MiB of distinct attachments): the second hash was
 * 0.4 s of an 8.2 s uncompressed backup, besides the second read. A new buffer per content instead
 * cost more than it saved (page faults, and garbage collections for the external memory).
 */
const KEPT_CONTENT_BYTES = 8 * 1024 * 1024;
const ENCODED_CACHE_MAX_CONTENT = 512 * 1024;
/** Records up to this many bytes are encoded in place; larger ones (rare: big metadata) go through encodeRecord. */
const MAX_IN_PLACE_RECORD = OUT_CHUNK / 2;

/** Unix seconds of an ISO date, 0 when unparsable. */
const unixSeconds = unixSecondsOfIso;

function isoNow(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function cut(value: string): string {
  return value.length > MAX_SUMMARY_FIELD ? value.slice(0, MAX_SUMMARY_FIELD) : value;
}

/**
 * The sink of an uncompressed dump into an output that releases chunks (outputReleasesChunks): each
 * chunk goes to `output`, and its callback comes only after output's own callback for it, when the
 * bytes are in the file or socket. `done` settles when the sink has finished and, unless the output is
 * process.stdout or stderr (never ended, as pipeline() does not end them), the output has finished too.
 */
function releasingSink(output: Writable): { sink: Writable; done: Promise<void> } {
  const stdio = output === process.stdout || output === process.stderr;
  /** The output finished (end() called back): closing it is no longer ours to do. */
  let ended = false;
  const sink = new Writable({
    highWaterMark: 2 * OUT_CHUNK,
    write(chunk: Buffer, _enc, cb) {
      output.write(chunk, (err) => cb(err ?? null));
    },
    final(cb) {
      if (stdio) return cb();
      output.end((err?: Error | null) => {
        ended = true;
        cb(err ?? null);
      });
    },
    destroy(err, cb) {
      // A sink torn down before the output finished (abort, a failed write) closes a file or socket
      // output too, without an error of its own: the cause is already the sink's, and the writer's.
      if (!stdio && !ended && !output.destroyed) output.destroy();
      cb(err);
    },
  });
  const onOutputError = (err: Error): void => {
    if (!sink.destroyed) sink.destroy(err);
  };
  // Kept until the output closes: an error can come after the sink is done with it (a write still in
  // flight when the writer aborted). stdout and stderr keep it for good, as a late EPIPE must not be
  // an uncaught 'error' event (one listener per writer; a process writes one dump there).
  output.on('error', onOutputError);
  if (!stdio) {
    output.once('close', () => {
      output.off('error', onOutputError);
      if (!ended && !sink.destroyed && !sink.writableFinished) sink.destroy(new Error('the output was closed before the dump was complete'));
    });
  }
  const done = (async () => {
    await finished(sink);
    if (!stdio) await finished(output);
  })();
  return { sink, done };
}

/** Write with backpressure: wait for 'drain', or fail on 'error'/'close'. */
/** Why the output failed: its own error (ENOSPC, EPIPE, ...) as a typed error when it has one. */
function outputError(stream: Writable, err?: unknown): Error {
  const cause = err ?? (stream as Writable & { errored?: Error | null }).errored;
  if (cause) return fromSystemError(cause, 'write the dump');
  return new UnexpectedError('cannot write the dump: the output stream is closed');
}

async function writeChunk(stream: Writable, chunk: Buffer, written?: (err?: Error | null) => void): Promise<void> {
  if (stream.destroyed || stream.writableEnded) throw outputError(stream);
  if (written ? stream.write(chunk, written) : stream.write(chunk)) return;
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

/**
 * recordJson of a flag table record with `entries`, built without a JSON.stringify of each entry's
 * arrays: drivers hand out one flags array per distinct flag set (Maildir: per file-name suffix), so
 * the JSON of an array is made once per array. Same bytes as recordJson({ ...record, entries }) with
 * each entry reduced to uid, flags, keywords (a unit test compares).
 */
export function flagTableJson(record: FlagTableRecord, entries: readonly FlagTableEntry[]): string {
  const empty = recordJson({ ...record, entries: [] });
  if (!empty.endsWith('"entries":[]}')) throw new UnexpectedError('internal: a flag table record must end with its entries');
  const known = new Map<readonly string[], string>();
  const json = (a: readonly string[]): string => {
    let text = known.get(a);
    if (text === undefined) {
      text = JSON.stringify(a);
      known.set(a, text);
    }
    return text;
  };
  let out = '';
  for (const e of entries) out += `${out === '' ? '' : ','}{"uid":${JSON.stringify(e.uid)},"flags":${json(e.flags)},"keywords":${json(firstOfEachKeyword(e.keywords))}}`;
  return `${empty.slice(0, -2)}${out}]}`;
}

/** A message record's JSON and the pieces its TOC line is built from (DumpWriter.messageRecordText). */
type MessageRecordText = { json: string; parts: MessageJsonParts; record: null } | { json: string; parts: null; record: MessageRecord };

/** The TOC line of a message whose record is `text`. */
function messageTocText(text: MessageRecordText, id: number, body: MemberSpan, record: MemberSpan): string {
  return text.parts !== null ? messageTocLineJson(id, body, record, text.parts) : tocLine(messageTocEntry(id, body, record, text.record));
}

export class DumpWriter {
  /** The chunk being filled, and how many of its bytes are in use. */
  private out: Buffer = Buffer.allocUnsafeSlow(OUT_CHUNK);
  private fill = 0;
  /** Bytes of the dump handed to the output (whole chunks). */
  private flushed = 0;
  /**
   * Chunks the sink is done with, for reuse. Only when the sink is the compressor, which copies what it
   * is given before it calls back, or a releasingSink; a PassThrough may still hold a chunk after its
   * callback.
   */
  private readonly spareChunks: Buffer[] | null;
  /**
   * The archive digest (format section 5.6): every byte before the trailer, except that the data and
   * padding of a content member (body, stub, blob) enter as the 32-byte sha256 of the data, which
   * the writer computes anyway for the record or the blob's name. So the mail is hashed once, not
   * twice: the plain sha256 of every byte cost a worker thread as much CPU as the message hashes
   * (20% of an uncompressed backup's CPU, profiled).
   */
  private readonly digest: Hash = createHash('sha256');
  /** Bytes at the start of the current chunk already in the digest, or skipped as content. */
  private hashed = 0;
  /** True while a content member's data and padding are being written (they stay out of the digest). */
  private inContent = false;
  /** Set when a write to the output failed: the writer must fail even if the call wrote no bytes of its own. */
  private outputBroken = false;
  private state: State = 'open';
  private failure: Error | null = null;
  private nextId = 1;
  private currentUser: string | null = null;
  private currentMailbox: string | null = null;
  /** Of the current mailbox: its member directory and the JSON of its user and name (reused by every message). */
  private currentDir = '';
  private currentUserJson = '';
  private currentMailboxJson = '';
  private lastUid = 0;
  /** Flag tables written for the current mailbox, and the last UID in them. */
  private flagTables = 0;
  private lastFlagUid = 0;
  /** The current mailbox's uidNext and uidSet, when its record has one: its messages and flag entries must be among them (readers check). */
  private present: { uidNext: number; messages: UidSetCursor; flags: UidSetCursor } | null = null;
  private partsOn = false;
  private incrementalOn = false;
  /** Attachment contents already encoded by writeMessageParts, by WriterPart.contentKey and encoding. */
  private readonly encodedCache = new EncodedContentCache(ENCODED_CACHE_BYTES, ENCODED_CACHE_MAX_CONTENT);
  /** Where writeMessageParts keeps the contents it hashed until their blobs are written (KEPT_CONTENT_BYTES). */
  private keptArena: Buffer | null = null;
  private keptArenaBusy = false;
  /** Where writeMessageParts reads attachment contents to hash them (allocated at the first one). */
  private partScratch: Buffer | null = null;
  private tocSpool: FileHandle | null = null;
  private tocBuffer: Buffer = Buffer.allocUnsafeSlow(TOC_BUFFER);
  private tocFill = 0;
  private tocSize = 0;
  private readonly tocHash: Hash = createHash('sha256');
  private readonly counts = { users: 0, mailboxes: 0, messages: 0, blobs: 0, messageBytes: 0 };
  /** sha256 of every blob written: about 120 bytes of memory per distinct blob (1 million blobs: ~120 MB). */
  private readonly blobsWritten = new Set<string>();
  private blobBytesWritten = 0;

  private constructor(
    private readonly sink: Writable,
    private readonly done: Promise<void>,
    private readonly header: HeaderRecord,
    private readonly tocDir: string,
    /** The compressor, when there is one: it copies what it is given before it calls back. */
    private readonly compressor: SeekableCompressStream | null,
    /** The sink calls back for a chunk only when the output is done with it (releasingSink). */
    sinkReleasesChunks: boolean,
  ) {
    this.spareChunks = compressor !== null || sinkReleasesChunks ? [] : null;
  }

  /** Start a dump: opens the TOC spool and writes the header member. */
  static async create(output: Writable, header: Omit<HeaderRecord, 'type' | 'format' | 'version'>, options: DumpWriterOptions = {}): Promise<DumpWriter> {
    if (options.incremental === true && header.kind !== 'incremental') throw new UsageError('cannot write an incremental dump with a header of kind "full"');
    if ((header.kind === 'full') !== (header.base === null)) throw new UsageError(`cannot write a header of kind "${header.kind}" ${header.base === null ? 'without' : 'with'} a base: an incremental names the run it follows, a full dump none`);
    const compression = options.compression ?? { type: 'none' };
    const direct = compression.type === 'none' && options.outputReleasesChunks === true;
    let sink: Writable;
    let done: Promise<void>;
    if (direct) ({ sink, done } = releasingSink(output));
    else {
      const through: Transform | SeekableCompressStream = compression.type === 'none' ? new PassThrough() : createSeekableCompressStream(compression);
      sink = through;
      done = pipeline(through, output);
    }
    done.catch(() => undefined); // observed in finish()/abort()
    const record: HeaderRecord = {
      type: 'header',
      format: FORMAT_NAME,
      version: FORMAT_VERSION_WRITTEN,
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
    const writer = new DumpWriter(sink, done, record, tocDir, compression.type === 'none' ? null : (sink as SeekableCompressStream), direct);
    writer.partsOn = options.parts === true;
    // Flag tables only in a dump whose header says "incremental": readers reject them in a full one.
    writer.incrementalOn = header.kind === 'incremental';
    if (options.startWorkersEarly === true && writer.compressor !== null) writer.compressor.startWorker();
    await writer.run(async () => {
      writer.tocSpool = await open(join(tocDir, 'toc.jsonl'), 'wx+', 0o600).catch((err: unknown) => {
        throw fromSystemError(err, 'create the TOC spool file', { path: tocDir });
      });
      // Only the open handle is needed: with the name gone, a backup that is killed leaves no copy of
      // the TOC (subjects, senders) in the temp directory.
      await rm(tocDir, { recursive: true, force: true }).catch(() => undefined);
      const span = await writer.writeRecordMember(HEADER_MEMBER, recordJson(record), unixSeconds(record.created));
      await writer.addToc(tocLine(plainTocEntry(0, 'header', span)));
    });
    return writer;
  }

  /** The header record as written. */
  get headerRecord(): HeaderRecord {
    return this.header;
  }

  /** True if writeMessageParts may be used (the writer was created with { parts: true }). */
  get partsAllowed(): boolean {
    return this.partsOn && this.header.version >= FORMAT_VERSION_PARTS;
  }

  /** True if writeFlagTable may be used (an incremental dump). */
  get flagTablesAllowed(): boolean {
    return this.incrementalOn;
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
      const span = await this.writeRecordMember(member, recordJson(record), 0);
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
      this.checkMailboxState(input, member);
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
      const span = await this.writeRecordMember(member, recordJson(record), 0);
      this.currentMailbox = input.name;
      this.currentDir = mailboxDir(input.user, input.name);
      this.currentUserJson = JSON.stringify(input.user);
      this.currentMailboxJson = JSON.stringify(input.name);
      this.lastUid = 0;
      this.flagTables = 0;
      this.lastFlagUid = 0;
      this.present = input.uidSet === undefined ? null : { uidNext: input.uidNext, messages: UidSetCursor.of(input.uidSet), flags: UidSetCursor.of(input.uidSet) };
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
      // Checked after the order (the cursor asks ascending UIDs), before anything is written.
      if (this.present !== null) {
        const cursor = this.present.flags.fork();
        for (const e of entries) {
          if (!cursor.has(e.uid)) throw new UsageError(`cannot write flag table "${member}": UID ${e.uid} is not in the mailbox record's uidSet`, { user, mailbox, member });
        }
        this.present.flags = cursor;
      }
      const span = await this.writeRecordMember(member, flagTableJson({ type: 'flags', user, mailbox, seq: this.flagTables + 1, entries: [] }, entries), 0);
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
   *
   * `known.sha256`: the sha256 (lowercase hex) of exactly the bytes of a Buffer `body`, where the
   * caller has it already (a read-ahead hashed them in another thread); the writer then does not
   * hash them again. Ignored for a stream.
   */
  async writeMessage(input: MessageInput, body: Readable | Buffer, known?: { readonly sha256: string }): Promise<{ id: number; sha256: string }> {
    return this.run(async () => {
      const where = { user: input.user, mailbox: input.mailbox, uid: input.uid };
      let names;
      try {
        names = this.checkMessage(input);
        this.checkRecordFits(input, names.body);
      } catch (err) {
        if (!Buffer.isBuffer(body)) body.destroy();
        throw err;
      }
      const mtime = unixSeconds(input.internalDate);
      const bodySpan = Buffer.isBuffer(body) ? await this.writeBodyBuffer(names.body, input.size, mtime, body, where, known?.sha256) : await this.writeStreamMember(names.body, input.size, mtime, body, where);
      const text = this.messageRecordText(input, bodySpan.sha256);
      const recordSpan = await this.writeRecordMember(names.record, text.json, mtime);
      this.lastUid = input.uid;
      this.counts.messages++;
      this.counts.messageBytes += input.size;
      const id = this.nextId++;
      await this.addToc(messageTocText(text, id, bodySpan, recordSpan));
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
   * A new blob is written from the bytes read in the first pass (up to KEPT_CONTENT_BYTES per message);
   * one not kept is read a second time, and if its content changed in between (so that it no longer
   * hashes to the name learned in the first pass), the writer fails (IntegrityError).
   */
  async writeMessageParts(input: MessageInput, parts: readonly WriterPart[], expectedSha256?: string): Promise<WrittenMessage> {
    if (!this.partsAllowed) throw new UsageError('cannot write a message as parts: this writer was created without { parts: true }');
    const where = { user: input.user, mailbox: input.mailbox, uid: input.uid };
    const describe = `message UID ${input.uid} of mailbox "${input.mailbox}" (user "${input.user}")`;
    if (!parts.some((p) => p.kind === 'attachment')) {
      const data = Buffer.concat(parts.map((p) => (p as { data: Buffer }).data));
      const r = await this.writeMessage(input, Readable.from(data.length === 0 ? [] : [data]));
      return { ...r, blobs: [], blobsWritten: 0 };
    }
    for (const [i, p] of parts.entries()) {
      if (p.kind === 'attachment' && !encodingFitsDump(p.encoding)) {
        const n = p.encoding.type === 'base64' ? p.encoding.lineLength : 0;
        throw new UsageError(`cannot write ${describe} as parts: part ${i} has base64 lines of ${n} characters, readers take 1 to ${MAX_BASE64_LINE}`, { ...where, hint: 'store the message whole' });
      }
    }
    // The arena holds this message's contents until its blobs are written; a call made while another
    // one holds it (callers await each message, but the writer does not rely on it) keeps nothing.
    let keepNeed = 0;
    if (!this.keptArenaBusy) {
      for (const p of parts) {
        if (p.kind === 'attachment' && keepNeed + p.contentSize <= KEPT_CONTENT_BYTES) keepNeed += p.contentSize;
      }
      if ((this.keptArena?.length ?? 0) < keepNeed) this.keptArena = Buffer.allocUnsafeSlow(Math.min(KEPT_CONTENT_BYTES, Math.ceil(keepNeed / (1024 * 1024)) * 1024 * 1024));
      this.keptArenaBusy = keepNeed > 0;
    }
    const holdsArena = keepNeed > 0;
    try {
      return await this.writePartsHolding(input, parts, expectedSha256, keepNeed, where, describe);
    } finally {
      if (holdsArena) this.keptArenaBusy = false;
    }
  }

  /** writeMessageParts after its checks; `keepNeed`: bytes of this.keptArena it may use. */
  private async writePartsHolding(input: MessageInput, parts: readonly WriterPart[], expectedSha256: string | undefined, keepNeed: number, where: { user: string; mailbox: string; uid: number }, describe: string): Promise<WrittenMessage> {
    // Pass 1: nothing written; learn the content hashes and the full hash. Contents are read into one
    // scratch buffer (copied into the arena where kept) and encoded into reused memory where the part
    // allows.
    const scratch = (this.partScratch ??= Buffer.allocUnsafeSlow(PART_SCRATCH_BYTES));
    const cacheKeys: Array<string | null> = [];
    let keptAt = 0;
    const pieces: AssemblyPiece[] = parts.map((p) => {
      if (p.kind === 'inline') {
        cacheKeys.push(null);
        return { type: 'inline', size: p.data.length };
      }
      const openChunks = p.openChunks;
      const key = p.contentKey !== undefined && this.encodedCache.holds(p.contentSize) ? EncodedContentCache.key(p.contentKey, p.encoding) : null;
      cacheKeys.push(key);
      const cached = key !== null ? this.encodedCache.get(key, p.contentSize) : undefined;
      // Kept from its second message on: most attachments belong to one message only.
      const capture = key !== null && cached === undefined && this.encodedCache.seenBefore(key);
      // Read anyway (not from the cache): kept for the blob write if it turns out to be new to the dump.
      // (An empty content needs no arena: the arena may not exist yet when nothing is kept.)
      const keepInto = cached === undefined && p.contentSize > 0 && keptAt + p.contentSize <= keepNeed ? this.keptArena!.subarray(keptAt, (keptAt += p.contentSize)) : undefined;
      return {
        type: 'blob',
        size: p.size,
        contentSize: p.contentSize,
        encoding: p.encoding,
        sha256: null,
        open: openChunks !== undefined ? async () => openChunks.call(p, scratch) : async () => p.open(),
        ...(cached !== undefined ? { encoded: { bytes: cached.bytes, contentSha256: cached.contentSha256 } } : capture ? { capture: true } : {}),
        ...(keepInto !== undefined ? { keepInto } : {}),
      };
    });
    const stub = Buffer.concat(parts.filter((p): p is Extract<WriterPart, { kind: 'inline' }> => p.kind === 'inline').map((p) => p.data));
    const full = await this.run(async () => {
      this.checkRecordFits(input, this.checkMessage(input).body);
      const { stream, result } = assembleParts(
        pieces,
        Readable.from(stub.length === 0 ? [] : [stub]),
        (i, why) => new IntegrityError(`cannot write ${describe} as parts: piece ${i}: ${why}`, { ...where, hint: 'the attachment changed or is damaged; the message can be stored whole' }),
        { transient: true },
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
      for (const [i, bytes] of result.encoded) this.encodedCache.put(cacheKeys[i]!, bytes, result.contentSha256.get(i)!, (parts[i] as Extract<WriterPart, { kind: 'attachment' }>).contentSize);
      return { sha256, content: result.contentSha256, kept: result.content };
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
      const kept = full.kept.get(i);
      if (kept !== undefined) await this.writeKeptBlob(sha256, kept);
      else await this.writeBlob({ sha256, size: p.contentSize }, await p.open());
      blobsWritten++;
    }
    // Stub and record.
    return this.run(async () => {
      const names = this.checkMessage(input);
      for (const sha256 of blobs) {
        if (!this.blobsWritten.has(sha256)) throw new UnexpectedError(`internal: blob ${sha256} of ${describe} was not written`, where);
      }
      const mtime = unixSeconds(input.internalDate);
      const stubSpan = await this.writeBufferMember(names.stub, stub, mtime, true);
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
      const recordSpan = await this.writeRecordMember(names.record, recordJson(record), mtime);
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
      await this.blobWritten(span);
    });
  }

  /** A blob from the bytes writeMessageParts hashed to `sha256` (so not hashed again). */
  private async writeKeptBlob(sha256: string, content: Buffer): Promise<void> {
    await this.run(async () => {
      if (this.blobsWritten.has(sha256)) throw new UnexpectedError(`internal: blob ${sha256} written twice`);
      await this.blobWritten(await this.writeBufferMember(blobMember(sha256), content, 0, true, sha256));
    });
  }

  private async blobWritten(span: MemberSpan): Promise<void> {
    this.blobsWritten.add(span.sha256);
    this.blobBytesWritten += span.size;
    this.counts.blobs++;
    await this.addToc(tocLine(plainTocEntry(0, 'blob', span)));
  }

  /** Append the TOC, the trailer and the end-of-archive marker; end the output and wait for it. Consumes the writer. */
  async finish(): Promise<TrailerRecord> {
    const trailer = await this.run(async () => {
      await this.flushToc();
      const spool = this.tocSpool!;
      const tocSha256 = this.tocHash.digest('hex');
      const created = unixSeconds(this.header.created);
      const tocHeaderOffset = this.offset;
      await this.putHeader(TOC_MEMBER, this.tocSize, created);
      const tocDataOffset = this.offset;
      const buffer = this.tocBuffer; // the TOC is all in the spool now
      for (let position = 0; position < this.tocSize; ) {
        const { bytesRead } = await spool.read(buffer, 0, Math.min(buffer.length, this.tocSize - position), position);
        if (bytesRead === 0) throw new UnexpectedError('cannot copy the TOC spool: it is shorter than written', { path: this.tocDir });
        await this.putBytes(buffer.subarray(0, bytesRead));
        position += bytesRead;
      }
      await this.putZeros(paddingLength(this.tocSize));
      const digest = this.digestSoFar();
      const record: TrailerRecord = {
        type: 'trailer',
        format: FORMAT_NAME,
        version: this.header.version,
        runId: this.header.runId,
        completed: isoNow(),
        counts: { ...this.counts },
        toc: { offset: tocHeaderOffset, dataOffset: tocDataOffset, size: this.tocSize, sha256: tocSha256 },
        digest: { algorithm: HASHED_CONTENT_DIGEST, value: digest },
        complete: true,
      };
      const text = encodeRecord(record, TRAILER_BYTES);
      await this.putHeader(TRAILER_MEMBER, text.length, unixSeconds(record.completed));
      await this.putBytes(text);
      await this.putZeros(2 * BLOCK);
      await this.flushOut();
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
  private messageRecord(input: MessageInput, sha256: string, summary = this.cutSummary(input), extra = sortedKeys(input.extra)): MessageRecord {
    return {
      type: 'message',
      user: input.user,
      mailbox: input.mailbox,
      uid: input.uid,
      guid: input.guid,
      flags: [...input.flags],
      keywords: [...firstOfEachKeyword(input.keywords)],
      internalDate: input.internalDate,
      saveDate: input.saveDate,
      modseq: input.modseq,
      size: input.size,
      sha256,
      summary,
      extra,
    };
  }

  /** The summary as the record holds it (each field cut to MAX_SUMMARY_FIELD); reads input.summary once. */
  private cutSummary(input: MessageInput): MessageRecord['summary'] {
    const s = input.summary;
    return { from: cut(s.from), subject: cut(s.subject), messageId: cut(s.messageId), date: cut(s.date) };
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
    const names = this.currentUser === input.user && this.currentMailbox === input.mailbox ? messageMembersIn(this.currentDir, input.uid) : messageMembers(input.user, input.mailbox, input.uid);
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
    if (this.present !== null && (input.uid >= this.present.uidNext || !this.present.messages.has(input.uid))) {
      throw new UsageError(
        `cannot write message UID ${input.uid} of mailbox "${input.mailbox}" (user "${input.user}"): it is ${input.uid >= this.present.uidNext ? `not below the mailbox record's uidNext (${this.present.uidNext})` : "not in the mailbox record's uidSet"}`,
        { ...where, member: names.body },
      );
    }
    return names;
  }

  /**
   * A mailbox record's uidSet must be one (archive/uid-set.ts); in an incremental a selectable
   * mailbox's record carries `reset` and `uidSet`, a \NoSelect level's neither (section 13).
   */
  private checkMailboxState(input: Omit<MailboxRecord, 'type'>, member: string): void {
    const where = { user: input.user, mailbox: input.name, member };
    if (input.uidSet !== undefined && !isUidSet(input.uidSet)) {
      throw new UsageError(`cannot write mailbox "${input.name}": uidSet "${input.uidSet.slice(0, 80)}" is not ascending, non-touching ranges of UIDs (e.g. "1:5,7,9:120")`, where);
    }
    if (!this.incrementalOn) return;
    if (input.selectable && (input.reset === undefined || input.uidSet === undefined)) {
      throw new UsageError(`cannot write mailbox "${input.name}" into an incremental dump without ${input.reset === undefined ? 'reset' : 'uidSet'}: readers need both for a selectable mailbox`, where);
    }
    if (!input.selectable && (input.reset !== undefined || input.uidSet !== undefined)) {
      throw new UsageError(`cannot write \\NoSelect mailbox "${input.name}" with reset or uidSet: it holds no messages`, where);
    }
  }

  /**
   * Refuse, before anything is written, a message whose record or TOC line would be over the format's
   * MAX_RECORD_BYTES (1 MiB): only keywords and extra fields can make them that long (summary fields
   * are cut, the rest is fixed size). Found after the body, the writer could only fail, and one such
   * message would end the whole dump; refused here, the writer stays usable and the caller skips the
   * message with this error. Exact lengths are computed only when a cheap upper bound is over the limit.
   */
  private checkRecordFits(input: MessageInput, bodyMember: string): void {
    let chars = input.user.length + input.mailbox.length + (input.guid?.length ?? 0) + (input.modseq?.length ?? 0);
    for (const f of input.flags) chars += f.length + 3;
    for (const k of input.keywords) chars += k.length + 3;
    for (const [k, v] of Object.entries(input.extra)) chars += k.length + v.length + 6;
    // Per char at most 6 bytes of JSON (\u escapes); user and mailbox appear twice in a TOC line (the
    // member name, percent-encoded: at most 9 bytes a char); 4 cut summary fields; 4 KiB for the rest.
    const bound = 6 * chars + 9 * (input.user.length + input.mailbox.length) + 4 * 6 * MAX_SUMMARY_FIELD + 4096;
    if (bound <= MAX_RECORD_BYTES) return;
    const widest = Number.MAX_SAFE_INTEGER; // the longest offset any span can have
    const span: MemberSpan = { member: bodyMember, offset: widest, dataOffset: widest, size: widest, sha256: '0'.repeat(64) };
    const text = this.messageRecordText(input, span.sha256);
    const recordBytes = encodedRecordLength(text.json);
    const tocBytes = Buffer.byteLength(messageTocText(text, widest, span, span));
    // A TOC line's limit is on its bytes without the LF (as readers count).
    if (recordBytes <= MAX_RECORD_BYTES && tocBytes - 1 <= MAX_RECORD_BYTES) return;
    throw new UsageError(
      `cannot write message UID ${input.uid} of mailbox "${input.mailbox}" (user "${input.user}"): its record would take ${recordBytes} bytes and its TOC line ${tocBytes - 1} (${input.keywords.length} keywords, ${Object.keys(input.extra).length} extra fields), over the format's ${MAX_RECORD_BYTES}-byte limit for a record or TOC line`,
      { user: input.user, mailbox: input.mailbox, uid: input.uid, member: bodyMember, hint: 'the message is left out of this dump; remove most of its keywords to back it up' },
    );
  }

  /**
   * The JSON of a message's record (body sha256 `sha256`), and what its TOC line is built from:
   * the pre-encoded parts where messageJsonParts can give them (the usual case), else the record.
   */
  private messageRecordText(input: MessageInput, sha256: string): MessageRecordText {
    const summary = this.cutSummary(input);
    const extra = sortedKeys(input.extra);
    const parts = messageJsonParts(input, this.currentUserJson, this.currentMailboxJson, summary, extra);
    if (parts !== null) return { json: messageRecordJson(parts, sha256), parts, record: null };
    const record = this.messageRecord(input, sha256, summary, extra);
    return { json: recordJson(record), parts: null, record };
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
      if (this.offset === startOffset && !this.sink.destroyed && !this.outputBroken) {
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

  /** Bytes of the dump so far: those handed to the output and those in the current chunk. */
  private get offset(): number {
    return this.flushed + this.fill;
  }

  /** Hand the current chunk to the output (with backpressure) and start a new one. */
  private async flushOut(): Promise<void> {
    if (this.fill === 0) return;
    const full = this.out;
    const chunk = full.subarray(0, this.fill);
    if (!this.inContent && this.fill > this.hashed) this.digest.update(chunk.subarray(this.hashed));
    const spare = this.spareChunks;
    this.out = spare?.pop() ?? Buffer.allocUnsafeSlow(OUT_CHUNK);
    this.flushed += this.fill;
    this.fill = 0;
    this.hashed = 0;
    try {
      if (spare === null) {
        await writeChunk(this.sink, chunk);
        return;
      }
      await writeChunk(this.sink, chunk, (err) => {
        if (!err && spare.length < MAX_SPARE_CHUNKS) spare.push(full);
      });
    } catch (err) {
      this.outputBroken = true;
      throw err;
    }
  }

  /** The archive digest of everything so far (the current chunk included); not inside a content member. */
  private digestSoFar(): string {
    if (this.inContent) throw new UnexpectedError('internal: archive digest asked for inside a content member');
    if (this.fill > this.hashed) {
      this.digest.update(this.out.subarray(this.hashed, this.fill));
      this.hashed = this.fill;
    }
    return this.digest.copy().digest('hex');
  }

  /** A content member's data starts here (its header is written): what precedes it enters the digest. */
  private beginContent(): void {
    if (this.fill > this.hashed) this.digest.update(this.out.subarray(this.hashed, this.fill));
    this.hashed = this.fill;
    this.inContent = true;
  }

  /** The content member's data and padding are written: they enter the digest as their sha256. */
  private endContent(sha256: string): void {
    this.hashed = this.fill;
    this.inContent = false;
    this.digest.update(Buffer.from(sha256, 'hex'));
  }

  /** Append bytes (copied: the caller may reuse `data`). */
  private async putBytes(data: Buffer): Promise<void> {
    for (let pos = 0; pos < data.length; ) {
      if (this.fill === OUT_CHUNK) await this.flushOut();
      const n = Math.min(data.length - pos, OUT_CHUNK - this.fill);
      data.copy(this.out, this.fill, pos, pos + n);
      this.fill += n;
      pos += n;
    }
  }

  /** Append `n` (< OUT_CHUNK) zero bytes. */
  private async putZeros(n: number): Promise<void> {
    if (n === 0) return;
    if (this.fill + n > OUT_CHUNK) await this.flushOut();
    this.out.fill(0, this.fill, this.fill + n);
    this.fill += n;
  }

  /**
   * Append a member's header block(s). `following`: bytes that should land in the same chunk after
   * the header (a small member's data and padding), so they need no flush in between.
   */
  private async putHeader(member: string, size: number, mtime: number, following = 0): Promise<void> {
    const room = BLOCK + Math.min(following, OUT_CHUNK - BLOCK);
    if (this.fill + room > OUT_CHUNK) await this.flushOut();
    if (encodeUstarInto(this.out, this.fill, member, size, mtime)) {
      this.fill += BLOCK;
      return;
    }
    const header = encodeFileHeader(member, size, mtime);
    if (this.fill + header.length + following > OUT_CHUNK) await this.flushOut();
    await this.putBytes(header);
  }

  /** A member from a buffer; `content`: a body, stub or blob (see `digest`). */
  private async writeBufferMember(member: string, data: Buffer, mtime: number, content: boolean, sha256?: string): Promise<MemberSpan> {
    const offset = this.offset;
    const pad = paddingLength(data.length);
    const hash = sha256 ?? sha256Hex(data);
    await this.putHeader(member, data.length, mtime, data.length + pad);
    const dataOffset = this.offset;
    if (content) this.beginContent();
    await this.putBytes(data);
    await this.putZeros(pad);
    if (content) this.endContent(hash);
    return { member, offset, dataOffset, size: data.length, sha256: hash };
  }

  /**
   * A JSON record member (`json` from recordJson, or built to the same bytes): encoded straight into
   * the current chunk, and its sha256 taken there.
   */
  private async writeRecordMember(member: string, json: string, mtime: number): Promise<MemberSpan> {
    const size = encodedRecordLength(json);
    if (size > MAX_IN_PLACE_RECORD) return this.writeBufferMember(member, encodeRecordJson(json), mtime, false);
    const offset = this.offset;
    const pad = paddingLength(size);
    await this.putHeader(member, size, mtime, size + pad);
    if (this.fill + size + pad > OUT_CHUNK) await this.flushOut();
    const dataOffset = this.offset;
    const pos = this.fill;
    const written = encodeRecordInto(json, this.out, pos);
    if (written !== size) throw new UnexpectedError(`internal: record "${member}" encoded to ${written} bytes, expected ${size}`);
    this.out.fill(0, pos + size, pos + size + pad);
    this.fill += size + pad;
    return { member, offset, dataOffset, size, sha256: sha256Hex(this.out.subarray(pos, pos + size)) };
  }

  /** A body already in memory: checked, hashed and copied into the output with its header and padding. */
  private async writeBodyBuffer(member: string, size: number, mtime: number, body: Buffer, where: { user?: string; mailbox?: string; uid?: number }, sha256?: string): Promise<MemberSpan> {
    if (body.length !== size) {
      const describe = where.uid === undefined ? `"${member}"` : `message UID ${where.uid} of mailbox "${where.mailbox}" (user "${where.user}")`;
      throw new IntegrityError(`cannot write ${describe}: the body yields ${body.length} bytes, but ${size} were declared (expected ${size}, got ${body.length})`, { ...where, member });
    }
    if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256)) throw new UsageError(`cannot write "${member}": a known sha256 must be 64 lowercase hex digits`, { ...where, member });
    return this.writeBufferMember(member, body, mtime, true, sha256);
  }

  /** Stream exactly `size` bytes of a content member (body or blob) from `body`; the header is written with the first byte. */
  private async writeStreamMember(member: string, size: number, mtime: number, body: Readable, where: { user?: string; mailbox?: string; uid?: number }): Promise<MemberSpan> {
    const hash = createHash('sha256');
    const offset = this.offset;
    let dataOffset = -1;
    let got = 0;
    const describe = where.uid === undefined ? `"${member}"` : `message UID ${where.uid} of mailbox "${where.mailbox}" (user "${where.user}")`;
    const startMember = async (): Promise<void> => {
      await this.putHeader(member, size, mtime);
      dataOffset = this.offset;
      this.beginContent();
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
        await this.putBytes(chunk);
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
    await this.putZeros(paddingLength(size));
    const sha256 = hash.digest('hex');
    this.endContent(sha256);
    return { member, offset, dataOffset, size, sha256 };
  }

  /** Append a TOC line to the TOC buffer (spooled to the temp file when full). */
  private async addToc(line: string): Promise<void> {
    const bytes = Buffer.byteLength(line);
    if (this.tocFill + bytes > TOC_BUFFER) await this.flushToc();
    if (bytes > TOC_BUFFER) {
      await this.spoolToc(Buffer.from(line));
      return;
    }
    this.tocBuffer.write(line, this.tocFill, 'utf8');
    this.tocFill += bytes;
  }

  private async flushToc(): Promise<void> {
    if (this.tocFill === 0) return;
    const data = this.tocBuffer.subarray(0, this.tocFill);
    this.tocFill = 0;
    await this.spoolToc(data);
  }

  /** Hash and append TOC bytes to the spool file (awaited: the caller may reuse `data` after). */
  private async spoolToc(data: Buffer): Promise<void> {
    if (this.tocSpool === null) return;
    this.tocHash.update(data);
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
