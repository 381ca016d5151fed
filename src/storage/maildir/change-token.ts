/**
 * A Maildir mailbox's change token (MailboxEntry.changeToken; see ../change-token.ts for the rules):
 *
 * - dovecot-uidlist: new UIDs, a new UIDVALIDITY or GUID rewrite or append to it;
 * - new/ and cur/: every delivery, flag change (a rename in cur/), move to cur/ and expunge adds or
 *   removes a directory entry, and that sets the directory's mtime and ctime;
 * - dovecot-keywords: the keyword names behind the file-name letters.
 *
 * A mailbox with no uidlist yet has no token.
 */
import path from 'node:path';
import { changeTokenOf, stampOf } from '../change-token.js';

export { SETTLE_MS } from '../change-token.js';

export function maildirChangeToken(uidlistFile: string, keywordsFile: string, mailDir: string, nowMs: number = Date.now()): string | null {
  try {
    if (stampOf(uidlistFile) === null) return null;
  } catch {
    return null;
  }
  // "maildir2" since Maildir files Dovecot has not listed are given UIDs (assign-uids.ts): a token of an
  // earlier mailvault may have been recorded while such files sat unseen, so every Maildir mailbox is
  // read once more after the upgrade.
  return changeTokenOf('maildir2', [uidlistFile, path.join(mailDir, 'new'), path.join(mailDir, 'cur'), keywordsFile], nowMs);
}
