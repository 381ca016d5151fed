/**
 * Typed errors. Every error mailvault raises on purpose is a MailvaultError subclass with a stable
 * SCREAMING_SNAKE `code`, an exit code from exit-codes.ts, a short user message (what failed, on what,
 * why), and an optional `hint` (what to do next). Internal detail goes into `cause`.
 *
 * The set is closed: add a class here (with its one-line meaning) rather than throwing ad-hoc errors.
 */
import { ExitCode, type ExitCodeValue } from './exit-codes.js';

export interface ErrorContext {
  /** Filesystem path the error is about. */
  path?: string;
  user?: string;
  mailbox?: string;
  uid?: number;
  /** Dump member name. */
  member?: string;
  /** Byte offset in the (uncompressed) dump stream. */
  offset?: number;
}

export interface MailvaultErrorOptions extends ErrorContext {
  hint?: string;
  cause?: unknown;
}

export abstract class MailvaultError extends Error {
  abstract readonly code: string;
  abstract readonly exitCode: ExitCodeValue;
  readonly hint: string | undefined;
  readonly context: ErrorContext;

  constructor(message: string, options: MailvaultErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const { hint, cause: _cause, ...context } = options;
    this.hint = hint;
    this.context = context;
    this.name = new.target.name;
  }

  toJSON(): { code: string; message: string; hint?: string; context: ErrorContext; exitCode: number } {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
      context: this.context,
      exitCode: this.exitCode,
    };
  }
}

/** Bad flags, arguments or values given by the user. */
export class UsageError extends MailvaultError {
  readonly code = 'USAGE';
  readonly exitCode = ExitCode.USAGE;
}

/**
 * A mailbox name the target store cannot hold: Maildir++ has no escape for "." inside a level; a server
 * answers CREATE with NO [CANNOT]. A restore leaves that mailbox out, names it and goes on.
 */
export class MailboxNameError extends MailvaultError {
  readonly code = 'MAILBOX_NAME';
  readonly exitCode = ExitCode.USAGE;
}

/** The dump is damaged: bad tar header, hash mismatch, bad record, truncated. */
export class ArchiveCorruptError extends MailvaultError {
  readonly code = 'ARCHIVE_CORRUPT';
  readonly exitCode = ExitCode.DATA;
}

/** The dump ends before its trailer: the copy was cut short. */
export class ArchiveTruncatedError extends MailvaultError {
  readonly code = 'ARCHIVE_TRUNCATED';
  readonly exitCode = ExitCode.DATA;
}

/** The dump was written by a newer (or unknown) format version than this reader supports. */
export class ArchiveVersionError extends MailvaultError {
  readonly code = 'ARCHIVE_VERSION';
  readonly exitCode = ExitCode.DATA;
}

/** Members appear in an order the format forbids (e.g. a message before its mailbox record). */
export class ArchiveOrderError extends MailvaultError {
  readonly code = 'ARCHIVE_ORDER';
  readonly exitCode = ExitCode.DATA;
}

/** A chain of dumps (full + incrementals) is out of order, has a gap, or mixes foreign dumps. */
export class ArchiveChainError extends MailvaultError {
  readonly code = 'ARCHIVE_CHAIN';
  readonly exitCode = ExitCode.DATA;
}

/** A mail store file is damaged (corrupt dovecot-uidlist, dbox file, index). */
export class StorageCorruptError extends MailvaultError {
  readonly code = 'STORAGE_CORRUPT';
  readonly exitCode = ExitCode.DATA;
}

/** A mail root, user, mailbox or message does not exist. */
export class StorageNotFoundError extends MailvaultError {
  readonly code = 'STORAGE_NOT_FOUND';
  readonly exitCode = ExitCode.NOT_FOUND;
}

/** A dump file, list file or other input file does not exist. */
export class InputNotFoundError extends MailvaultError {
  readonly code = 'INPUT_NOT_FOUND';
  readonly exitCode = ExitCode.NOT_FOUND;
}

/** A storage lock (dovecot-uidlist.lock, ...) was held by someone else longer than the timeout. */
export class StorageLockTimeoutError extends MailvaultError {
  readonly code = 'STORAGE_LOCK_TIMEOUT';
  readonly exitCode = ExitCode.TEMP_FAIL;
}

/** A mail_location uses a scheme or option mailvault does not support. */
export class UnsupportedLocationError extends MailvaultError {
  readonly code = 'LOCATION_UNSUPPORTED';
  readonly exitCode = ExitCode.USAGE;
}

