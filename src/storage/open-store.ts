/**
 * The one place that maps a parsed mail_location to a concrete driver. Front ends call this; the
 * operations layer only ever sees the MessageSource / MessageSink interfaces.
 */
import type { MailLocation } from './location.js';
import type { MailStore, MessageSource } from './types.js';
import { UnsupportedLocationError } from '../core/errors.js';

// Drivers are imported when a location asks for them: a command starts by loading its modules, and a
// Maildir run need not load the dbox driver (and the other way round). Measured below in CHANGELOG.md.

export interface OpenStoreOptions {
  /** Dovecot mail_attachment_dir for dbox SIS (absolute). */
  readonly attachmentDir?: string | null;
  readonly lockTimeoutMs?: number;
  /** Sources: change nothing in the store (Maildir: files without a UID are reported, not given one). */
  readonly readOnly?: boolean;
  /** Create the mail root if missing (restore targets). */
  readonly create?: boolean;
  /** Open a missing mail root without creating it (restore --dry-run). */
  readonly absentOk?: boolean;
}

export async function openMessageSource(location: MailLocation, user: string, options: OpenStoreOptions = {}): Promise<MessageSource> {
  switch (location.driver) {
    case 'maildir': {
      const { openMaildirStore } = await import('./maildir/index.js');
      return openMaildirStore(location, user, { ...(options.lockTimeoutMs !== undefined ? { lockTimeoutMs: options.lockTimeoutMs } : {}), ...(options.readOnly === true ? { readOnly: true } : {}) });
    }
    case 'sdbox': {
      const { openSdboxStore } = await import('./dbox/single/index.js');
      return openSdboxStore(location, user, { attachmentDir: options.attachmentDir ?? null });
    }
    case 'mdbox': {
      const { openMdboxStore } = await import('./dbox/multi/index.js');
      return openMdboxStore(location, user, { attachmentDir: options.attachmentDir ?? null });
    }
  }
}

export async function openMailStore(location: MailLocation, user: string, options: OpenStoreOptions = {}): Promise<MailStore> {
  if (location.driver !== 'maildir') {
    throw new UnsupportedLocationError(`cannot restore into ${location.driver} files directly (${location.raw})`, {
      hint: 'restore into a live Dovecot through IMAP (--imap), or into a Maildir location (maildir:...)',
    });
  }
  const { openMaildirStore } = await import('./maildir/index.js');
  return openMaildirStore(location, user, {
    ...(options.lockTimeoutMs !== undefined ? { lockTimeoutMs: options.lockTimeoutMs } : {}),
    ...(options.create !== undefined ? { create: options.create } : {}),
    ...(options.absentOk === true ? { absentOk: true } : {}),
  });
}
