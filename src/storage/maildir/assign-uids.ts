/**
 * Giving UIDs to message files the uidlist does not list yet, as Dovecot's own sync does
 * (maildir-sync.c maildir_scan_dir -> maildir-uidlist.c maildir_uidlist_assign_uids): under the
 * uidlist lock, the files still unlisted once the uidlist has been read again get the next UIDs in
 * maildir_filename_sort_cmp order, appended as records "<uid> :<base>". Dovecot's index catches up at
 * its next sync of the mailbox, as it does after another Dovecot process assigned UIDs.
 *
 * Such files are common: mail delivered into new/ by Postfix, Exim, procmail or maildrop waits there
 * until the user next opens the folder; a folder filled that way and never opened has no uidlist at
 * all; Dovecot itself leaves one when a delivery could not get the uidlist lock at once
 * (maildir_transaction_save_commit_pre). Without a UID they are not messages of the mailbox yet, and
 * a backup would leave them out.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { StorageCorruptError, fromSystemError, isMailvaultError } from '../../core/errors.js';
import { baseName } from './filename.js';
import { readIndexHeader } from './index-header.js';
import { acquireDotlock } from './lock.js';
import type { MailboxPaths } from './mailbox-names.js';
import { makeDirs, type CreatePermissions } from './permissions.js';
import { scanMailDirs, UIDLIST_FILE } from './reader.js';
import { readUidlist, type UidlistRecord } from './uidlist.js';
import { firstFreeUid, uidValidityFor, writeUidlistRecords } from './uidlist-write.js';

export interface AssignUidsContext {
  readonly user: string;
  readonly hostname: string;
  readonly lockTimeoutMs: number;
  readonly perms: CreatePermissions;
  /** `<root control dir>/dovecot-uidvalidity`, for a mailbox without a uidlist. */
  readonly uidValidityPath: string;
}

const MAX_UID = 0xfffffffe;

/** The leading decimal digits of a file name (its delivery time), as Dovecot reads them. */
function leadingSeconds(name: string): { secs: number; rest: number } {
  let i = 0;
  let secs = 0;
  while (i < name.length && name.charCodeAt(i) >= 0x30 && name.charCodeAt(i) <= 0x39) secs = secs * 10 + (name.charCodeAt(i++) - 0x30);
  return { secs, rest: i };
}

/** Microseconds: the digits after "M" in the uniqueness part (".<uniq>.<host>") after the time, or null. */
function microseconds(name: string, from: number): number | null {
  if (name[from] !== '.') return null;
  for (let i = from + 1; i < name.length && name[i] !== '.' && name[i] !== ':'; ) {
    if (name[i++] === 'M') {
      let usecs = 0;
      while (i < name.length && name.charCodeAt(i) >= 0x30 && name.charCodeAt(i) <= 0x39) usecs = usecs * 10 + (name.charCodeAt(i++) - 0x30);
      return usecs;
    }
  }
  return null;
}

/** True if Dovecot has index files for the mailbox (dovecot.index or its transaction log). */
function hasIndexFiles(indexDir: string | null): boolean {
  if (indexDir === null) return false;
  return ['dovecot.index', 'dovecot.index.log'].some((f) => fs.existsSync(path.join(indexDir, f)));
}

/**
 * maildir_filename_sort_cmp: by the time at the start of the name, then by microseconds where both
 * names have them, then by the base names' bytes.
 */
export function compareMaildirFileNames(a: string, b: string): number {
  const ta = leadingSeconds(a);
  const tb = leadingSeconds(b);
  if (ta.secs !== tb.secs) return ta.secs < tb.secs ? -1 : 1;
  const ua = microseconds(a, ta.rest);
  const ub = microseconds(b, tb.rest);
  if (ua !== null && ub !== null && ua !== ub) return ua < ub ? -1 : 1;
  return baseCompare(Buffer.from(a.slice(ta.rest), 'utf8'), Buffer.from(b.slice(tb.rest), 'utf8'));
}

