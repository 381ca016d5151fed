/**
 * Saving messages into one Maildir mailbox (maildir-save.c), safe while Dovecot runs (section 1.11):
 *
 * save():   write the body into tmp/<base> (O_EXCL; small bodies synchronously, large ones streamed),
 *           count bytes (a size mismatch deletes the file and throws IntegrityError), set mtime =
 *           INTERNALDATE, hand the still open file to the transaction's FsyncQueue (fsynced at commit,
 *           many in parallel; early only when over 512 files wait). No lock is held.
 * commit(): wait until every tmp file is fsynced, then take dovecot-uidlist.lock, re-read the uidlist, give new keywords letters (dovecot-keywords
 *           rewritten by lock-and-rename), assign UIDs (the requested UID when it is >= the next UID,
 *           else the next free one), rename tmp/<base> -> cur/<base>,S=<S>,W=<W>:2,<flags> (new/ when
 *           there are no flags), fsync cur/ and new/, append "<uid> [G<guid>] :<base>,S=..,W=.." records, fsync, unlink the lock.
 *           The uidlist header is left alone (its N may go stale, as with Dovecot's own appends), unless
 *           the file is new or version 1, which is then written whole (tmp + rename).
 * rollback(): delete the tmp files.
 *
 * A crash before commit leaves only tmp/ files, which Dovecot deletes after 36 h. If commit fails half
 * way, the files already renamed are moved back to tmp/ and deleted.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IntegrityError, UnexpectedError, UsageError, fromSystemError, isMailvaultError } from '../../core/errors.js';
import { SYSTEM_FLAGS, type CommitResult, type MailboxInfo, type SaveBody, type SaveMetadata, type SavedMessage, type SaveTransaction, type SystemFlag } from '../types.js';
import { keywordKey } from '../flags.js';
import { formatInfo, generateBase } from './filename.js';
import { FsyncQueue } from './fsync-queue.js';
import { readIndexHeader, readIndexHeaderReplayed } from './index-header.js';
import { KeywordMap, isStorableKeyword, readKeywords } from './keywords.js';
import { acquireDotlock } from './lock.js';
import type { MailboxPaths } from './mailbox-names.js';
import { createFile, makeDirs, type CreatePermissions } from './permissions.js';
import { KEYWORDS_FILE, UIDLIST_FILE } from './reader.js';
import { readUidlist, readUidlistForCommit, type UidlistRecord } from './uidlist.js';
import { firstFreeUid, uidValidityFor, writeUidlistRecords } from './uidlist-write.js';

export interface SaveContext {
  readonly user: string;
  readonly hostname: string;
  readonly lockTimeoutMs: number;
  readonly perms: CreatePermissions;
  /** `<root control dir>/dovecot-uidvalidity`, for a uidlist that does not exist yet. */
  readonly uidValidityPath: string;
}

interface PendingMessage {
  readonly tmpPath: string;
  /** Base with ",S=..,W=..", as the uidlist records it. */
  readonly base: string;
  readonly meta: SaveMetadata;
  readonly guid: string;
  readonly flags: SystemFlag[];
  readonly keywords: string[];
  readonly ext: Record<string, string>;
}

/** Bare LFs (not after a CR) in `chunk`; `lastWasCR`: the byte before the chunk was a CR. */
function bareLineFeeds(chunk: Uint8Array, lastWasCR: boolean): number {
  let lfs = 0;
  let i = chunk.indexOf(0x0a);
  while (i >= 0) {
    const prevCR = i === 0 ? lastWasCR : chunk[i - 1] === 0x0d;
    if (!prevCR) lfs++;
    i = chunk.indexOf(0x0a, i + 1);
  }
  return lfs;
}

/** Counts bytes and the CRLF-counted ("virtual") size; fails as soon as the body exceeds `expected`. */
class BodyCounter extends Transform {
  bytes = 0;
  virtual = 0;
  private lastWasCR = false;
  constructor(private readonly expected: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.expected) return cb(new SizeMismatch(`more than ${this.expected}`));
    const lfs = bareLineFeeds(chunk, this.lastWasCR);
    if (chunk.length > 0) this.lastWasCR = chunk[chunk.length - 1] === 0x0d;
    this.virtual += chunk.length + lfs;
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (this.bytes !== this.expected) return cb(new SizeMismatch(String(this.bytes)));
    cb();
  }
}

/** Writes into an open handle we keep (sync and close are ours), with normal backpressure. */
function fileSink(handle: fs.promises.FileHandle): Writable {
  return new Writable({
    highWaterMark: 256 * 1024,
    write(chunk: Buffer, _enc, cb) {
      handle.write(chunk).then(() => cb(), cb);
    },
  });
}

