/**
 * readDump: a one-pass, non-seeking reader of a dump (plain tar or zstd). It checks everything the
 * spec lets a one-pass reader check (formats/dump-v1.md, "What a reader checks") and yields entries in
 * stream order. A message entry is yielded only after its body matched the size and sha256 of its record.
 *
 * The consumer must finish with one entry before pulling the next: `openBody()` streams are valid only
 * until the next iteration (the spooled body is then deleted).
 */
import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  ArchiveCorruptError,
  ArchiveOrderError,
  ArchiveTruncatedError,
  InterruptedError,
  UsageError,
  fromSystemError,
  isMailvaultError,
} from '../core/errors.js';
import { BlobSpool, type BlobWriter } from './blob-spool.js';
import { EncodedBlobCache } from './encoded-blob-cache.js';
import { BodySpool } from './body-spool.js';
import { createDecompressStream, isZstdMagic } from './compression/index.js';
import { MAX_RECORD_BYTES } from './limits.js';
import { blobMember, parseMemberName, mailboxMember, userMember as userMemberName, type ParsedMember } from './member-names.js';
import { assembleParts, recordPieces, validateParts } from './parts.js';
import { decodeRecord, sha256Hex } from './record-codec.js';
import { checkFormatVersion, validateFlagTable, validateHeader, validateMailbox, validateMessage, validateTrailer, validateUser } from './record-validate.js';
import { FLAG_TABLE_MAX_ENTRIES, FORMAT_VERSION_HASHED_CONTENT, FORMAT_VERSION_INCREMENTAL, FORMAT_VERSION_PARTS, type FlagTableRecord, type HeaderRecord, type MailboxRecord, type MessageRecord, type TrailerRecord, type UserRecord } from './records.js';
import { ContentHash } from './content-hash.js';
import { UidSetCursor } from './uid-set.js';
import { CUT_SHORT_HINT, parseTar, TarParseState, type TarEvent } from './tar-parser.js';
import { messageTocEntry, plainTocEntry, tocProjection, type MemberSpan } from './toc.js';

/**
 * sha256 of a body that comes in one or more chunks. Most bodies come in one: those are hashed with
 * one call and no native Hash object (a Hash per message, waiting for GC, was a good part of a
 * restore's garbage collection time).
 */
export type DumpEntry =
  | { type: 'header'; record: HeaderRecord; member: string; offset: number }
  | { type: 'user'; record: UserRecord; member: string; offset: number }
  | { type: 'mailbox'; record: MailboxRecord; member: string; offset: number }
  | {
      type: 'message';
      record: MessageRecord;
      member: string;
      offset: number;
      id: number;
      /** Opens the VERIFIED body (hash and size already checked against the record). Only if wanted. */
      openBody(): Readable;
      /** The same verified body as one buffer when the reader holds it in memory (bodies up to 8 MiB,
       *  MAX_MEMORY_SPOOL_BYTES), else null. Read-only; valid until the next entry is pulled. */
      bodyBytes(): Buffer | null;
    }
  | { type: 'trailer'; record: TrailerRecord; member: string; offset: number }
  /** Version 3 (incrementals): a flag table of the current mailbox, before its messages. */
  | { type: 'flags'; record: FlagTableRecord; member: string; offset: number };

export interface ReadOptions {
  /** Called with (user, mailbox, uid) from the member name when a body member starts; false = do not keep the
   *  body (it is still hashed and checked, and the entry is yielded with openBody throwing). */
  wantBody?: (ref: { user: string; mailbox: string; uid: number }) => boolean;
  signal?: AbortSignal;
  /** Directory for the blob spool of version 2 dumps (default os.tmpdir()); see blob-spool.ts for the disk it takes. */
  blobSpoolDir?: string;
  /** A zstd dump's seek table must describe its frames (DecompressOptions.checkSeekTable; verify asks for it). */
  checkSeekTable?: boolean;
}

