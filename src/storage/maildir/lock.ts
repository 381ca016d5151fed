/**
 * Dovecot-compatible dot-locks (lib/file-dotlock.c with dotlock_use_excl = yes), used for
 * `dovecot-uidlist.lock`, `dovecot-keywords.lock` and `subscriptions.lock`:
 *
 * - Take: open("<file>.lock", O_RDWR|O_CREAT|O_EXCL). The uidlist lock holds "<pid>:<hostname>", no LF.
 * - Wait: poll with randomized sleeps (0.1-0.2 s, growing toward 3 s) until `timeoutMs`.
 * - Stale, local pid: the lock is older than 2 s, names our host, and kill(pid, 0) says the process is
 *   gone: remove it and take it at once. A live pid is never overridden.
 * - Stale, otherwise (foreign host, no pid, e.g. a lock that holds file data): override once neither the
 *   lock nor the protected file changed (inode, size, mtime, ctime) for `staleMs`.
 * - A stale lock that cannot be removed (Dovecot's dotlock_override fails at once) is waited on like a
 *   live one, so the timeout error names the lock and why it could not be removed.
 * - Release: unlink, after checking the lock is still our inode. Replace: rename the lock (holding the
 *   new content) over the protected file.
 */
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { StorageLockTimeoutError, UnexpectedError, fromSystemError } from '../../core/errors.js';

export interface DotlockOptions {
  /** Give up after this long (Dovecot: stale timeout + 2 s = 122 s for the uidlist). */
  readonly timeoutMs: number;
  /** A lock whose files did not change for this long is stale (uidlist/keywords 120 s, subscriptions 30 s). */
  readonly staleMs: number;
  /** Our host name, as written into the lock and compared with a holder's. */
  readonly hostname: string;
  /** Write "<pid>:<hostname>" into the lock (uidlist lock). False for locks that receive file data. */
  readonly writePid: boolean;
  /** Mode for the lock file. */
  readonly mode?: number;
  /** Owner for the lock file (when running as root). */
  readonly owner?: { uid: number; gid: number } | null;
  /** Context for error messages. */
  readonly user?: string;
  readonly mailbox?: string;
}

const STALE_PID_CHECK_MS = 2000;
/** Pause before retrying after the lock vanished or a stale one was removed: short, but never a busy loop. */
const RETRY_SOON_MS = 10;