/** Bodies up to this size are collected in memory and written with synchronous calls. */
const SMALL_BODY_BYTES = 1024 * 1024;
/**
 * fsyncs in flight. Each waits ~1 ms for the journal; many in flight let the file system commit them
 * together (measured: 1000 files of 38 KB, 4 in flight 2.7-4.2 s, 64 in flight 0.42 s). bin/run.js's
 * launcher line raises libuv's thread pool (UV_THREADPOOL_SIZE) to match for `restore`; with the
 * default 4 threads the rest queue up there. A program using this module sets it in the environment
 * Node starts with (libuv reads it once, when the pool starts).
 */
const FSYNC_CONCURRENCY = 64;
/**
 * Files a transaction holds open until commit fsyncs them: above this, fsyncs start early (restore's
 * default batch is 500 messages). With two transactions in flight (restore commits one while it
 * writes the next) a restore holds about 1200 descriptors at most; Node raises the soft
 * RLIMIT_NOFILE to the hard limit at start-up (4096 and more on common systems).
 */
const MAX_OPEN_FILES = 512;

/**
 * Whether a file needs a chmod after its open: 'always'; 'never' (the open gives the mode); 'check'
 * (fstat it, chmod if the mode differs, and report which it was). The open's mode is masked by the
 * umask, or by a default ACL on the directory instead (acl(5)), which is not read here: a
 * transaction checks its first file and goes on accordingly.
 */
export type ChmodPolicy = 'always' | 'never' | 'check';

/**
 * Create (O_EXCL), chmod/chown, write and date a small file synchronously. Returns the descriptor,
 * still open (for its fsync), and whether the file needed its chmod; on failure nothing is left open,
 * and the file is removed if this call created it (a file that was there already, EEXIST, is another
 * writer's: it is not touched).
 */
export function writeSmallFile(file: string, data: Uint8Array, internalDate: number, perms: CreatePermissions, chmod: ChmodPolicy): { fd: number; chmodNeeded: boolean } {
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, perms.fileMode);
  try {
    // ~7 us a file on the machine measured; skipped where the open is known to give the mode already.
    const chmodNeeded = chmod === 'always' || (chmod === 'check' && (fs.fstatSync(fd).mode & 0o7777) !== perms.fileMode);
    if (chmodNeeded) fs.fchmodSync(fd, perms.fileMode);
    if (perms.owner) fs.fchownSync(fd, perms.owner.uid, perms.owner.gid);
    let off = 0;
    while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
    // Node takes a negative number of seconds for "now"; a Date before 1970 it sets as it is.
    const when = internalDate < 0 ? new Date(internalDate * 1000) : internalDate;
    fs.futimesSync(fd, when, when);
    return { fd, chmodNeeded };
  } catch (e) {
    try {
      fs.closeSync(fd);
    } catch {
      /* the first error is the one to report */
    }
    try {
      fs.unlinkSync(file);
    } catch {
      /* gone already */
    }
    throw e;
  }
}

class SizeMismatch extends Error {
  constructor(readonly actual: string) {
    super(`size mismatch: ${actual}`);
  }
}

function extensionsFromExtra(extra: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const ext: Record<string, string> = {};
  for (const [k, v] of Object.entries(extra ?? {})) {
    const m = /^(?:maildir\.([A-Z])|dbox\.([PO]))$/.exec(k);
    const key = m ? (m[1] ?? m[2])! : null;
    if (key === null || key === 'G' || key === 'S' || key === 'W') continue;
    if (v === '' || /\s/.test(v)) continue;
    ext[key] = v;
  }
  return ext;
}

export class MaildirSaveTransaction implements SaveTransaction {
  private readonly pending: PendingMessage[] = [];
  private readonly fsyncs = new FsyncQueue(FSYNC_CONCURRENCY, MAX_OPEN_FILES);
  private state: 'open' | 'busy' | 'done' = 'open';
  private tmpDirReady = false;
  /** See ChmodPolicy: where the umask leaves the file mode whole, the first file tells. */
  private chmod: ChmodPolicy;

  constructor(
    readonly mailbox: MailboxInfo,
    private readonly paths: MailboxPaths,
    private readonly ctx: SaveContext,
  ) {
    this.chmod = ctx.perms.fileModeOnCreate === true ? 'check' : 'always';
  }

