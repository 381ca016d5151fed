/**
 * dbox mailbox list (reference 2.1): every directory under `<root>/mailboxes/` (or symlink to one) that
 * holds a `dbox-Mails` (DIRNAME=) directory is a mailbox; levels without one are \NoSelect parents.
 * Names on disk are mUTF-7 unless the location has the UTF-8 flag. Also the `subscriptions` file (1.9).
 */
import type { PathLike, Stats } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { StorageNotFoundError, fromSystemError } from '../../../core/errors.js';
import type { MailLocation } from '../../location.js';
import { encodeMutf7, tryDecodeMutf7 } from '../../mutf7.js';

export const DEFAULT_DIRNAME = 'dbox-Mails';

export interface DboxMailboxEntry {
  /** UTF-8, "/" separated. */
  readonly name: string;
  /** Directory components as stored on disk. */
  readonly storageParts: readonly string[];
  readonly selectable: boolean;
  /**
   * Why the mailbox cannot be read although its directory exists: its name is not valid UTF-8, so it
   * has no name a dump can hold and no path a string can spell. Dovecot renames such a directory the
   * next time it lists the mailboxes (list/mailbox-list-fs-iter.c:fs_list_rename_invalid); until then
   * it is listed, and opening it fails with this reason, so a backup reports it rather than leave it out.
   */
  readonly unreadable?: string;
  /**
   * Other mailbox directories (selectable: they have a mail directory, whether or not it holds mail)
   * that give this same name (`R&-D` and the invalid mUTF-7 `R&D` are both "R&D"; `inbox` and
   * `INBOX`): a dump holds one mailbox per name, so what they hold is not backed up under it. The
   * reader reports each one (MailboxReader.notListed) instead of leaving it out unsaid.
   */
  readonly shadowed?: readonly string[];
}

export function dirnameOf(loc: MailLocation): string {
  return loc.dirname ?? DEFAULT_DIRNAME;
}

/**
 * Virtual name of one stored component. A component that is not valid mUTF-7 keeps its stored
 * spelling, as mailbox-list.c:mailbox_list_default_get_vname_part does ("Invalid mUTF7 ... just return
 * it as the original mUTF7 name"), and as the Maildir driver does (maildir/mailbox-names.ts): one odd
 * directory must not fail the user's listing. Such a name does not round-trip (encoding "R&D" gives
 * "R&-D"), so readers find its directory through the listing's storageParts, and a restore writes it
 * under the encoded name, where Dovecot shows it under the same name.
 */
function decodePart(part: string, loc: MailLocation): string {
  if (loc.utf8) return part;
  return tryDecodeMutf7(part) ?? part;
}

/** Storage (on-disk) components of a UTF-8 mailbox name. */
export function storageParts(name: string, loc: MailLocation): string[] {
  const parts = name.split('/');
  return loc.utf8 ? parts : parts.map((p) => encodeMutf7(p));
}

/**
 * Whether `p` is a directory, following symlinks (stat, as list_is_maildir_mailbox does). A name that
 * no longer resolves (removed while listing, or a dangling symlink) is not one: Dovecot marks it
 * MAILBOX_NONEXISTENT. Any other failure is raised: a folder must not vanish from the list unnoticed.
 */
async function statDirectory(p: PathLike): Promise<Stats | null> {
  try {
    const st = await stat(p);
    return st.isDirectory() ? st : null;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw fromSystemError(e, 'list mailboxes', { path: p.toString() });
  }
}

/**
 * List all mailboxes, sorted by name in UTF-8 byte order. Follows Dovecot's fs layout iteration
 * (list/mailbox-list-fs-iter.c:dir_entry_get, list/mailbox-list-fs-flags.c:list_is_maildir_mailbox):
 * every entry but the DIRNAME directory itself is a candidate, names starting with "." included (only
 * "." and ".." are not names, and readdir never returns them); directories, symlinks and entries of
 * unknown type are stat()ed, so a symlink to a directory is a folder; plain files are not folders. A
 * folder is selectable when `<folder>/<DIRNAME>` is a directory (again through symlinks).
 * Unlike Dovecot, a symlink back to a directory already on the current path is not descended into
 * again: that would only repeat the same folders under ever longer names. A directory whose name is
 * not valid UTF-8 is listed with `unreadable` set (see DboxMailboxEntry), not descended into.
 */
