/**
 * Mailbox names between mailvault's form (UTF-8, "/" separated, "INBOX") and the server's path
 * (imapflow gives and takes paths already decoded from modified UTF-7, or as UTF-8 when the server
 * accepted ENABLE UTF8=ACCEPT; the hierarchy separator is whatever LIST reports).
 *
 * A server whose separator is not "/" may hold names that contain "/" (e.g. "a/b" under "."):
 * those cannot be written in mailvault's form, so they are refused rather than silently merged
 * into a hierarchy they do not belong to.
 */
import { MailboxNameError, UnsupportedLocationError } from '../../core/errors.js';

/** Server path (with its separator) -> mailvault name. */
export function fromServerPath(path: string, separator: string | null): string {
  if (path.toUpperCase() === 'INBOX') return 'INBOX';
  if (!separator || separator === '/') return normalizeInbox(path, '/');
  const parts = path.split(separator);
  const bad = parts.find((p) => p.includes('/'));
  if (bad !== undefined) {
    throw new UnsupportedLocationError(
      `mailbox "${path}" has "/" inside a name level, but the server's hierarchy separator is "${separator}": mailvault writes every name with "/" as the separator and cannot represent it`,
      { mailbox: path, hint: 'rename the mailbox on the server, or back it up from the files' },
    );
  }
  return normalizeInbox(parts.join('/'), '/');
}

/** mailvault name -> server path. */
export function toServerPath(name: string, separator: string | null): string {
  if (name.toUpperCase() === 'INBOX') return 'INBOX';
  const sep = separator || '/';
  const parts = name.split('/');
  if (sep !== '/') {
    const bad = parts.find((p) => p.includes(sep));
    if (bad !== undefined) {
      throw new MailboxNameError(`mailbox "${name}" has "${sep}" inside a name level, but "${sep}" is the server's hierarchy separator`, {
        mailbox: name,
        hint: 'restore it under another name with --to-mailbox, or into a server whose separator is "/"',
      });
    }
  }
  return normalizeInbox(parts.join(sep), sep);
}

/** "inbox/x" -> "INBOX/x": INBOX is case-insensitive also as a parent (RFC 3501 5.1). */
function normalizeInbox(path: string, sep: string): string {
  const first = path.split(sep, 1)[0]!;
  return first.toUpperCase() === 'INBOX' && first !== 'INBOX' ? `INBOX${path.slice(first.length)}` : path;
}