  private errorContext(uid?: number): { user: string; mailbox: string; uid?: number } {
    return { user: this.ctx.user, mailbox: this.paths.name, ...(uid === undefined ? {} : { uid }) };
  }

  private assertOpen(what: string): void {
    if (this.state === 'done') throw new UnexpectedError(`cannot ${what}: the save transaction on "${this.paths.name}" was already committed or rolled back`);
    if (this.state === 'busy') throw new UnexpectedError(`cannot ${what}: the save transaction on "${this.paths.name}" is busy with another call`);
  }

  private checkKeywords(meta: SaveMetadata, uid: number | undefined): string[] {
    const seen = new Map<string, string>();
    for (const k of meta.keywords) {
      if (!isStorableKeyword(k)) {
        throw new UsageError(`keyword ${JSON.stringify(k)} of a message for "${this.paths.name}" cannot be stored in Maildir`, {
          ...this.errorContext(uid),
          hint: 'keywords must be IMAP atoms without spaces or control characters',
        });
      }
      if (!seen.has(keywordKey(k))) seen.set(keywordKey(k), k);
    }
    return [...seen.values()];
  }

  async save(meta: SaveMetadata, body: SaveBody): Promise<SavedMessage> {
    this.assertOpen('save a message');
    if (!Number.isSafeInteger(meta.size) || meta.size < 0) throw new UsageError(`message size ${meta.size} is not a byte count`, this.errorContext(meta.uid));
    // Checked before any file exists (a base never contains white space, so such a GUID is never the base).
    if (meta.guid && /\s/.test(meta.guid)) throw new UsageError(`message GUID ${JSON.stringify(meta.guid)} contains white space`, this.errorContext(meta.uid));
    const flags = SYSTEM_FLAGS.filter((f) => meta.flags.includes(f));
    const keywords = this.checkKeywords(meta, meta.uid);
    this.state = 'busy';
    try {
      const tmpDir = path.join(this.paths.mailDir, 'tmp');
      if (!this.tmpDirReady) {
        await makeDirs(tmpDir, this.ctx.perms);
        this.tmpDirReady = true;
      }
      try {
        await this.fsyncs.room();
      } catch (e) {
        throw fromSystemError(e, 'fsync the messages saved before', { path: tmpDir, ...this.errorContext(meta.uid) });
      }
      const rawBase = generateBase(this.ctx.hostname);
      const tmpPath = path.join(tmpDir, rawBase);
      const sizeError = (actual: string): IntegrityError =>
        new IntegrityError(`message for mailbox "${this.paths.name}"${meta.uid ? ` (UID ${meta.uid})` : ''}: expected ${meta.size} bytes, the body had ${actual}; nothing was saved`, {
          ...this.errorContext(meta.uid),
          hint: 'the source delivered a different size than it announced; check the dump with "mailvault verify"',
        });
      // The file is not fsynced here: the FsyncQueue holds it open, and commit() fsyncs all of them (many
      // in parallel) before any file becomes visible, which keeps Dovecot's guarantee at a fraction of the cost.
      let virtual: number;
      if (meta.size <= SMALL_BODY_BYTES) {
        // Small bodies (most mail): the whole body in memory (given as bytes, or collected from the
        // stream), then the file is created, written and dated synchronously; an async round trip
        // through the thread pool costs ~150 us per call here.
        let data: Uint8Array;
        if (body instanceof Uint8Array) {
          if (body.length !== meta.size) throw sizeError(String(body.length));
          data = body;
          virtual = body.length + bareLineFeeds(body, false);
        } else {
          const counter = new BodyCounter(meta.size);
          const chunks: Buffer[] = [];
          try {
            for await (const chunk of body.pipe(counter)) chunks.push(chunk as Buffer);
          } catch (e) {
            if (e instanceof SizeMismatch) throw sizeError(e.actual);
            throw e;
          }
          data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
          virtual = counter.virtual;
        }
        let fd: number;
        try {
          const written = writeSmallFile(tmpPath, data, meta.internalDate, this.ctx.perms, this.chmod);
          fd = written.fd;
          if (this.chmod === 'check') this.chmod = written.chmodNeeded ? 'always' : 'never';
        } catch (e) {
          throw fromSystemError(e, 'write the message file', { path: tmpPath, ...this.errorContext(meta.uid) });
        }
        this.fsyncs.addDescriptor(fd);
      } else {
        let handle: fs.promises.FileHandle;
        try {
          handle = await createFile(tmpPath, this.ctx.perms);
        } catch (e) {
          throw fromSystemError(e, 'create the message file', { path: tmpPath, ...this.errorContext(meta.uid) });
        }
        const counter = new BodyCounter(meta.size);
        try {
          await pipeline(body instanceof Uint8Array ? Readable.from([body], { objectMode: false }) : body, counter, fileSink(handle));
          await handle.close();
          const when = new Date(meta.internalDate * 1000);
          await fs.promises.utimes(tmpPath, when, when);
        } catch (e) {
          await handle.close().catch(() => undefined);
          await fs.promises.unlink(tmpPath).catch(() => undefined);
          if (e instanceof SizeMismatch) throw sizeError(e.actual);
          if (isMailvaultError(e)) throw e;
          throw fromSystemError(e, 'write the message file', { path: tmpPath, ...this.errorContext(meta.uid) });
        }
        virtual = counter.virtual;
        this.fsyncs.addPath(tmpPath);
      }
      const base = `${rawBase},S=${meta.size},W=${virtual}`;
      const guid = meta.guid ? meta.guid : base;
      const ext: Record<string, string> = {};
      if (meta.guid && meta.guid !== base) ext['G'] = meta.guid;
      Object.assign(ext, extensionsFromExtra(meta.extra));
      this.pending.push({ tmpPath, base, meta, guid, flags, keywords, ext });
      return { uid: null, guid };
    } finally {
      this.state = 'open';
    }
  }