export function readDump(input: Readable, options: ReadOptions = {}): AsyncIterable<DumpEntry> {
  return { [Symbol.asyncIterator]: () => readEntries(input, options) };
}

/** The uncompressed tar bytes of `input`: zstd (by magic) is decompressed, anything else passed on. */
async function* tarBytes(input: Readable, checkSeekTable: boolean): AsyncGenerator<Buffer> {
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let headBytes = 0;
  let ended = false;
  try {
    while (headBytes < 4) {
      const r = await it.next();
      if (r.done) {
        ended = true;
        break;
      }
      const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
      head.push(chunk);
      headBytes += chunk.length;
    }
  } catch (err) {
    throw isMailvaultError(err) ? err : fromSystemError(err, 'read the dump');
  }
  async function* rest(): AsyncGenerator<Buffer> {
    yield* head;
    if (ended) return;
    for (;;) {
      let r: IteratorResult<Buffer>;
      try {
        r = await it.next();
      } catch (err) {
        throw isMailvaultError(err) ? err : fromSystemError(err, 'read the dump');
      }
      if (r.done) return;
      yield Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
    }
  }
  if (headBytes >= 4 && isZstdMagic(Buffer.concat(head))) {
    const decompress = createDecompressStream({ checkSeekTable });
    const feeding = pipeline(Readable.from(rest()), decompress);
    feeding.catch(() => undefined);
    try {
      for await (const chunk of decompress) yield chunk as Buffer;
      await feeding;
    } catch (err) {
      if (isMailvaultError(err)) throw err;
      throw new ArchiveCorruptError(`archive corrupt: cannot decompress the zstd stream: ${(err as Error)?.message ?? String(err)}`, {
        cause: err,
        hint: CUT_SHORT_HINT,
      });
    } finally {
      decompress.destroy();
    }
    return;
  }
  yield* rest();
}

interface PendingBody {
  member: string;
  offset: number;
  dataOffset: number;
  user: string;
  mailbox: string;
  uid: number;
  size: number;
  sha256: string;
  spool: BodySpool | null;
  /** The member is a stub (`<uid>.stub`): the record's parts rebuild the message. */
  stub: boolean;
  /** wantBody said yes. */
  keep: boolean;
}

const corrupt = (member: string, offset: number, why: string, extra: Record<string, unknown> = {}): ArchiveCorruptError =>
  new ArchiveCorruptError(`archive corrupt: member "${member}" at offset ${offset}: ${why}`, { member, offset, ...extra, hint: 'the dump was damaged: check it with "mailvault verify"' });

const order = (member: string, offset: number, why: string): ArchiveOrderError =>
  new ArchiveOrderError(`archive out of order: member "${member}" at offset ${offset}: ${why}`, {
    member,
    offset,
    hint: 'a mailvault writer never does this: the dump was altered or damaged',
  });

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

