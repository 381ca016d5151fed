/**
 * restore from a dump FILE by random access, for narrow selections (UIDs, Message-IDs, From/Subject/date
 * filters, --use-list ids): read the trailer and the TOC (openDumpFile), pick the matching messages from
 * the TOC alone, and read only their members (and the mailbox records they need), never the rest of the
 * file. With an internally zstd-compressed dump only the frames covering those members are
 * decompressed. Writing, idempotency and subscriptions are restore.ts's RestoreSession, so a restore
 * gives the same result whichever way the dump was read.
 *
 * A file that cannot be read at random (zstd without a seek table, no trailer: a cut dump) gives null,
 * and the caller reads it in one pass (restore()), which also reports what is wrong with it.
 */
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isZstdMagic, SeekableZstdFile } from '../archive/compression/index.js';
import { openDumpFile, type DumpFile } from '../archive/random-access.js';
import { decodeRecord } from '../archive/record-codec.js';
import { validateMailbox, validateUser } from '../archive/record-validate.js';
import type { MailboxRecord, TocMailboxEntry, TocUserEntry, UserRecord } from '../archive/records.js';
import { ArchiveCorruptError, ArchiveOrderError, fromSystemError, InterruptedError, isMailvaultError } from '../core/errors.js';
import { emptySummary, failedRestore, isNarrowSelection, RestoreSession, type RestoreOptions, type RestoreSummary, type SinkOpener } from './restore.js';
import { mailboxMatcher, messageMatches, userMatcher } from './selection.js';

/** Records larger than this are not user or mailbox records (they hold a few names and numbers). */
const MAX_TOC_RECORD_BYTES = 16 * 1024 * 1024;

/** Reads the data of one member at its TOC offsets (uncompressed stream offsets), plain or seekable zstd. */
interface MemberReader {
  read(dataOffset: number, size: number): Promise<Buffer>;
  close(): Promise<void>;
}

async function openMemberReader(path: string): Promise<MemberReader> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw fromSystemError(err, 'open the dump', { path });
  }
  const magic = Buffer.alloc(4);
  const { bytesRead } = await handle.read(magic, 0, 4, 0);
  if (bytesRead === 4 && isZstdMagic(magic)) {
    await handle.close();
    const file = await SeekableZstdFile.open(path);
    if (!file) throw new ArchiveCorruptError(`dump ${path} lost its zstd seek table while being read`, { path });
    return {
      async read(dataOffset, size) {
        const parts: Buffer[] = [];
        for await (const c of file.createReadStream(dataOffset, dataOffset + size)) parts.push(c as Buffer);
        return Buffer.concat(parts);
      },
      close: () => file.close(),
    };
  }
  return {
    async read(dataOffset, size) {
      const buffer = Buffer.alloc(size);
      let done = 0;
      while (done < size) {
        const r = await handle.read(buffer, done, size - done, dataOffset + done);
        if (r.bytesRead === 0) break;
        done += r.bytesRead;
      }
      return buffer.subarray(0, done);
    },
    close: () => handle.close(),
  };
}

/**
 * The record a user or mailbox TOC entry points at, checked against the TOC's sha256 and its own check
 * field. (A small reader on top of the TOC's public offsets: random-access.ts reads message records only.)
 */
async function readTocRecord(reader: MemberReader, entry: TocMailboxEntry): Promise<MailboxRecord>;
async function readTocRecord(reader: MemberReader, entry: TocUserEntry): Promise<UserRecord>;
async function readTocRecord(reader: MemberReader, entry: TocMailboxEntry | TocUserEntry): Promise<MailboxRecord | UserRecord> {
  const where = { member: entry.member, offset: entry.dataOffset, hint: 'check the dump with "mailvault verify"' };
  if (entry.size > MAX_TOC_RECORD_BYTES) throw new ArchiveCorruptError(`archive corrupt: record "${entry.member}" at offset ${entry.dataOffset}: the TOC says ${entry.size} bytes, over the ${MAX_TOC_RECORD_BYTES}-byte limit`, where);
  const data = await reader.read(entry.dataOffset, entry.size);
  const sha256 = createHash('sha256').update(data).digest('hex');
  if (data.length !== entry.size || sha256 !== entry.sha256) {
    throw new ArchiveCorruptError(`archive corrupt: record "${entry.member}" at offset ${entry.dataOffset}: ${data.length} bytes with sha256 ${sha256}, the TOC says ${entry.size} bytes with ${entry.sha256}`, where);
  }
  const raw = decodeRecord(data, entry.member, entry.dataOffset);
  return entry.type === 'mailbox' ? validateMailbox(raw, entry.member, entry.dataOffset) : validateUser(raw, entry.member, entry.dataOffset);
}

/** A stream whose source is opened only when needed (a second read of a message for the sink). */
function deferredStream(openSource: () => Promise<Readable>): Readable {
  const out = new PassThrough();
  openSource()
    .then((source) => pipeline(source, out))
    .catch((err: unknown) => out.destroy(err instanceof Error ? err : new Error(String(err))));
  return out;
}

export interface RestoreFromFileOptions extends RestoreOptions {
  /** Called when the file cannot be read at random and the caller should read it in one pass. */
  readonly onFallback?: (reason: string) => void;
}