  async commit(): Promise<CommitResult> {
    this.assertOpen('commit');
    this.state = 'done';
    const uidlistPath = path.join(this.paths.controlDir, UIDLIST_FILE);
    const ctx = this.errorContext();
    if (this.pending.length === 0) {
      const current = await readUidlist(uidlistPath, ctx, true);
      return { uids: [], uidValidity: current?.header.uidValidity ?? this.mailbox.uidValidity };
    }
    const renamed: { from: string; to: string }[] = [];
    let committed = false;
    let lock: Awaited<ReturnType<typeof acquireDotlock>> | null = null;
    try {
      // Durable before visible: every message file is on disk before the lock is taken and any rename.
      await this.fsyncs.drain();
      await makeDirs(this.paths.controlDir, this.ctx.perms);
      lock = await acquireDotlock(uidlistPath, {
        timeoutMs: this.ctx.lockTimeoutMs,
        staleMs: 120_000,
        hostname: this.ctx.hostname,
        writePid: true,
        mode: this.ctx.perms.fileMode,
        owner: this.ctx.perms.owner,
        ...ctx,
      });
      const uidlist = readUidlistForCommit(uidlistPath, ctx);
      // Without a uidlist the index (log replayed) is Dovecot's only record of the UIDs it gave.
      const index = uidlist === null ? await readIndexHeaderReplayed(this.paths.indexDir) : await readIndexHeader(this.paths.indexDir);
      const uidValidity = await uidValidityFor(uidlist, index, this.ctx.uidValidityPath, this.ctx.perms);
      const guid = uidlist?.header.guid ?? crypto.randomBytes(16).toString('hex');

      // Keyword letters, before any file with a new letter becomes visible.
      const kwPath = path.join(this.paths.controlDir, KEYWORDS_FILE);
      const { map: kwMap, mtimeMs: kwMtime } = await readKeywords(kwPath);
      // Letters are given in save order, as Dovecot gives them in the order keywords are first used; a
      // keyword left without one (all 26 taken) is not stored and is reported (CommitResult).
      const unstored: string[][] = [];
      const slotsOf = (names: readonly string[]): number[] => {
        const slots: number[] = [];
        const left: string[] = [];
        for (const n of names) {
          const slot = kwMap.slotOrAllocate(n);
          if (slot === null) left.push(n);
          else slots.push(slot);
        }
        unstored.push(left);
        return slots;
      };
      const slots = this.pending.map((p) => slotsOf(p.keywords));
      if (kwMap.changed) await this.writeKeywords(kwPath, kwMap, kwMtime);

      // UIDs.
      let next = firstFreeUid(uidlist, index, uidValidity);
      const listed = uidlist?.listedBase(this.pending.map((p) => p.base)) ?? null;
      if (listed !== null) throw new UnexpectedError(`file name ${listed} is already in ${uidlistPath}`, { path: uidlistPath, ...ctx, hint: 'run the same command again' });
      const records: UidlistRecord[] = [];
      for (const p of this.pending) {
        const uid = p.meta.uid !== undefined && Number.isSafeInteger(p.meta.uid) && p.meta.uid >= next && p.meta.uid <= 0xfffffffe ? p.meta.uid : next;
        if (uid > 0xfffffffe) throw new UnexpectedError(`mailbox "${this.paths.name}" has run out of UIDs`, { ...ctx, hint: 'let Dovecot renumber it: doveadm force-resync' });
        next = uid + 1;
        records.push({ uid, base: p.base, ext: p.ext });
      }

      // Make the files visible, then record them.
      const subsReady = new Set<string>();
      for (let i = 0; i < this.pending.length; i++) {
        const p = this.pending[i]!;
        const info = formatInfo(p.flags, slots[i]!);
        const sub = info === '' ? 'new' : 'cur';
        if (!subsReady.has(sub)) {
          await makeDirs(path.join(this.paths.mailDir, sub), this.ctx.perms);
          subsReady.add(sub);
        }
        const to = path.join(this.paths.mailDir, sub, p.base + info);
        fs.renameSync(p.tmpPath, to);
        renamed.push({ from: p.tmpPath, to });
      }
      // The renames are durable before the records that name them (maildir-save.c:
      // maildir_transaction_fsync_dirs before maildir_save_sync_uidlist): after a crash in between, the
      // files are in cur/ or new/ without records (Dovecot gives them UIDs), never records for files
      // back in tmp/ (which Dovecot deletes after 36 h, the records then pointing at nothing).
      await syncDirs([path.join(this.paths.mailDir, 'cur'), path.join(this.paths.mailDir, 'new')]);
      await writeUidlistRecords(uidlistPath, uidlist, records, { uidValidity, nextUid: next, guid }, this.ctx.perms, ctx);
      await syncDirs([this.paths.controlDir]);
      committed = true;
      const keywordsNotStored = records.flatMap((r, i) => (unstored[i]!.length > 0 ? [{ index: i, uid: r.uid, keywords: unstored[i]! }] : []));
      return { uids: records.map((r) => r.uid), uidValidity, ...(keywordsNotStored.length > 0 ? { keywordsNotStored } : {}) };
    } catch (e) {
      for (const r of renamed.reverse()) await fs.promises.rename(r.to, r.from).catch(() => undefined);
      if (isMailvaultError(e)) throw e;
      throw fromSystemError(e, 'commit the saved messages', { path: this.paths.mailDir, ...ctx });
    } finally {
      await lock?.release();
      // After a failure the renamed files are back in tmp/: remove them all. After success there is
      // nothing left in tmp/ to remove.
      if (!committed) {
        await this.fsyncs.abandon();
        for (const p of this.pending) await fs.promises.unlink(p.tmpPath).catch(() => undefined);
      }
    }
  }