interface ChangeInfo {
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

function sameInfo(a: ChangeInfo | null, st: fs.Stats): boolean {
  return a !== null && a.ino === st.ino && a.size === st.size && a.mtimeMs === st.mtimeMs && a.ctimeMs === st.ctimeMs;
}

function info(st: fs.Stats): ChangeInfo {
  return { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
}

async function lstatOrNull(path: string): Promise<fs.Stats | null> {
  try {
    return await fs.promises.lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

async function readHolder(lockPath: string): Promise<string> {
  try {
    const buf = Buffer.alloc(512);
    const h = await fs.promises.open(lockPath, 'r');
    try {
      const { bytesRead } = await h.read(buf, 0, 512, 0);
      return buf.subarray(0, bytesRead).toString('utf8').replace(/\n$/, '');
    } finally {
      await h.close();
    }
  } catch {
    return '';
  }
}

/** pid from "<pid>:<host>" when host is ours, else null (read_local_pid). */
export function localPid(content: string, hostname: string): number | null {
  const colon = content.indexOf(':');
  if (colon < 0) return null;
  if (content.slice(colon + 1) !== hostname) return null;
  const pidText = content.slice(0, colon);
  if (!/^[0-9]+$/.test(pidText)) return null;
  const pid = Number(pidText);
  return pid > 0 && Number.isSafeInteger(pid) ? pid : null;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

export class Dotlock {
  private released = false;

  constructor(
    /** The lock file ("<file>.lock"). */
    readonly lockPath: string,
    /** The file it protects. */
    readonly filePath: string,
    private readonly ino: number,
  ) {}

  private async checkOurs(): Promise<void> {
    const st = await lstatOrNull(this.lockPath);
    if (st === null || st.ino !== this.ino) {
      throw new UnexpectedError(`lock ${this.lockPath} was taken over by another process while we held it`, {
        path: this.lockPath,
        hint: 'another writer judged our lock stale; run the same command again',
      });
    }
  }

  /** Refresh the lock's mtime (Dovecot touches long-held locks so others do not judge them stale). */
  async touch(): Promise<void> {
    const now = new Date();
    await fs.promises.utimes(this.lockPath, now, now).catch(() => undefined);
  }

  /** Unlink the lock if it is still ours. Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const st = await lstatOrNull(this.lockPath).catch(() => null);
    if (st !== null && st.ino === this.ino) await fs.promises.unlink(this.lockPath).catch(() => undefined);
  }

  /**
   * Write `data` into the lock file, fsync, and rename it over the protected file (file_dotlock_replace).
   * `beforeRename` may adjust the lock file (utime) before it becomes visible.
   */
  async replaceWith(data: string | Buffer, beforeRename?: (lockPath: string) => Promise<void>): Promise<void> {
    if (this.released) throw new UnexpectedError(`lock ${this.lockPath} is already released`);
    await this.checkOurs();
    const h = await fs.promises.open(this.lockPath, 'r+');
    try {
      await h.truncate(0);
      await h.write(typeof data === 'string' ? Buffer.from(data, 'utf8') : data, 0, undefined, 0);
      await h.sync();
    } finally {
      await h.close();
    }
    if (beforeRename) await beforeRename(this.lockPath);
    await fs.promises.rename(this.lockPath, this.filePath);
    this.released = true;
  }
}

/**
 * Remove a stale lock if it is still the one judged stale (dotlock_override). null if it is gone (removed
 * by us or by someone else, or replaced by a new lock to judge afresh), else why removing it failed.
 */
async function overrideStale(lockPath: string, judged: ChangeInfo | null): Promise<NodeJS.ErrnoException | null> {
  const again = await lstatOrNull(lockPath);
  if (again === null || !sameInfo(judged, again)) return null;
  try {
    await fs.promises.unlink(lockPath);
    return null;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? null : (e as NodeJS.ErrnoException);
  }
}

/**
 * Take the dot-lock for `filePath` (lock file `filePath + ".lock"`), waiting and overriding stale locks
 * as Dovecot does. Throws StorageLockTimeoutError naming the lock and its holder after `timeoutMs`.
 */
export async function acquireDotlock(filePath: string, options: DotlockOptions): Promise<Dotlock> {
  const lockPath = `${filePath}.lock`;
  const started = Date.now();
  let sleepMs = 100;
  let lockInfo: ChangeInfo | null = null;
  let fileInfo: ChangeInfo | null = null;
  let lastChange = 0;
  let holder = '';
  let overrideError: NodeJS.ErrnoException | null = null;
  for (;;) {
    let h: fs.promises.FileHandle | null = null;
    try {
      // Given to another owner (running as root), the file is created readable to all until it is
      // theirs: Dovecot's processes, running as the mail user, put an inotify watch on a lock they
      // wait for, which needs read permission; on a root-owned 0600 lock Dovecot logs an error
      // ("inotify_add_watch(...) failed: Permission denied"). Its content is a pid and a host name.
      h = await fs.promises.open(lockPath, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, options.owner ? 0o644 : (options.mode ?? 0o600));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw fromSystemError(e, 'create the lock file', { path: lockPath, user: options.user, mailbox: options.mailbox });
      }
    }
    if (h !== null) {
      try {
        if (options.owner) {
          await h.chmod(0o644); // the umask may have cut the mode open() was given
          await h.chown(options.owner.uid, options.owner.gid);
          await h.chmod(options.mode ?? 0o600);
        }
        if (options.writePid) await h.write(`${process.pid}:${options.hostname}`, 0, 'utf8');
        const st = await h.stat();
        await h.close();
        return new Dotlock(lockPath, filePath, st.ino);
      } catch (e) {
        await h.close().catch(() => undefined);
        await fs.promises.unlink(lockPath).catch(() => undefined);
        throw fromSystemError(e, 'write the lock file', { path: lockPath, user: options.user, mailbox: options.mailbox });
      }
    }

    // Someone holds it: apply the stale rules. Every way through ends at the timeout check and a sleep:
    // a stale lock that cannot be removed (EACCES, EPERM, EROFS: O_EXCL says EEXIST before any
    // permission check) would otherwise be retried at full speed, forever.
    const now = Date.now();
    let retrySoon = false;
    const lst = await lstatOrNull(lockPath);
    if (lst === null) {
      retrySoon = true; // released meanwhile
    } else {
      if (!sameInfo(lockInfo, lst)) {
        // First look, or the lock changed: its change time counts (the newer of mtime/ctime on first look).
        const changeTime = lockInfo === null ? (lst.mtimeMs <= now && lst.mtimeMs > lst.ctimeMs ? lst.mtimeMs : lst.ctimeMs) : now;
        lastChange = Math.max(lastChange, changeTime);
        lockInfo = info(lst);
        holder = await readHolder(lockPath);
      }
      const pid = lst.mtimeMs < now - STALE_PID_CHECK_MS ? localPid(holder, options.hostname) : null;
      if (pid !== null) {
        if (!processExists(pid) || pid === process.pid) {
          // Dead local holder (or a leftover with our own pid): override at once if unchanged.
          const failed = await overrideStale(lockPath, lockInfo);
          if (failed === null) retrySoon = true;
          else overrideError = failed;
        }
      } else if (now > lastChange + options.staleMs) {
        const fst = await lstatOrNull(filePath).catch(() => null);
        if (fst !== null && !sameInfo(fileInfo, fst)) {
          const changeTime = fileInfo === null ? (fst.mtimeMs <= now && fst.mtimeMs > fst.ctimeMs ? fst.mtimeMs : fst.ctimeMs) : now;
          lastChange = Math.max(lastChange, changeTime);
          fileInfo = info(fst);
        }
        if (now > lastChange + options.staleMs) {
          const failed = await overrideStale(lockPath, lockInfo);
          if (failed === null) retrySoon = true;
          else overrideError = failed;
        }
      }
    }

    if (now - started >= options.timeoutMs) {
      const who = /^[0-9]+:[^\n]*$/.test(holder) ? `"${holder}" (pid:host)` : 'an unknown holder (no pid:host in the lock)';
      const cannotRemove = overrideError === null ? '' : `; the lock is stale but could not be removed: ${overrideError.code ?? overrideError.message}`;
      throw new StorageLockTimeoutError(`timed out after ${Math.round((now - started) / 1000)} s waiting for lock ${lockPath}, held by ${who}${cannotRemove}`, {
        path: lockPath,
        ...(options.user === undefined ? {} : { user: options.user }),
        ...(options.mailbox === undefined ? {} : { mailbox: options.mailbox }),
        hint:
          overrideError === null
            ? 'another process (Dovecot or a second mailvault) is working on this mailbox; run the same command again later, or remove the lock file if its holder is gone'
            : 'its holder is gone, but this process may not delete the lock file: remove it by hand (check the permissions of its directory and that the filesystem is writable), then run the same command again',
      });
    }
    if (retrySoon) {
      // The lock went away or we removed a stale one: try again almost at once, without backing off.
      await sleep(RETRY_SOON_MS);
      continue;
    }
    const jitter = sleepMs + Math.random() * sleepMs;
    await sleep(Math.min(jitter, Math.max(1, options.timeoutMs - (now - started))));
    sleepMs = Math.min(sleepMs * 1.5, 1500);
  }
}
