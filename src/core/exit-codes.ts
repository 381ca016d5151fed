/**
 * The one table of process exit codes. Codes never change meaning; new ones are additions.
 * Documented in every man page (EXIT STATUS) and in formats/README.md.
 */
export const ExitCode = {
  /** Success. */
  SUCCESS: 0,
  /** Failure not otherwise classified (an unexpected error: a bug, or a cause we did not foresee). */
  FAILURE: 1,
  /** Usage: bad flags, bad arguments, unparsable values. */
  USAGE: 2,
  /** Finished, but some items were skipped or not restored; the summary lists them. */
  PARTIAL: 3,
  /** Data error: a dump or a mail store is corrupt, truncated, or of an unsupported version. */
  DATA: 65,
  /** Input not found: dump file, user, mailbox, message, mail root. */
  NOT_FOUND: 66,
  /** Cannot create output: quota exceeded or disk full. */
  CANT_CREATE: 73,
  /** Temporary failure: a lock held too long, a server unavailable. Retrying later may succeed. */
  TEMP_FAIL: 75,
  /** Permission or authentication denied. */
  PERMISSION: 77,
  /** Interrupted by a signal (SIGINT, SIGTERM) or an abort. */
  INTERRUPTED: 130,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** One line per exit code, for help texts and man pages. */
export const EXIT_CODE_DESCRIPTIONS: ReadonlyArray<readonly [ExitCodeValue, string]> = [
  [ExitCode.SUCCESS, 'success'],
  [ExitCode.FAILURE, 'failure not otherwise classified'],
  [ExitCode.USAGE, 'usage error (bad flag, argument or value)'],
  [ExitCode.PARTIAL, 'finished, but some items were skipped or not restored (see the summary)'],
  [ExitCode.DATA, 'data error: dump or mail store corrupt, truncated, or of an unsupported version'],
  [ExitCode.NOT_FOUND, 'input not found: dump, user, mailbox, message or mail root'],
  [ExitCode.CANT_CREATE, 'cannot create: quota exceeded or disk full'],
  [ExitCode.TEMP_FAIL, 'temporary failure (lock timeout, server unavailable): retry later'],
  [ExitCode.PERMISSION, 'permission or authentication denied'],
  [ExitCode.INTERRUPTED, 'interrupted'],
];

/**
 * With several failures, a temporary failure wins (backup software retries 75); otherwise the first
 * one counts (as doveadm does: "tempfail overrides all other exit codes").
 */
export function combineExitCodes(codes: readonly number[]): number {
  const failures = codes.filter((c) => c !== ExitCode.SUCCESS);
  if (failures.length === 0) return ExitCode.SUCCESS;
  if (failures.includes(ExitCode.TEMP_FAIL)) return ExitCode.TEMP_FAIL;
  return failures[0]!;
}
