/**
 * A Maildir mailbox's change token (MailboxEntry.changeToken): what changes whenever anything a backup
 * reads of the mailbox may have changed.
 *
 * - dovecot-uidlist: device, inode, size, mtime and ctime. New UIDs, a new UIDVALIDITY or GUID rewrite
 *   or append to it.
 * - new/ and cur/: mtime and ctime. Every delivery, flag change (a rename in cur/), move to cur/ and
 *   expunge adds or removes a directory entry, and that sets both. A ctime cannot be set back by hand
 *   (touch can restore an mtime, not a ctime).
 * - dovecot-keywords: inode, size and mtime (the keyword names behind the file-name letters).
 *
 * File-system times come from the kernel's coarse clock (a few ms), so a change in the same tick as the
 * previous one can leave a time unchanged. A token is therefore only given when every time is at least
 * SETTLE_MS in the past, as Dovecot's own maildir sync treats directories changed in the last seconds
 * as dirty. The token is taken before the messages are listed: changes during the listing then make
 * the next run's token differ.
 */
import fs from 'node:fs';
import path from 'node:path';

/** Times newer than this give no token. */
export const SETTLE_MS = 2000;

type Stamp = fs.BigIntStats | null;

function statOrNull(file: string): Stamp {
  try {
    return fs.statSync(file, { bigint: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw e;
  }
}

/**
 * The token, or null when it cannot be told (no uidlist yet, an unreadable file, a time that is too
 * recent or in the future).
 */
export function maildirChangeToken(uidlistFile: string, keywordsFile: string, mailDir: string, nowMs: number = Date.now()): string | null {
  let uidlist: Stamp;
  let news: Stamp;
  let cur: Stamp;
  let keywords: Stamp;
  try {
    uidlist = statOrNull(uidlistFile);
    news = statOrNull(path.join(mailDir, 'new'));
    cur = statOrNull(path.join(mailDir, 'cur'));
    keywords = statOrNull(keywordsFile);
  } catch {
    return null;
  }
  if (uidlist === null) return null;
  const settledBefore = BigInt(nowMs - SETTLE_MS) * 1_000_000n;
  for (const s of [uidlist, news, cur, keywords]) {
    if (s !== null && (s.mtimeNs > settledBefore || s.ctimeNs > settledBefore)) return null;
  }
  const dir = (s: Stamp): string => (s === null ? '-' : `${s.mtimeNs}.${s.ctimeNs}`);
  return [
    'maildir1',
    `${uidlist.dev}.${uidlist.ino}.${uidlist.size}.${uidlist.mtimeNs}.${uidlist.ctimeNs}`,
    dir(news),
    dir(cur),
    keywords === null ? '-' : `${keywords.ino}.${keywords.size}.${keywords.mtimeNs}`,
  ].join(':');
}
