/**
 * A Maildir mailbox's change token (MailboxEntry.changeToken; see ../change-token.ts for the rules):
 *
 * - dovecot-uidlist: new UIDs, a new UIDVALIDITY or GUID rewrite or append to it;
 * - new/ and cur/: every delivery, flag change (a rename in cur/), move to cur/ and expunge adds or
 *   removes a directory entry, and that sets the directory's mtime and ctime;
 * - dovecot-keywords: the keyword names behind the file-name letters;
 * - dovecot.index.log (where the index is kept): a keyword Dovecot keeps only in its index
 *   (index-keywords.ts) changes no file name, only the index, and every change to the index is first
 *   appended to its log (a rotated log is a new file). Dovecot also logs what changes no message
 *   (cache offsets, \Recent): such a mailbox is then read again, which costs time, not correctness.
 *
 * A mailbox with no uidlist yet has no token.
 */
import path from 'node:path';
import { changeTokenOf, stampOf } from '../change-token.js';

export { SETTLE_MS } from '../change-token.js';

export function maildirChangeToken(uidlistFile: string, keywordsFile: string, mailDir: string, indexDir: string | null, nowMs: number = Date.now()): string | null {
  try {
    if (stampOf(uidlistFile) === null) return null;
  } catch {
    return null;
  }
  // "maildir2" since Maildir files Dovecot has not listed are given UIDs (assign-uids.ts), "maildir3"
  // since keywords kept only in the index are backed up: a token of an earlier mailvault may have been
  // recorded while such files or keywords went unseen, so every Maildir mailbox is read once more after
  // the upgrade.
  const paths = [uidlistFile, path.join(mailDir, 'new'), path.join(mailDir, 'cur'), keywordsFile];
  if (indexDir !== null) paths.push(path.join(indexDir, 'dovecot.index.log'));
  return changeTokenOf('maildir3', paths, nowMs);
}
