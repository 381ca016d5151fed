/**
 * The Dovecot 2.3 compatible Maildir driver: reads and writes Maildir++ and LAYOUT=fs stores with
 * dovecot-uidlist, dovecot-keywords, subscriptions and dovecot-uidvalidity, safe while Dovecot runs.
 * Files: mailbox-names (names <-> dirs), uidlist, keywords, filename, lock, subscriptions, uidvalidity,
 * permissions, index-header, reader (MailboxReader), read-ahead (+ read-files, read-ahead-worker: bodies
 * read and hashed in a worker thread for backups), listing and base-hash (uidlist joined with the
 * directories), fsync-queue, save (SaveTransaction), store (MailStore).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StorageNotFoundError, UnsupportedLocationError, fromSystemError } from '../../core/errors.js';
import type { MailLocation } from '../location.js';
import type { MailStore } from '../types.js';
import { MaildirNaming } from './mailbox-names.js';
import { DEFAULT_PERMISSIONS, makeDirs, permissionsFromRoot } from './permissions.js';
import { MAILDIR_CAPABILITIES, MaildirStore } from './store.js';

export { MAILDIR_CAPABILITIES };

export interface MaildirOpenOptions {
  /** Milliseconds to wait for dovecot-uidlist.lock before StorageLockTimeoutError (default 120_000, Dovecot waits 122 s). */
  lockTimeoutMs?: number;
  /** Create the mail root if missing (restore targets). Default false: a missing root is StorageNotFoundError. */
  create?: boolean;
  /**
   * A missing mail root is opened as it is, not created (restore --dry-run: a store that reads as empty
   * and must not be written to).
   */
  absentOk?: boolean;
  /** Host name written into lock files and new file names (default os.hostname()). */
  hostname?: string;
  /** Backups: change nothing in the store (files without a UID are reported, not given one). */
  readOnly?: boolean;
}

/** Nearest existing ancestor's stat (owner for a root we create). */
async function nearestExisting(dir: string): Promise<fs.Stats> {
  let cur = path.resolve(dir);
  for (;;) {
    try {
      return await fs.promises.stat(cur);
    } catch (e) {
      const parent = path.dirname(cur);
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || parent === cur) throw e;
      cur = parent;
    }
  }
}

export async function openMaildirStore(location: MailLocation, user: string, options: MaildirOpenOptions = {}): Promise<MailStore> {
  if (location.driver !== 'maildir') {
    throw new UnsupportedLocationError(`mail_location "${location.raw}" is not a Maildir location`, { user, hint: 'open it with the dbox driver' });
  }
  const root = location.root;
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(root);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const absent = code === 'ENOENT' && options.absentOk === true ? await nearestExisting(root).catch(() => null) : null;
    if (absent !== null && absent.isDirectory()) {
      return new MaildirStore(new MaildirNaming(location), user, {
        lockTimeoutMs: options.lockTimeoutMs ?? 120_000,
        hostname: options.hostname ?? process.env['DOVECOT_HOSTNAME'] ?? os.hostname(),
        perms: permissionsFromRoot(absent),
      });
    }
    if (code !== 'ENOENT' || !options.create) {
      if (code === 'ENOENT') {
        throw new StorageNotFoundError(`mail root ${root} of user ${user} does not exist`, {
          user,
          path: root,
          hint: 'check the mail_location and the user name (a user who never received mail has no Maildir yet)',
        });
      }
      throw fromSystemError(e, 'read the mail root', { path: root, user });
    }
    const parent = await nearestExisting(root).catch(() => null);
    const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    await makeDirs(root, { ...DEFAULT_PERMISSIONS, owner: isRoot && parent ? { uid: parent.uid, gid: parent.gid } : null });
    st = await fs.promises.stat(root);
  }
  if (!st.isDirectory()) {
    throw new StorageNotFoundError(`mail root ${root} of user ${user} is not a directory`, { user, path: root, hint: 'check the mail_location' });
  }
  try {
    await fs.promises.access(root, fs.constants.R_OK | fs.constants.X_OK);
  } catch (e) {
    throw fromSystemError(e, 'read the mail root', { path: root, user });
  }
  return new MaildirStore(new MaildirNaming(location), user, {
    lockTimeoutMs: options.lockTimeoutMs ?? 120_000,
    hostname: options.hostname ?? process.env['DOVECOT_HOSTNAME'] ?? os.hostname(),
    perms: permissionsFromRoot(st),
    ...(options.readOnly === true ? { readOnly: true } : {}),
  });
}
