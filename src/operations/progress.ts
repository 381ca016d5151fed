/** Progress and per-item failure reporting shared by the operations. Operations never print. */
import type { MailvaultError } from '../core/errors.js';

export interface ProgressEvent {
  readonly phase: 'user' | 'mailbox' | 'message' | 'done';
  readonly user?: string;
  readonly mailbox?: string;
  readonly messages: number;
  readonly bytes: number;
}

export type ProgressCallback = (event: ProgressEvent) => void;

/** An item that was not backed up or not restored, with the reason. */
export interface SkippedItem {
  readonly user: string;
  readonly mailbox?: string;
  readonly uid?: number;
  readonly code: string;
  readonly reason: string;
  /** What to do about it, when the error said. */
  readonly hint?: string;
}

/** A message that is in the dump, but with less than the store should have told (MessageInfo.warning). */
export interface WarningItem {
  readonly user: string;
  readonly mailbox: string;
  /** Absent for a warning about the mailbox as a whole. */
  readonly uid?: number;
  readonly reason: string;
}

/** Decides what happens when one item fails: 'skip' it (listed in the summary) or 'abort' the run. */
export type ItemErrorPolicy = (item: { user: string; mailbox?: string; uid?: number }, error: MailvaultError) => 'skip' | 'abort';

/**
 * Default: skip items whose data is unreadable or gone, or that the store has not given a UID yet
 * (NO_UID: reported, carried by a later run) or stored in a form mailvault cannot read
 * (UNSUPPORTED_MESSAGE); abort on everything else (disk full, permission on the
 * output, ...).
 */
export const skipUnreadableItems: ItemErrorPolicy = (_item, error) =>
  ['STORAGE_NOT_FOUND', 'STORAGE_CORRUPT', 'INTEGRITY', 'PERMISSION_DENIED', 'NO_UID', 'UNSUPPORTED_MESSAGE'].includes(error.code) ? 'skip' : 'abort';

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
}
