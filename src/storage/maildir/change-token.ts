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
  return changeTokenOf('maildir1', [uidlistFile, path.join(mailDir, 'new'), path.join(mailDir, 'cur'), keywordsFile], nowMs);
}