  /** Rewrite dovecot-keywords the way Dovecot does under the uidlist lock. */
  private async writeKeywords(kwPath: string, map: KeywordMap, oldMtimeMs: number | null): Promise<void> {
    // We hold the uidlist lock, which serializes keyword changes: a leftover keywords lock is stale.
    await fs.promises.unlink(`${kwPath}.lock`).catch(() => undefined);
    const lock = await acquireDotlock(kwPath, {
      timeoutMs: 2000,
      staleMs: 120_000,
      hostname: this.ctx.hostname,
      writePid: false,
      mode: this.ctx.perms.fileMode,
      owner: this.ctx.perms.owner,
      user: this.ctx.user,
      mailbox: this.paths.name,
    });
    try {
      await lock.replaceWith(map.serialize(), async (lockPath) => {
        if (oldMtimeMs === null) return;
        const st = await fs.promises.stat(lockPath);
        const oldSec = Math.floor(oldMtimeMs / 1000);
        if (Math.floor(st.mtimeMs / 1000) <= oldSec) await fs.promises.utimes(lockPath, new Date(), new Date((oldSec + 1) * 1000));
      });
    } finally {
      await lock.release();
    }
  }

  async rollback(): Promise<void> {
    if (this.state === 'done') throw new UnexpectedError(`cannot roll back: the save transaction on "${this.paths.name}" was already committed or rolled back`);
    if (this.state === 'busy') throw new UnexpectedError(`cannot roll back: the save transaction on "${this.paths.name}" is busy with a save`);
    this.state = 'done';
    await this.fsyncs.abandon();
    for (const p of this.pending) await fs.promises.unlink(p.tmpPath).catch(() => undefined);
    this.pending.length = 0;
  }
}

async function syncDirs(dirs: string[]): Promise<void> {
  for (const d of dirs) {
    try {
      const h = await fs.promises.open(d, 'r');
      try {
        await h.sync();
      } finally {
        await h.close();
      }
    } catch {
      // best effort: some filesystems refuse fsync on directories
    }
  }
}