export async function listDboxMailboxes(loc: MailLocation): Promise<DboxMailboxEntry[]> {
  const top = path.join(loc.root, 'mailboxes');
  const dirname = dirnameOf(loc);
  const out: DboxMailboxEntry[] = [];
  const walk = async (dir: string, parts: string[], ancestors: ReadonlySet<string>): Promise<void> => {
    let entries;
    try {
      // Names as bytes: a name that is not UTF-8 would come back with U+FFFD, a path that does not exist.
      entries = await readdir(dir, { withFileTypes: true, encoding: 'buffer' });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && parts.length === 0) throw new StorageNotFoundError(`no dbox mail store at ${loc.root}: ${top} does not exist`, { path: top, hint: 'check the mail_location and the user' });
      if (code === 'ENOENT') return; // removed while listing
      throw fromSystemError(e, 'list mailboxes', { path: dir });
    }
    if (parts.length > 0) {
      const selectable = (await statDirectory(path.join(dir, dirname))) !== null;
      out.push({ name: parts.map((p) => decodePart(p, loc)).join('/'), storageParts: parts, selectable });
    }
    for (const e of entries) {
      const name = e.name.toString('utf8');
      if (name === dirname) continue;
      // d_type FILE or OTHER: "non-directories aren't valid" (list_is_maildir_mailbox). Node has
      // already lstat()ed entries whose d_type was DT_UNKNOWN, so there is no unknown type here.
      if (!e.isDirectory() && !e.isSymbolicLink()) continue;
      if (!Buffer.from(name, 'utf8').equals(e.name)) {
        if ((await statDirectory(Buffer.concat([Buffer.from(dir + path.sep), e.name]))) === null) continue;
        const unreadable = `its directory name "${escapeBytes(e.name)}" in ${dir} is not valid UTF-8`;
        out.push({ name: [...parts.map((p) => decodePart(p, loc)), name].join('/'), storageParts: [...parts, name], selectable: true, unreadable });
        continue;
      }
      const full = path.join(dir, name);
      const st = await statDirectory(full);
      if (st === null) continue;
      const id = `${st.dev}:${st.ino}`;
      if (ancestors.has(id)) continue;
      await walk(full, [...parts, name], new Set([...ancestors, id]));
    }
  };
  const topStat = await statDirectory(top);
  await walk(top, [], new Set(topStat ? [`${topStat.dev}:${topStat.ino}`] : []));
  const inboxOnDisk = out.some((m) => m.name === 'INBOX');
  if (loc.inbox && !inboxOnDisk) out.push({ name: 'INBOX', storageParts: ['INBOX'], selectable: true });
  // Two directories can give one name ("R&-D" and the invalid "R&D" are both "R&D"; "inbox" and
  // "INBOX"). One name can only be one mailbox in a dump: keep a selectable one over a \NoSelect level
  // (that is where the mail is), then the one whose directory the name encodes to (the one Dovecot
  // opens for the name, and the one the Maildir driver keeps in the same case).
  // The others, where they are mailboxes (selectable), are named in the kept entry's `shadowed`:
  // reported, not dropped.
  const rank = (m: DboxMailboxEntry): number => (m.selectable ? 2 : 0) + (roundTrips(m, loc) ? 1 : 0);
  const byName = new Map<string, DboxMailboxEntry>();
  const losers = new Map<string, string[]>();
  const lose = (m: DboxMailboxEntry): void => {
    if (m.selectable) (losers.get(m.name) ?? losers.set(m.name, []).get(m.name)!).push(mailboxMailDir(loc, m.storageParts));
  };
  for (const m of out.map((e) => (e.name.toUpperCase() === 'INBOX' ? { ...e, name: 'INBOX' } : e))) {
    const kept = byName.get(m.name);
    if (kept === undefined) byName.set(m.name, m);
    else if (rank(m) > rank(kept)) {
      byName.set(m.name, m);
      lose(kept);
    } else lose(m);
  }
  return [...byName.values()]
    .map((m) => (losers.has(m.name) ? { ...m, shadowed: losers.get(m.name)! } : m))
    .sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
}

/** Printable ASCII as is, other bytes as \xNN. */
function escapeBytes(b: Buffer): string {
  return [...b].map((c) => (c >= 0x20 && c < 0x7f && c !== 0x5c && c !== 0x22 ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`)).join('');
}

function roundTrips(m: DboxMailboxEntry, loc: MailLocation): boolean {
  return storageParts(m.name, loc).join('/') === m.storageParts.join('/');
}

/** Mail directory (holding u.N files or the mdbox mailbox index) of a mailbox. */
export function mailboxMailDir(loc: MailLocation, parts: readonly string[]): string {
  if (loc.inbox && parts.length === 1 && parts[0] === 'INBOX') return loc.inbox;
  return path.join(loc.root, 'mailboxes', ...parts, dirnameOf(loc));
}

/** Candidate index directories of a mailbox, most likely first. */
export function mailboxIndexDirs(loc: MailLocation, parts: readonly string[]): string[] {
  if (loc.index && loc.index !== 'MEMORY') {
    return [path.join(loc.index, 'mailboxes', ...parts, dirnameOf(loc)), path.join(loc.index, 'mailboxes', ...parts)];
  }
  return [mailboxMailDir(loc, parts)];
}

/** Alternate-storage directory of a mailbox (ALT=), or null. */
export function mailboxAltDir(loc: MailLocation, parts: readonly string[]): string | null {
  return loc.alt ? path.join(loc.alt, 'mailboxes', ...parts, dirnameOf(loc)) : null;
}

function unescapeSubscription(part: string): string {
  const map: Record<string, string> = { '0': '\x00', '1': '\x01', t: '\t', r: '\r', n: '\n' };
  return part.replace(/\x01([01trn])/g, (_m, c: string) => map[c]!);
}

/** Subscribed names (UTF-8, "/"), sorted; an absent file means none. */
export async function readDboxSubscriptions(loc: MailLocation): Promise<string[]> {
  const file = path.join(loc.control ?? loc.root, 'subscriptions');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw fromSystemError(e, 'read the subscriptions file', { path: file });
  }
  let lines: string[][];
  if (text.startsWith('V\t2\n')) {
    const body = text.slice(text.indexOf('\n\n') >= 0 ? text.indexOf('\n\n') + 2 : text.length);
    lines = body.split('\n').filter((l) => l !== '').map((l) => l.split('\t').map(unescapeSubscription));
  } else {
    lines = text.split('\n').filter((l) => l !== '').map((l) => l.split('/'));
  }
  const names = new Set<string>();
  for (const parts of lines) {
    const name = parts.map((p) => decodePart(p, loc)).join('/');
    names.add(name.toUpperCase() === 'INBOX' ? 'INBOX' : name);
  }
  return [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}
