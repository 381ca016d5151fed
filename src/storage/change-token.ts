/**
 * Change tokens (MailboxEntry.changeToken) from file-system stamps, shared by the drivers that read
 * files: each driver names the files and directories whose change covers every change of a mailbox;
 * the token is their device, inode, size, mtime and ctime.
 *
 * File-system times come from the kernel's coarse clock (a few ms), so a change in the same tick as the
 * previous one can leave a time unchanged. A token is therefore only given when every ctime is at least
 * SETTLE_MS in the past, as Dovecot's own maildir sync treats directories changed in the last seconds
 * as dirty. The ctime, not the mtime, says when a path last changed: the kernel sets it to the current
 * time on every write, rename, link count change and utime() call, and it cannot be set by hand (touch
 * can restore an mtime, not a ctime). An mtime can be set to any time, and Dovecot does so: it bumps
 * dovecot-keywords' mtime to one second past the one it last saw on every rewrite
 * (maildir-keywords.c "mtime must grow every time"), which puts it seconds in the future after a few
 * rewrites in one second; a settle test on the mtime would then give no token until that time has come
 * and gone, and make the next run read the mailbox again. The mtime stays part of the token.
 * Drivers take the token before they read the mailbox: changes while it is read then make the next
 * token differ.
 */
import fs from 'node:fs';

/** ctimes newer than this give no token. */
export const SETTLE_MS = 2000;

/** stat() with bigint times; null when the path does not exist. Other errors are thrown. */
export function stampOf(file: string): fs.BigIntStats | null {
  try {
    return fs.statSync(file, { bigint: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw e;
  }
}

/**
 * The token of `paths` (files or directories; a missing one counts as "-"), prefixed by `kind`; null
 * when a path cannot be read or a ctime is younger than SETTLE_MS (or in the future).
 */
export function changeTokenOf(kind: string, paths: readonly string[], nowMs: number = Date.now()): string | null {
  const settledBefore = BigInt(Math.floor(nowMs - SETTLE_MS)) * 1_000_000n;
  const parts = [kind];
  for (const p of paths) {
    let s: fs.BigIntStats | null;
    try {
      s = stampOf(p);
    } catch {
      return null;
    }
    if (s === null) {
      parts.push('-');
      continue;
    }
    if (s.ctimeNs > settledBefore) return null;
    parts.push(`${s.dev}.${s.ino}.${s.size}.${s.mtimeNs}.${s.ctimeNs}`);
  }
  return parts.join(':');
}
