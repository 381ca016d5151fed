/**
 * Dovecot index reader: loads `dovecot.index` when present and replays `dovecot.index.log` (and
 * `.log.2` when the snapshot points into it) to get the current state of a mailbox index or of the
 * mdbox map index. Read-only: never takes Dovecot's locks and never writes.
 *
 * Shared by the dbox drivers and (for >26 keywords and modseq) the Maildir driver.
 */
import { open, readFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { StorageCorruptError, fromSystemError } from '../../core/errors.js';
import { parseIndexFile } from './index-file.js';
import { IndexState } from './index-state.js';
import { applyRecord, countModseq } from './log-replay.js';
import { LOG_RESYNC_HINT, logCorrupt, parseLogHeader, readLogRecords, type LogHeader } from './transaction-log.js';


export interface IndexedMessage {
  readonly uid: number;
  /** The flags byte: 0x01 \Answered, 0x02 \Flagged, 0x04 \Deleted, 0x08 \Seen, 0x10 \Draft, 0x40 backend (dbox: alt), 0x80 dirty. */
  readonly flags: number;
  /** Keyword names, in keyword-number order. */
  readonly keywords: readonly string[];
  /** Decimal string. */
  readonly modseq: string;
  /** Extension records by extension name (keywords and modseq are decoded above instead). */
  readonly ext: ReadonlyMap<string, Buffer>;
}

export interface IndexSnapshot {
  readonly uidValidity: number;
  /** max(header next_uid, last UID + 1). */
  readonly nextUid: number;
  /** Decimal string. */
  readonly highestModseq: string;
  /** Ascending UID order. */
  readonly messages: readonly IndexedMessage[];
  /** Extension headers by name. */
  readonly extHeaders: ReadonlyMap<string, Buffer>;
  /** The files that were read, for messages. */
  readonly files: readonly string[];
}

export interface ReadIndexOptions {
  /** File name prefix: "dovecot.index" (mailbox) or "dovecot.map.index" (mdbox map). */
  readonly prefix?: string;
}

async function readOptional(file: string): Promise<Buffer | null> {
  try {
    return await readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fromSystemError(e, 'read the Dovecot index', { path: file });
  }
}

interface OpenLog {
  readonly file: string;
  readonly fh: FileHandle;
  readonly hdr: LogHeader;
  readonly size: number;
}

async function openLog(file: string): Promise<OpenLog | null> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fromSystemError(e, 'open the Dovecot transaction log', { path: file });
  }
  try {
    const { size } = await fh.stat();
    const head = Buffer.alloc(Math.min(size, 256));
    await fh.read(head, 0, head.length, 0);
    return { file, fh, hdr: parseLogHeader(head, file), size };
  } catch (e) {
    await fh.close();
    throw e instanceof StorageCorruptError ? e : fromSystemError(e, 'read the Dovecot transaction log', { path: file });
  }
}

/**
 * Replay `log` into `state`: modseqs are counted from the file start, records are applied from `from`
 * up to `until` (exclusive).
 */
async function replay(state: IndexState, log: OpenLog, from: number, until: number): Promise<void> {
  if (log.hdr.initialModseq !== 0n) state.modseqCounter = log.hdr.initialModseq;
  if (from < log.hdr.hdrSize || from > log.size) throw logCorrupt(log.file, from, `the index points to offset ${from}, outside the log (${log.hdr.hdrSize}..${log.size})`);
  const end = Math.min(until, log.size);
  for await (const rec of readLogRecords(log.fh, log.file, log.hdr.hdrSize, end)) {
    countModseq(state, rec);
    if (rec.offset >= from) applyRecord(state, rec, log.file);
  }
}

