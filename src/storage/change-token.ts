/**
 * Change tokens (MailboxEntry.changeToken) from file-system stamps, shared by the drivers that read
 * files: each driver names the files and directories whose change covers every change of a mailbox;
 * the token is their device, inode, size, mtime and ctime.
 *
 * File-system times come from the kernel's coarse clock (a few ms), so a change in the same tick as the
 * previous one can leave a time unchanged. A token is therefore only given when every time is at least
 * SETTLE_MS in the past, as Dovecot's own maildir sync treats directories changed in the last seconds
 * as dirty. A ctime cannot be set back by hand (touch can restore an mtime, not a ctime). Drivers take
 * the token before they read the mailbox: changes while it is read then make the next token differ.
 */
import fs from 'node:fs';

/** Times newer than this give no token. */
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
 * when a path cannot be read or a time is younger than SETTLE_MS (or in the future).
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
    if (s.mtimeNs > settledBefore || s.ctimeNs > settledBefore) return null;
    parts.push(`${s.dev}.${s.ino}.${s.size}.${s.mtimeNs}.${s.ctimeNs}`);
  }
  return parts.join(':');
}