/** The mail server cannot be reached, or went away mid-operation. */
export class ServerUnavailableError extends MailvaultError {
  readonly code = 'SERVER_UNAVAILABLE';
  readonly exitCode = ExitCode.TEMP_FAIL;
}

/** The server refused a command in a way that is not a quota, auth or availability problem. */
export class ServerRejectedError extends MailvaultError {
  readonly code = 'SERVER_REJECTED';
  readonly exitCode = ExitCode.FAILURE;
}

/** The user's quota is exceeded. */
export class QuotaExceededError extends MailvaultError {
  readonly code = 'QUOTA_EXCEEDED';
  readonly exitCode = ExitCode.CANT_CREATE;
}

/** The disk (or filesystem quota) is full. */
export class DiskFullError extends MailvaultError {
  readonly code = 'DISK_FULL';
  readonly exitCode = ExitCode.CANT_CREATE;
}

/** A file or directory cannot be read or written for lack of permission. */
export class PermissionDeniedError extends MailvaultError {
  readonly code = 'PERMISSION_DENIED';
  readonly exitCode = ExitCode.PERMISSION;
}

/** Login refused: wrong user, password or master user. */
export class AuthenticationError extends MailvaultError {
  readonly code = 'AUTH_FAILED';
  readonly exitCode = ExitCode.PERMISSION;
}

/** A message's bytes do not match the size or hash recorded for it. */
export class IntegrityError extends MailvaultError {
  readonly code = 'INTEGRITY';
  readonly exitCode = ExitCode.DATA;
}

/** The operation was aborted (signal, AbortSignal). */
export class InterruptedError extends MailvaultError {
  readonly code = 'INTERRUPTED';
  readonly exitCode = ExitCode.INTERRUPTED;
}

/** The operation finished but some items were skipped; carries the count. */
export class PartialFailureError extends MailvaultError {
  readonly code = 'PARTIAL';
  readonly exitCode = ExitCode.PARTIAL;
}

export function isMailvaultError(e: unknown): e is MailvaultError {
  return e instanceof MailvaultError;
}

/**
 * Map a Node.js system error (ENOENT, EACCES, ENOSPC, ...) on `path` to a typed error.
 * `what` says what was being done ("read the mail root", "write tmp file").
 */
export function fromSystemError(err: unknown, what: string, context: ErrorContext = {}): MailvaultError {
  if (err instanceof MailvaultError) return err;
  const e = err as NodeJS.ErrnoException;
  const where = context.path ?? e?.path ?? '';
  const base = `cannot ${what}${where ? `: ${where}` : ''}`;
  switch (e?.code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new StorageNotFoundError(`${base}: no such file or directory`, { ...context, path: where, cause: err, hint: 'check the path and the mail_location' });
    case 'EACCES':
    case 'EPERM':
      return new PermissionDeniedError(`${base}: permission denied`, { ...context, path: where, cause: err, hint: 'run as the mail user or as root' });
    case 'EPIPE':
      return new UnexpectedError(`${base}: broken pipe (EPIPE): the program reading the output went away`, {
        ...context,
        path: where,
        cause: err,
        hint: 'check the command mailvault writes into (zstd, ssh, the backup agent): it exited or closed its input early; then run the same command again',
      });
    case 'ENOSPC':
    case 'EDQUOT':
      return new DiskFullError(`${base}: no space left on device`, { ...context, path: where, cause: err, hint: 'free disk space, then run the same command again; nothing half-written was left visible' });
    default:
      return new UnexpectedError(`${base}: ${e?.message ?? String(err)}`, { ...context, path: where, cause: err });
  }
}

/**
 * A message the store holds but has not given a UID yet, and mailvault could not give it one (a Maildir
 * file delivered outside Dovecot, on a read-only store, say): it is not in the dump. Exit 75: it goes
 * once Dovecot (or a writable run) has listed it.
 */
export class MessageWithoutUidError extends MailvaultError {
  readonly code = 'NO_UID';
  readonly exitCode = ExitCode.TEMP_FAIL;
}

/** A message stored in a form mailvault cannot read (a Maildir file compressed with bzip2, say); it is skipped. Exit 1. */
export class UnsupportedMessageError extends MailvaultError {
  readonly code = 'UNSUPPORTED_MESSAGE';
  readonly exitCode = ExitCode.FAILURE;
}

/** An error we did not classify; exit 1. Prefer a specific class. */
export class UnexpectedError extends MailvaultError {
  readonly code = 'UNEXPECTED';
  readonly exitCode = ExitCode.FAILURE;
}