/** Read the index in `dir`. Returns null when neither the index nor its log exists. */
export async function readDovecotIndex(dir: string, options: ReadIndexOptions = {}): Promise<IndexSnapshot | null> {
  const prefix = options.prefix ?? 'dovecot.index';
  const indexFile = path.join(dir, prefix);
  const logFile = path.join(dir, `${prefix}.log`);
  const log2File = path.join(dir, `${prefix}.log.2`);
  const indexBuf = await readOptional(indexFile);
  const log = await openLog(logFile);
  let log2: OpenLog | null = null;
  const files: string[] = [];
  try {
    if (!indexBuf && !log) return null;
    let state: IndexState;
    if (indexBuf) {
      const info = parseIndexFile(indexBuf, indexFile);
      state = info.state;
      files.push(indexFile);
      // A log with prev_file_seq 0 was started by an index reset (force-resync, an mdbox map rebuild:
      // mail_transaction_log_rotate(log, TRUE)). Dovecot replays it onto an empty index, not onto the
      // snapshot, unless the snapshot already points past its start
      // (mail-transaction-log-view.c:mail_transaction_log_view_set sets reset_r, then
      // mail-index-sync-update.c:mail_index_sync_map "Reset the entire index").
      const resets = (l: OpenLog): boolean => l.hdr.prevFileSeq === 0 && (l.hdr.fileSeq !== info.logFileSeq || info.logFileHeadOffset === l.hdr.hdrSize);
      const restart = (): IndexState => {
        files.length = 0;
        return new IndexState();
      };
      if (log) {
        if (log.hdr.indexId !== info.indexId) throw mismatch(indexFile, logFile);
        if (log.hdr.fileSeq === info.logFileSeq) {
          if (resets(log)) state = restart();
          await replay(state, log, resets(log) ? log.hdr.hdrSize : info.logFileHeadOffset, log.size);
          files.push(logFile);
        } else if (log.hdr.fileSeq > info.logFileSeq && resets(log)) {
          // Everything before the reset is discarded; Dovecot does not even need the files in between.
          state = restart();
          await replay(state, log, log.hdr.hdrSize, log.size);
          files.push(logFile);
        } else if (log.hdr.fileSeq > info.logFileSeq) {
          log2 = await openLog(log2File);
          const log2End = log2 && log.hdr.prevFileSeq === log2.hdr.fileSeq && log.hdr.prevFileOffset > 0 ? log.hdr.prevFileOffset : (log2?.size ?? 0);
          if (log2 && log2.hdr.fileSeq === log.hdr.prevFileSeq && log2.hdr.indexId === info.indexId && resets(log2)) {
            state = restart();
            await replay(state, log2, log2.hdr.hdrSize, log2End);
          } else {
            if (!log2 || log2.hdr.fileSeq !== info.logFileSeq) {
              throw new StorageCorruptError(`Dovecot index ${indexFile} is synced to log sequence ${info.logFileSeq}, but ${logFile} starts at ${log.hdr.fileSeq} and ${log2File} ${log2 ? `has sequence ${log2.hdr.fileSeq}` : 'is missing'}`, {
                path: indexFile,
                hint: LOG_RESYNC_HINT,
              });
            }
            if (log2.hdr.indexId !== info.indexId) throw mismatch(indexFile, log2File);
            await replay(state, log2, info.logFileHeadOffset, log2End);
          }
          await replay(state, log, log.hdr.hdrSize, log.size);
          files.push(log2File, logFile);
        }
        // A log older than the snapshot has nothing new: the snapshot is current.
      }
    } else {
      state = new IndexState();
      const cur = log!;
      if (cur.hdr.prevFileSeq !== 0) {
        log2 = await openLog(log2File);
        if (!log2 || log2.hdr.fileSeq !== cur.hdr.prevFileSeq || log2.hdr.prevFileSeq !== 0) {
          throw new StorageCorruptError(`Dovecot index ${indexFile} is missing and ${logFile} does not hold the whole history (it continues log sequence ${cur.hdr.prevFileSeq})`, {
            path: logFile,
            hint: 'the mailbox state (flags, keywords, UIDVALIDITY) cannot be rebuilt from these files; run "doveadm force-resync -u <user> <mailbox>" in Dovecot, then back up again',
          });
        }
        if (log2.hdr.indexId !== cur.hdr.indexId) throw mismatch(log2File, logFile);
        await replay(state, log2, log2.hdr.hdrSize, cur.hdr.prevFileOffset > 0 ? cur.hdr.prevFileOffset : log2.size);
        files.push(log2File);
      }
      await replay(state, cur, cur.hdr.hdrSize, cur.size);
      files.push(logFile);
    }
    return snapshot(state, files);
  } finally {
    await log?.fh.close();
    await log2?.fh.close();
  }
}

function mismatch(a: string, b: string): StorageCorruptError {
  return new StorageCorruptError(`Dovecot index files do not belong together: ${a} and ${b} have different index ids`, { path: b, hint: LOG_RESYNC_HINT });
}

const NO_KEYWORDS: readonly string[] = Object.freeze([]);
const NO_EXT: ReadonlyMap<string, Buffer> = new Map();

function snapshot(state: IndexState, files: string[]): IndexSnapshot {
  state.compact();
  const highest = state.modseqCounter;
  const highestText = highest.toString();
  const messages: IndexedMessage[] = state.messages.map((m) => ({
    uid: m.uid,
    flags: m.flags,
    keywords: m.keywords === null || m.keywords.size === 0 ? NO_KEYWORDS : [...m.keywords].sort((a, b) => a - b).flatMap((k) => (state.keywords[k] === undefined ? [] : [state.keywords[k]!])),
    modseq: state.modseqEnabled && m.modseq !== 0n ? m.modseq.toString() : highestText,
    ext: m.ext ?? NO_EXT,
  }));
  const last = messages.length > 0 ? messages[messages.length - 1]!.uid : 0;
  return {
    uidValidity: state.uidValidity,
    nextUid: Math.max(state.nextUid, last + 1),
    highestModseq: highest.toString(),
    messages,
    extHeaders: new Map(state.exts.map((e) => [e.name, e.header])),
    files,
  };
}