/** Whether restoreFromFile is worth trying for this selection (it reads only selected messages). */
export function canRestoreAtRandom(path: string, options: RestoreOptions): boolean {
  return path !== '-' && isNarrowSelection(options.selection);
}

/**
 * Restores the selected messages of the dump file `path` by random access. Returns null (after
 * onFallback) when the file cannot be read that way; throws like restore() otherwise, with the summary
 * attached (restoreSummaryOf).
 */
export async function restoreFromFile(path: string, openSink: SinkOpener, options: RestoreFromFileOptions): Promise<RestoreSummary | null> {
  const started = Date.now();
  let file: DumpFile;
  try {
    file = await openDumpFile(path);
  } catch (err) {
    if (isMailvaultError(err) && (err.code === 'INPUT_NOT_FOUND' || err.code === 'PERMISSION_DENIED')) throw err;
    options.onFallback?.(`${path} cannot be read at random (${err instanceof Error ? err.message : String(err)}); reading it in one pass`);
    return null;
  }
  const sel = options.selection;
  const wantUser = userMatcher(sel.users);
  const wantMailbox = mailboxMatcher(sel.mailboxes);
  const summary: RestoreSummary = { ...emptySummary(), access: 'random-access', dumpComplete: true };
  const session = new RestoreSession(openSink, options, summary);
  let members: MemberReader | null = null;
  const records = async (): Promise<MemberReader> => (members ??= await openMemberReader(path));

  let user: TocUserEntry | null = null;
  let userSelected = false;
  let mailbox: TocMailboxEntry | null = null;
  /** Source names of the restored mailboxes that were subscribed. */
  let subscribed: string[] = [];
  const seenIds = new Set<number>();

  const finishUser = async (): Promise<void> => {
    await session.finishMailbox();
    if (user && userSelected) {
      const subs = sel.ids?.has(user.id) ? (await readTocRecord(await records(), user)).subscriptions : subscribed;
      await session.finishUser(user.user, subs);
    } else {
      await session.finishUser(null, []);
    }
    user = null;
    subscribed = [];
  };

  const openMailbox = async (entry: TocMailboxEntry): Promise<MailboxRecord> => {
    const rec = await readTocRecord(await records(), entry);
    if (rec.user !== entry.user || rec.name !== entry.mailbox) {
      throw new ArchiveCorruptError(`archive corrupt: the TOC entry for mailbox "${entry.mailbox}" (user "${entry.user}") points at the record of "${rec.name}" (user "${rec.user}")`, { path, member: entry.member, offset: entry.dataOffset });
    }
    if (rec.selectable) {
      await session.openMailbox(rec);
      if (rec.subscribed) subscribed.push(rec.name);
    }
    return rec;
  };

  try {
    for await (const entry of file.entries()) {
      if (options.signal?.aborted) throw new InterruptedError('restore interrupted; what was committed stays, run the same restore again to finish', {});
      switch (entry.type) {
        case 'user':
          await finishUser();
          seenIds.add(entry.id);
          user = entry;
          userSelected = wantUser(entry.user);
          if (userSelected) summary.users++;
          break;
        case 'mailbox':
          await session.finishMailbox();
          seenIds.add(entry.id);
          mailbox = entry;
          if (userSelected && wantMailbox(entry.mailbox) && sel.ids?.has(entry.id)) await openMailbox(entry);
          break;
        case 'message': {
          seenIds.add(entry.id);
          if (!userSelected || !wantMailbox(entry.mailbox)) break;
          if (sel.ids && !sel.ids.has(entry.id)) break;
          const facts = { uid: entry.uid, internalDate: Math.floor(Date.parse(entry.internalDate) / 1000), messageId: entry.summary.messageId, from: entry.summary.from, subject: entry.summary.subject };
          if (!messageMatches(sel, facts)) break;
          if (!mailbox || mailbox.user !== entry.user || mailbox.mailbox !== entry.mailbox) {
            throw new ArchiveOrderError(`archive corrupt: the TOC lists message UID ${entry.uid} of mailbox "${entry.mailbox}" (user "${entry.user}") before that mailbox`, { path, member: entry.member, offset: entry.offset, user: entry.user, mailbox: entry.mailbox, uid: entry.uid });
          }
          if (!session.hasOpenMailbox) {
            const rec = await openMailbox(mailbox);
            if (!rec.selectable) break;
          }
          const { record, body } = await file.readMessageEntry(entry);
          let first: Readable | null = body;
          try {
            await session.message(record, () => {
              if (first) {
                const b = first;
                first = null;
                return b;
              }
              return deferredStream(async () => (await file.readMessageEntry(entry)).body);
            });
          } finally {
            (first as Readable | null)?.destroy();
          }
          break;
        }
        default:
          break;
      }
    }
    await finishUser();
    if (sel.ids) summary.unknownIds = [...sel.ids].filter((id) => !seenIds.has(id)).sort((a, b) => a - b);
  } catch (e) {
    await session.salvage();
    throw failedRestore(e, summary, started);
  } finally {
    await session.close();
    await (members as MemberReader | null)?.close().catch(() => undefined);
    await file.close().catch(() => undefined);
  }
  summary.seconds = (Date.now() - started) / 1000;
  return summary;
}