async function* readEntries(input: Readable, options: ReadOptions): AsyncGenerator<DumpEntry> {
  const signal = options.signal;
  const parseState = new TarParseState();
  const events = parseTar(tarBytes(input, options.checkSeekTable === true), parseState);

  let header: HeaderRecord | null = null;
  let previous: string | null = null;
  let currentUser: string | null = null;
  let userMember = '';
  let currentMailbox: string | null = null;
  let mailboxMemberName = '';
  let lastUid = 0;
  /** The current mailbox's flag tables so far: the last one's number and the highest UID they gave. */
  let lastFlagSeq = 0;
  let lastFlagUid = 0;
  /**
   * The current mailbox's uidSet and uidNext, where its record has a uidSet (mailvault 0.3 and later):
   * its messages and flag-table entries must be among those UIDs, and its messages below uidNext.
   * One cursor each: both come in ascending UID order.
   */
  let present: { uidNext: number; messages: UidSetCursor; flags: UidSetCursor } | null = null;
  let pending: PendingBody | null = null;
  let tocDone = false;
  let tocInfo: { offset: number; dataOffset: number; size: number; sha256: string } | null = null;
  let trailer: TrailerRecord | null = null;
  let nextId = 1;
  const counts = { users: 0, mailboxes: 0, messages: 0, blobs: 0, messageBytes: 0 };
  const expectedToc: Hash = createHash('sha256');
  let expectedTocLines = 0;
  let disposeCurrent: BodySpool | null = null;
  const blobs = new BlobSpool(options.blobSpoolDir);
  const encodedBlobs = new EncodedBlobCache();

  const expect = (entry: Record<string, unknown>): void => {
    expectedToc.update(`${tocProjection(entry)}\n`);
    expectedTocLines++;
  };

  const next = async (): Promise<TarEvent> => {
    if (signal?.aborted) throw new InterruptedError('reading the dump was interrupted', { offset: parseState.offset, cause: signal.reason });
    const r = await events.next();
    if (r.done) throw new ArchiveTruncatedError('archive truncated: the tar stream ended unexpectedly', { offset: parseState.offset, hint: CUT_SHORT_HINT });
    return r.value;
  };

  /** Read the data of a JSON record member (bounded), then its memberEnd. */
  const readData = async (size: number): Promise<Buffer> => {
    const parts: Buffer[] = [];
    for (;;) {
      const ev = await next();
      if (ev.kind === 'memberEnd') return Buffer.concat(parts, size);
      if (ev.kind === 'data') parts.push(ev.chunk);
    }
  };

  /**
   * A message stored as parts: check the record's parts against the stub, find every blob among those
   * read before (ArchiveOrderError naming both members otherwise), rebuild the message while hashing it,
   * and check size and sha256. Returns the spool of the full message (if wanted) and disposes the stub's.
   */
  const rebuild = async (body: PendingBody, record: MessageRecord, recordMember: string, recordOffset: number): Promise<BodySpool | null> => {
    const what = `message UID ${body.uid} of mailbox "${body.mailbox}" (user "${body.user}")`;
    const { stub, parts } = validateParts(record, recordMember, recordOffset);
    if (stub.size !== body.size || stub.sha256 !== body.sha256) {
      throw new ArchiveCorruptError(
        `archive corrupt: ${what}, stub member "${body.member}" at offset ${body.offset}: the stub has ${body.size} bytes with sha256 ${body.sha256}, its record says ${stub.size} bytes with sha256 ${stub.sha256}: the stub was damaged`,
        { member: body.member, offset: body.offset, user: body.user, mailbox: body.mailbox, uid: body.uid, hint: 'the dump was damaged: check it with "mailvault verify"' },
      );
    }
    for (const p of parts) {
      if (p.type === 'blob' && !blobs.has(p.sha256)) {
        throw new ArchiveOrderError(
          `archive out of order: member "${body.member}" at offset ${body.offset} (${what}) needs blob "${blobMember(p.sha256)}", which does not come before it: a blob must precede the first message that references it`,
          { member: body.member, offset: body.offset, user: body.user, mailbox: body.mailbox, uid: body.uid, hint: 'the blob is missing or misplaced: the dump was altered or damaged' },
        );
      }
    }
    const stubSpool = body.spool!;
    const out = body.keep ? new BodySpool() : null;
    try {
      const pieces = encodedBlobs.prepare(recordPieces(parts, async (sha256) => blobs.open(sha256)));
      const { stream, result } = assembleParts(
        pieces,
        stubSpool.open(),
        (i, why) => new ArchiveCorruptError(`archive corrupt: ${what}, part ${i}: ${why}`, { member: body.member, offset: body.offset, user: body.user, mailbox: body.mailbox, uid: body.uid, hint: 'the dump was damaged: check it with "mailvault verify"' }),
      );
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of stream) {
        hash.update(chunk);
        size += chunk.length;
        await out?.write(chunk);
      }
      const sha256 = hash.digest('hex');
      if (size !== record.size || sha256 !== record.sha256) {
        throw new ArchiveCorruptError(
          `archive corrupt: ${what}, stub member "${body.member}" at offset ${body.offset}: the stub and blobs rebuild ${size} bytes with sha256 ${sha256}, the record says ${record.size} bytes with sha256 ${record.sha256}`,
          { member: body.member, offset: body.offset, user: body.user, mailbox: body.mailbox, uid: body.uid, hint: 'the dump was damaged: check it with "mailvault verify"' },
        );
      }
      encodedBlobs.keep(pieces, result.encoded, result.contentSha256);
    } catch (err) {
      await out?.dispose();
      throw err;
    } finally {
      await stubSpool.dispose();
    }
    return out;
  };

  try {
    for (;;) {
      const ev = await next();
      if (disposeCurrent !== null) {
        await disposeCurrent.dispose();
        disposeCurrent = null;
      }
      if (ev.kind === 'end') {
        if (trailer === null) {
          throw new ArchiveTruncatedError(
            `archive truncated: the end-of-archive marker at offset ${ev.offset} comes before the trailer; the last complete member is ${previous === null ? 'none' : `"${previous}"`}`,
            { offset: ev.offset, ...(previous === null ? {} : { member: previous }), hint: CUT_SHORT_HINT },
          );
        }
        return;
      }
      if (ev.kind !== 'member') throw new ArchiveCorruptError('internal: tar event out of sequence');
      const { name, size, offset, dataOffset } = ev;
      const parsed: ParsedMember = parseMemberName(name, offset);
      // A stub is message bytes (up to MAX_STUB_BYTES of inline parts), not a JSON record.
      const isRecordKind = parsed.kind !== 'body' && parsed.kind !== 'stub' && parsed.kind !== 'blob' && parsed.kind !== 'toc';
      if (isRecordKind && size > MAX_RECORD_BYTES) throw corrupt(name, offset, `declared size ${size} is absurd for a JSON record (limit ${MAX_RECORD_BYTES} bytes)`);
      if (trailer !== null) throw order(name, offset, `nothing may follow the trailer "mailvault/trailer.json"`);
      if (header === null && parsed.kind !== 'header') throw order(name, offset, 'the first member must be "mailvault/header.json"');
      if (pending !== null && !(parsed.kind === 'record' && parsed.user === pending.user && parsed.mailbox === pending.mailbox && parsed.uid === pending.uid)) {
        throw order(name, offset, `the body "${pending.member}" must be followed immediately by its record "${pending.member.replace(/\.eml$/, '.json')}"`);
      }
      if (tocDone && parsed.kind !== 'trailer') throw order(name, offset, `only the trailer may follow "mailvault/toc.jsonl"`);
      const span = (sha256: string): MemberSpan => ({ member: name, offset, dataOffset, size, sha256 });
      // Version 4: bodies, stubs and blobs enter the archive digest as their sha256 (section 5.6).
      parseState.contentMember = header !== null && header.version >= FORMAT_VERSION_HASHED_CONTENT && (parsed.kind === 'body' || parsed.kind === 'stub' || parsed.kind === 'blob');

      switch (parsed.kind) {
        case 'header': {
          if (header !== null || previous !== null) throw order(name, offset, 'the header must be the first member, and only once');
          const data = await readData(size);
          // Format and version first: a newer version may change everything else.
          const peek = (() => {
            try {
              return JSON.parse(data.toString('utf8')) as Record<string, unknown>;
            } catch {
              return null;
            }
          })();
          if (peek !== null && typeof peek === 'object') checkFormatVersion(peek, name, dataOffset);
          header = validateHeader(decodeRecord(data, name, dataOffset), name, dataOffset);
          expect(plainTocEntry(0, 'header', span(sha256Hex(data))) as unknown as Record<string, unknown>);
          previous = name;
          yield { type: 'header', record: header, member: name, offset };
          break;
        }
        case 'user': {
          if (currentUser !== null && compareBytes(parsed.user, currentUser) <= 0) {
            throw order(name, offset, `user "${parsed.user}" comes after "${userMember}" (user "${currentUser}"): users must ascend in UTF-8 byte order, each once`);
          }
          const data = await readData(size);
          const record = validateUser(decodeRecord(data, name, dataOffset), name, dataOffset);
          if (record.user !== parsed.user) throw corrupt(name, offset, `the record is for user "${record.user}", the member name says "${parsed.user}"`);
          currentUser = record.user;
          userMember = name;
          currentMailbox = null;
          counts.users++;
          expect(plainTocEntry(nextId++, 'user', span(sha256Hex(data)), { user: record.user }) as unknown as Record<string, unknown>);
          previous = name;
          yield { type: 'user', record, member: name, offset };
          break;
        }
        case 'mailbox': {
          if (currentUser !== parsed.user) {
            throw order(name, offset, `a mailbox must come after its user's record "${userMemberName(parsed.user)}" and before the next user; the previous member is "${previous}"`);
          }
          if (currentMailbox !== null && compareBytes(parsed.mailbox, currentMailbox) <= 0) {
            throw order(name, offset, `mailbox "${parsed.mailbox}" comes after "${mailboxMemberName}": mailboxes must ascend in UTF-8 byte order`);
          }
          const data = await readData(size);
          const record = validateMailbox(decodeRecord(data, name, dataOffset), name, dataOffset);
          if (record.user !== parsed.user || record.name !== parsed.mailbox) {
            throw corrupt(name, offset, `the record is for mailbox "${record.name}" of user "${record.user}", the member name says "${parsed.mailbox}" of "${parsed.user}"`);
          }
          // Section 13: in an incremental, a selectable mailbox's record says whether it is carried
          // whole (reset) and which UIDs it holds (uidSet: the expunges are read from it).
          if (header!.kind === 'incremental' && record.selectable && (record.reset === undefined || record.uidSet === undefined)) {
            throw corrupt(name, offset, `the record of selectable mailbox "${record.name}" in an incremental dump lacks ${record.reset === undefined ? '"reset"' : '"uidSet"'}`);
          }
          currentMailbox = record.name;
          mailboxMemberName = name;
          lastUid = 0;
          lastFlagSeq = 0;
          lastFlagUid = 0;
          present = record.uidSet === undefined ? null : { uidNext: record.uidNext, messages: UidSetCursor.of(record.uidSet), flags: UidSetCursor.of(record.uidSet) };
          counts.mailboxes++;
          expect(plainTocEntry(nextId++, 'mailbox', span(sha256Hex(data)), { user: record.user, mailbox: record.name }) as unknown as Record<string, unknown>);
          previous = name;
          yield { type: 'mailbox', record, member: name, offset };
          break;
        }
        case 'flags': {
          if (header!.version < FORMAT_VERSION_INCREMENTAL) throw corrupt(name, offset, `flag tables exist only in format version ${FORMAT_VERSION_INCREMENTAL} (incrementals); this dump is version ${header!.version}`);
          if (header!.kind !== 'incremental') throw corrupt(name, offset, 'flag tables belong in incremental dumps only; this dump is a full one');
          if (currentUser !== parsed.user || currentMailbox !== parsed.mailbox || lastUid !== 0) {
            throw order(name, offset, `a flag table must follow its mailbox record "${mailboxMember(parsed.user, parsed.mailbox)}" and precede that mailbox's messages; the previous member is "${previous}"`);
          }
          const data = await readData(size);
          const record = validateFlagTable(decodeRecord(data, name, dataOffset), name, dataOffset);
          if (record.user !== parsed.user || record.mailbox !== parsed.mailbox || record.seq !== parsed.seq) {
            throw corrupt(name, offset, `the record is flag table ${record.seq} of mailbox "${record.mailbox}" of user "${record.user}", the member name says ${parsed.seq} of "${parsed.mailbox}" of "${parsed.user}"`);
          }
          // Section 13: a mailbox's tables are numbered 1, 2, ... and hold 1 to FLAG_TABLE_MAX_ENTRIES
          // entries each, UIDs ascending across all of them (a UID twice would get two flag sets).
          if (record.seq !== lastFlagSeq + 1) throw order(name, offset, `flag table ${record.seq} follows ${lastFlagSeq === 0 ? 'no table' : `table ${lastFlagSeq}`} of this mailbox: tables are numbered 1, 2, ...`);
          if (record.entries.length === 0 || record.entries.length > FLAG_TABLE_MAX_ENTRIES) throw corrupt(name, offset, `${record.entries.length} entries: a flag table holds 1 to ${FLAG_TABLE_MAX_ENTRIES}`);
          for (const e of record.entries) {
            if (e.uid <= lastFlagUid) throw order(name, offset, `UID ${e.uid} comes after UID ${lastFlagUid}: UIDs must ascend across the flag tables of a mailbox`);
            // A flag table gives the flags of messages present when the mailbox was read.
            if (present !== null && !present.flags.has(e.uid)) throw corrupt(name, offset, `UID ${e.uid} is not in the uidSet of its mailbox record "${mailboxMemberName}"`);
            lastFlagUid = e.uid;
          }
          lastFlagSeq = record.seq;
          expect(plainTocEntry(0, 'flags', span(sha256Hex(data)), { user: record.user, mailbox: record.mailbox }) as unknown as Record<string, unknown>);
          previous = name;
          yield { type: 'flags', record, member: name, offset };
          break;
        }
        case 'stub':
        case 'body': {
          if (parsed.kind === 'stub' && header!.version < FORMAT_VERSION_PARTS) {
            throw corrupt(name, offset, `a stub member needs format version ${FORMAT_VERSION_PARTS} or later; this dump is version ${header!.version}`);
          }
          if (currentUser !== parsed.user || currentMailbox !== parsed.mailbox) {
            throw order(name, offset, `a message must come after its mailbox record "${mailboxMember(parsed.user, parsed.mailbox)}"; the previous member is "${previous}"`);
          }
          if (parsed.uid <= lastUid) throw order(name, offset, `UID ${parsed.uid} comes after UID ${lastUid} (previous member "${previous}"): UIDs must ascend within a mailbox`);
          // Section 13 ("Mailbox uidSet"): a message in the dump was present when its mailbox was read, and
          // one at or above uidNext arrived after that (it belongs to the next run).
          if (present !== null && (parsed.uid >= present.uidNext || !present.messages.has(parsed.uid))) {
            throw corrupt(name, offset, `UID ${parsed.uid} is ${parsed.uid >= present.uidNext ? `not below the uidNext (${present.uidNext})` : 'not in the uidSet'} of its mailbox record "${mailboxMemberName}"`);
          }
          const ref = { user: parsed.user, mailbox: parsed.mailbox, uid: parsed.uid };
          const keep = options.wantBody === undefined ? true : options.wantBody(ref);
          // A stub is always kept: the message is rebuilt from it to check the full sha256.
          const spool = keep || parsed.kind === 'stub' ? new BodySpool() : null;
          // Version 4: the parser hashes content for the digest and hands the sha256 over at its end.
          const hash = parseState.contentMember ? null : new ContentHash();
          let sha256 = '';
          try {
            for (;;) {
              const d = await next();
              if (d.kind === 'memberEnd') {
                sha256 = hash?.hex() ?? d.sha256!;
                break;
              }
              if (d.kind === 'data') {
                hash?.update(d.chunk);
                if (spool !== null) await spool.write(d.chunk);
              }
            }
          } catch (err) {
            await spool?.dispose();
            throw err;
          }
          pending = { member: name, offset, dataOffset, ...ref, size, sha256, spool, stub: parsed.kind === 'stub', keep };
          previous = name;
          break;
        }
        case 'record': {
          const body = pending as PendingBody | null;
          if (body === null) throw order(name, offset, `a message record must come immediately after its body "${name.replace(/\.json$/, '.eml')}"; the previous member is "${previous}"`);
          pending = null;
          let record: MessageRecord;
          let data: Buffer;
          let spool = body.spool;
          try {
            data = await readData(size);
            record = validateMessage(decodeRecord(data, name, dataOffset), name, dataOffset, header!.version);
            if (record.user !== body.user || record.mailbox !== body.mailbox || record.uid !== body.uid) {
              throw corrupt(name, offset, `the record is for UID ${record.uid} of mailbox "${record.mailbox}" (user "${record.user}"), the member name says UID ${body.uid} of "${body.mailbox}" ("${body.user}")`);
            }
            if (body.stub) {
              spool = await rebuild(body, record, name, dataOffset);
            } else if ('parts' in record || 'stub' in record) {
              throw corrupt(name, offset, `the record has "parts" or "stub", but the message is stored whole in "${body.member}"`);
            } else if (record.size !== body.size || record.sha256 !== body.sha256) {
              throw new ArchiveCorruptError(
                `archive corrupt: message UID ${body.uid} of mailbox "${body.mailbox}" (user "${body.user}"), member "${body.member}" at offset ${body.offset}: ` +
                  `the body has ${body.size} bytes with sha256 ${body.sha256}, its record says ${record.size} bytes with sha256 ${record.sha256}: the body was damaged`,
                { member: body.member, offset: body.offset, user: body.user, mailbox: body.mailbox, uid: body.uid, hint: 'the dump was damaged: check it with "mailvault verify"' },
              );
            }
          } catch (err) {
            await body.spool?.dispose();
            if (spool !== body.spool) await spool?.dispose();
            throw err;
          }
          lastUid = body.uid;
          counts.messages++;
          counts.messageBytes += record.size;
          const id = nextId++;
          const bodySpan: MemberSpan = { member: body.member, offset: body.offset, dataOffset: body.dataOffset, size: body.size, sha256: body.sha256 };
          expect(messageTocEntry(id, bodySpan, span(sha256Hex(data)), record) as unknown as Record<string, unknown>);
          previous = name;
          disposeCurrent = spool;
          const message = record;
          yield {
            type: 'message',
            record,
            member: body.member,
            offset: body.offset,
            id,
            openBody: (): Readable => {
              if (spool === null) {
                throw new UsageError(`the body of message UID ${message.uid} of mailbox "${message.mailbox}" (user "${message.user}") was not kept: wantBody returned false for it`);
              }
              return spool.open();
            },
            bodyBytes: (): Buffer | null => {
              if (spool === null) {
                throw new UsageError(`the body of message UID ${message.uid} of mailbox "${message.mailbox}" (user "${message.user}") was not kept: wantBody returned false for it`);
              }
              return spool.bytes();
            },
          };
          break;
        }
        case 'blob': {
          const hash = parseState.contentMember ? null : new ContentHash();
          // Version 2: keep the blob for the messages after it. (Version 1 dumps hold no references.)
          const parts = header!.version >= FORMAT_VERSION_PARTS;
          if (parts && blobs.has(parsed.sha256)) throw corrupt(name, offset, 'this blob appeared before: a dump holds each blob once');
          const out: BlobWriter | null = parts ? await blobs.begin() : null;
          let sha256 = '';
          try {
            for (;;) {
              const d = await next();
              if (d.kind === 'memberEnd') {
                sha256 = hash?.hex() ?? d.sha256!;
                break;
              }
              if (d.kind === 'data') {
                hash?.update(d.chunk);
                await out?.write(d.chunk);
              }
            }
          } catch (err) {
            await out?.discard();
            throw err;
          }
          if (sha256 !== parsed.sha256) {
            await out?.discard();
            throw corrupt(name, offset, `the content hashes to ${sha256}, not to its name: the blob was damaged`);
          }
          await out?.commit(sha256);
          counts.blobs++;
          expect(plainTocEntry(0, 'blob', span(sha256)) as unknown as Record<string, unknown>);
          previous = name;
          break;
        }
        case 'toc': {
          const hash = createHash('sha256');
          const actual = createHash('sha256');
          let line: Buffer[] = [];
          let lineBytes = 0;
          let lineNo = 0;
          let lineStart = dataOffset;
          let position = dataOffset;
          const finishLine = (): void => {
            lineNo++;
            const text = Buffer.concat(line).toString('utf8');
            let value: unknown;
            try {
              value = JSON.parse(text);
            } catch {
              throw corrupt(name, lineStart, `line ${lineNo} is not valid JSON`);
            }
            if (value === null || typeof value !== 'object' || Array.isArray(value)) throw corrupt(name, lineStart, `line ${lineNo} is not a JSON object`);
            actual.update(`${tocProjection(value as Record<string, unknown>)}\n`);
            line = [];
            lineBytes = 0;
          };
          for (;;) {
            const d = await next();
            if (d.kind === 'memberEnd') break;
            if (d.kind !== 'data') continue;
            hash.update(d.chunk);
            let chunk = d.chunk;
            while (chunk.length > 0) {
              const nl = chunk.indexOf(0x0a);
              const piece = nl === -1 ? chunk : chunk.subarray(0, nl);
              lineBytes += piece.length;
              if (lineBytes > MAX_RECORD_BYTES) throw corrupt(name, lineStart, `line ${lineNo + 1} is longer than ${MAX_RECORD_BYTES} bytes`);
              line.push(piece);
              position += piece.length;
              if (nl === -1) break;
              finishLine();
              position += 1;
              lineStart = position;
              chunk = chunk.subarray(nl + 1);
            }
          }
          if (lineBytes > 0 || line.length > 0) throw corrupt(name, lineStart, 'the last line does not end with a newline');
          if (lineNo !== expectedTocLines || actual.digest('hex') !== expectedToc.digest('hex')) {
            throw corrupt(name, offset, `the table of contents (${lineNo} lines) does not describe the ${expectedTocLines} members read before it`);
          }
          tocInfo = { offset, dataOffset, size, sha256: hash.digest('hex') };
          tocDone = true;
          previous = name;
          break;
        }
        case 'trailer': {
          if (!tocDone) throw order(name, offset, `the trailer must come right after "mailvault/toc.jsonl"; the previous member is "${previous}"`);
          const before = ev.digestBefore(); // before the member's data is pulled
          const data = await readData(size);
          const record = validateTrailer(decodeRecord(data, name, dataOffset), name, dataOffset);
          const digest = before.digest('hex');
          const h = header!;
          const problems: string[] = [];
          if (record.version !== h.version) problems.push(`version ${record.version} differs from the header's ${h.version}`);
          if (record.runId !== h.runId) problems.push(`runId ${record.runId} differs from the header's ${h.runId}`);
          for (const key of ['users', 'mailboxes', 'messages', 'blobs', 'messageBytes'] as const) {
            if (record.counts[key] !== counts[key]) problems.push(`counts.${key} is ${record.counts[key]}, read ${counts[key]}`);
          }
          const t = tocInfo!;
          if (record.toc.offset !== t.offset || record.toc.dataOffset !== t.dataOffset || record.toc.size !== t.size || record.toc.sha256 !== t.sha256) {
            problems.push('its toc location or hash does not match the TOC member read');
          }
          if (record.digest.value !== digest) problems.push(`digest ${record.digest.value} does not match the ${offset} bytes read before it (${record.digest.algorithm}: ${digest})`);
          if (problems.length > 0) throw corrupt(name, offset, problems.join('; '));
          trailer = record;
          previous = name;
          yield { type: 'trailer', record, member: name, offset };
          break;
        }
      }
    }
  } finally {
    await blobs.dispose();
    await disposeCurrent?.dispose();
    await pending?.spool?.dispose();
    await events.return(undefined).catch(() => undefined);
    if (!input.destroyed && trailer === null) input.destroy();
  }
}