/**
 * maildir_filename_base_cmp: bytes up to the first ":" or the end; where they differ, the difference
 * of the two bytes as C chars (signed on the platforms Dovecot runs on; ":" and the end count as they
 * are), so "x,S=1" sorts before "x:2,S" but after "x".
 */
function baseCompare(a: Buffer, b: Buffer): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i] && a[i] !== 0x3a) i++;
  const ca = i < a.length ? a[i]! : 0;
  const cb = i < b.length ? b[i]! : 0;
  if ((ca === 0 || ca === 0x3a) && (cb === 0 || cb === 0x3a)) return 0;
  return ((ca << 24) >> 24) - ((cb << 24) >> 24);
}

/**
 * Give UIDs to the files of `paths` that its uidlist does not list. Returns how many got one (0 when
 * Dovecot listed them meanwhile). Throws what stops it (the lock held too long, a read-only file
 * system, a corrupt uidlist): the caller reports those files as not backed up.
 */
export async function assignUidsToUnlisted(paths: MailboxPaths, ctx: AssignUidsContext): Promise<number> {
  const uidlistPath = path.join(paths.controlDir, UIDLIST_FILE);
  const where = { user: ctx.user, mailbox: paths.name };
  let lock: Awaited<ReturnType<typeof acquireDotlock>> | null = null;
  try {
    await makeDirs(paths.controlDir, ctx.perms);
    lock = await acquireDotlock(uidlistPath, { timeoutMs: ctx.lockTimeoutMs, staleMs: 120_000, hostname: ctx.hostname, writePid: true, mode: ctx.perms.fileMode, owner: ctx.perms.owner, ...where });
    // Under the lock the uidlist is final: read it and the directories again.
    const uidlist = await readUidlist(uidlistPath, where);
    const listed = new Set((uidlist?.records ?? []).map((r) => r.base));
    const files = await scanMailDirs(paths.mailDir);
    // A name that is not valid UTF-8 reads back with U+FFFD in it (Node decodes file names as UTF-8): a
    // record of that text would name no file. Such files are left unlisted (the store reports them).
    const bases = [...files.values()].map((f) => f.name).filter((name) => !listed.has(baseName(name)) && !name.includes('\uFFFD'));
    if (bases.length === 0) return 0;
    bases.sort(compareMaildirFileNames);
    // Without a uidlist, the UIDs Dovecot gave so far are known only to its index: the snapshot file
    // may lag its log, and a UIDVALIDITY or next UID taken from it could make Dovecot reset the
    // mailbox or see one UID name two messages. Dovecot rebuilds from both (maildir_sync_update_next_uid);
    // leave that to it. A folder Dovecot never opened has no index files, and gets a new uidlist here.
    if (uidlist === null && hasIndexFiles(paths.indexDir)) {
      throw new StorageCorruptError(`mailbox "${paths.name}" of user ${ctx.user} has Dovecot index files but no dovecot-uidlist: the UIDs Dovecot gave are known only to its index`, {
        ...where,
        path: uidlistPath,
        hint: `let Dovecot rebuild the uidlist (doveadm force-resync -u ${ctx.user} '${paths.name}'), then back up again`,
      });
    }
    const index = await readIndexHeader(paths.indexDir);
    const uidValidity = await uidValidityFor(uidlist, index, ctx.uidValidityPath, ctx.perms);
    let next = firstFreeUid(uidlist, index, uidValidity);
    if (next + bases.length - 1 > MAX_UID) throw fromSystemError(new Error('no UIDs left'), 'give UIDs to new files', { path: uidlistPath, ...where });
    const records: UidlistRecord[] = bases.map((name) => ({ uid: next++, base: baseName(name), ext: {} }));
    const guid = uidlist?.header.guid ?? crypto.randomBytes(16).toString('hex');
    await writeUidlistRecords(uidlistPath, uidlist, records, { uidValidity, nextUid: next, guid }, ctx.perms, where);
    return records.length;
  } catch (e) {
    if (isMailvaultError(e)) throw e;
    throw fromSystemError(e, 'give UIDs to files Dovecot has not listed yet', { path: uidlistPath, ...where });
  } finally {
    await lock?.release();
  }
}
