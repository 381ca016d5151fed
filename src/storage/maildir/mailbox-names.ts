/**
 * Virtual mailbox names (UTF-8, "/"-separated, "INBOX") <-> directories, for both Maildir layouts
 * (Dovecot's mailbox-list-maildir.c and mailbox-list-fs.c with the maildir storage):
 *
 * - Maildir++ (default): list separator "."; `Work/Projects` is `<root>/.Work.Projects`. A "." inside a
 *   name cannot be stored. INBOX is the root (or INBOX=).
 * - LAYOUT=fs: real directories, `<root>/Work/Projects`; "cur", "new", "tmp" are reserved components;
 *   a directory without cur/ is a \NoSelect parent. INBOX is the root (or INBOX=).
 * - Components are modified UTF-7 on disk unless the UTF-8 flag is set. A directory whose name is not
 *   valid mUTF-7 is listed under its raw name (as Dovecot's mailbox_list_get_vname() does).
 * - CONTROL= / INDEX= put control and index files in a parallel tree: Maildir++ `<dir>/.<storage name>`
 *   (INBOX: `<dir>/.INBOX`), fs `<dir>/<storage name>` (INBOX: `<dir>/INBOX`) [source: list get_path].
 */
import fs from 'node:fs';
import path from 'node:path';
import { MailboxNameError, fromSystemError } from '../../core/errors.js';
import type { MailLocation } from '../location.js';
import { encodeMutf7, tryDecodeMutf7 } from '../mutf7.js';

export interface MailboxPaths {
  /** Virtual name. */
  readonly name: string;
  /** Directory holding cur/ new/ tmp/. */
  readonly mailDir: string;
  /** Directory holding dovecot-uidlist and dovecot-keywords. */
  readonly controlDir: string;
  /** Directory holding dovecot.index*, or null with INDEX=MEMORY. */
  readonly indexDir: string | null;
}

export interface ListedMailbox {
  readonly paths: MailboxPaths;
  readonly selectable: boolean;
}

const RESERVED_FS = new Set(['cur', 'new', 'tmp']);

/**
 * Name limits of Dovecot's mailbox_verify_create_name (lib-storage/mail-storage.c): a hierarchy level may
 * have up to MAILBOX_MAX_HIERARCHY_NAME_LENGTH (255) bytes and a whole name MAILBOX_LIST_NAME_MAX_LENGTH
 * (PATH_MAX, 4096). The directory names on disk must also fit the filesystem's NAME_MAX (255): in
 * Maildir++ that is the whole name, in LAYOUT=fs each level.
 */
const MAX_LEVEL_BYTES = 255;
const MAX_NAME_BYTES = 4096;
const NAME_MAX = 255;

/** Compare names by their UTF-8 bytes. */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** "INBOX" in any case is spelled "INBOX". */
export function normalizeMailboxName(name: string): string {
  return name.toUpperCase() === 'INBOX' ? 'INBOX' : name;
}

export class MaildirNaming {
  readonly listSep: '.' | '/';
  readonly root: string;
  readonly inboxDir: string;
  /** Root of control files (dovecot-uidvalidity, subscriptions). */
  readonly rootControlDir: string;

  constructor(readonly location: MailLocation) {
    this.listSep = location.layout === 'fs' ? '/' : '.';
    this.root = location.root;
    this.inboxDir = location.inbox ?? location.root;
    this.rootControlDir = location.control ?? location.root;
  }

  get subscriptionsPath(): string {
    return path.join(this.rootControlDir, 'subscriptions');
  }

  get uidValidityPath(): string {
    return path.join(this.rootControlDir, 'dovecot-uidvalidity');
  }

  encodeComponent(component: string): string {
    return this.location.utf8 ? component : encodeMutf7(component);
  }

  decodeComponent(component: string): string {
    if (this.location.utf8) return component;
    return tryDecodeMutf7(component) ?? component;
  }

  /** Throws UsageError if `name` cannot be a mailbox in this store. */
  validateName(name: string): void {
    const reject = (why: string, hint?: string): never => {
      throw new MailboxNameError(`mailbox name "${name}" cannot be stored in ${this.location.raw}: ${why}`, {
        mailbox: name,
        hint: hint ?? 'rename the mailbox, or restore into a store with another layout',
      });
    };
    if (name === '') reject('the name is empty');
    if (name.startsWith('~')) reject('it starts with "~"');
    if (/[\0\r\n]/.test(name)) reject('it contains a NUL, CR or LF');
    const parts = name.split('/');
    for (const p of parts) {
      if (p === '') reject('it has an empty hierarchy level ("//", or "/" at the start or end)');
      if (p === '.' || p === '..') reject('"." and ".." are not allowed as hierarchy levels');
      if (this.listSep === '.' && p.includes('.')) {
        reject('"." is the Maildir++ hierarchy separator and has no escape', 'rename the mailbox, or restore into a LAYOUT=fs Maildir or a dbox store');
      }
      if (this.listSep === '/' && RESERVED_FS.has(p)) reject(`"${p}" is reserved by Maildir in LAYOUT=fs`);
    }
    if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) reject(`the name is longer than ${MAX_NAME_BYTES} bytes`);
    for (const p of parts) {
      const bytes = Buffer.byteLength(p, 'utf8');
      if (bytes > MAX_LEVEL_BYTES) reject(`its hierarchy level "${p.slice(0, 24)}..." is ${bytes} bytes, longer than the ${MAX_LEVEL_BYTES} Dovecot allows per level`);
    }
    if (this.listSep === '.') {
      // The whole name is one directory, ".<storage name>".
      const bytes = 1 + Buffer.byteLength(this.storageName(name), 'utf8');
      if (bytes > NAME_MAX) reject(`its directory name ".${this.storageName(name).slice(0, 24)}..." would be ${bytes} bytes, longer than the ${NAME_MAX} a filesystem allows`, 'shorten the name, or restore into a LAYOUT=fs Maildir, which has one directory per level');
    } else {
      // One directory per level: each level's name on disk (mUTF-7 unless UTF-8) must fit.
      for (const p of parts) {
        const onDisk = this.encodeComponent(p);
        const bytes = Buffer.byteLength(onDisk, 'utf8');
        if (bytes > NAME_MAX) reject(`its hierarchy level "${p.slice(0, 24)}..." is ${bytes} bytes on disk, longer than the ${NAME_MAX} a filesystem allows for a directory name`);
      }
    }
  }

  /** Storage name: encoded components joined with the list separator. */
  storageName(name: string): string {
    return name.split('/').map((c) => this.encodeComponent(c)).join(this.listSep);
  }

  private under(dir: string, storageName: string): string {
    return this.listSep === '.' ? path.join(dir, `.${storageName}`) : path.join(dir, storageName);
  }

  /** Paths of mailbox `name` (not checked for existence). */
  paths(name: string): MailboxPaths {
    const vname = normalizeMailboxName(name);
    const idx = this.location.index;
    if (vname === 'INBOX') {
      const mailDir = this.inboxDir;
      return {
        name: vname,
        mailDir,
        controlDir: this.location.control ? this.under(this.location.control, 'INBOX') : mailDir,
        indexDir: idx === 'MEMORY' ? null : idx ? this.under(idx, 'INBOX') : mailDir,
      };
    }
    const storage = this.storageName(vname);
    const mailDir = this.under(this.root, storage);
    return {
      name: vname,
      mailDir,
      controlDir: this.location.control ? this.under(this.location.control, storage) : mailDir,
      indexDir: idx === 'MEMORY' ? null : idx ? this.under(idx, storage) : mailDir,
    };
  }

  /** Paths for a directory found on disk (keeps the real directory even if the name does not round-trip). */
  private pathsFor(name: string, storageName: string): MailboxPaths {
    const idx = this.location.index;
    const mailDir = this.under(this.root, storageName);
    return {
      name,
      mailDir,
      controlDir: this.location.control ? this.under(this.location.control, storageName) : mailDir,
      indexDir: idx === 'MEMORY' ? null : idx ? this.under(idx, storageName) : mailDir,
    };
  }

  /** Every mailbox on disk, INBOX first then by UTF-8 bytes. Throws if the root is missing/unreadable. */
  async list(): Promise<ListedMailbox[]> {
    const found = new Map<string, ListedMailbox>();
    const inbox = this.paths('INBOX');
    found.set('INBOX', { paths: inbox, selectable: true });
    const skip = new Set([this.location.control, this.location.index, this.location.inbox].filter((p): p is string => !!p && p !== this.root).map((p) => path.resolve(p)));
    const add = (name: string, storageName: string, selectable: boolean): void => {
      const existing = found.get(name);
      const roundTrips = this.storageName(name) === storageName;
      if (existing && !roundTrips) return;
      found.set(name, { paths: this.pathsFor(name, storageName), selectable: existing ? existing.selectable || selectable : selectable });
    };
    if (this.listSep === '.') {
      for (const entry of await readDir(this.root)) {
        if (!entry.startsWith('.') || entry.startsWith('..') || entry === '.') continue;
        const full = path.join(this.root, entry);
        if (skip.has(full) || !(await isDirectory(full))) continue;
        const storage = entry.slice(1);
        const parts = storage.split('.');
        if (parts.some((p) => p === '')) continue;
        const name = parts.map((p) => this.decodeComponent(p)).join('/');
        if (name.toUpperCase() === 'INBOX') continue;
        // Maildir++: the directory's existence makes the mailbox exist (Dovecot creates cur/ on open).
        add(name, storage, true);
      }
    } else {
      const visited = new Set<string>();
      const walk = async (dir: string, prefix: string[], depth: number): Promise<void> => {
        if (depth > 64) return;
        const st = await fs.promises.stat(dir).catch(() => null);
        if (st === null) return;
        const key = `${st.dev}:${st.ino}`;
        if (visited.has(key)) return;
        visited.add(key);
        for (const entry of await readDir(dir)) {
          if (entry === '.' || entry === '..' || RESERVED_FS.has(entry)) continue;
          const full = path.join(dir, entry);
          if (skip.has(full) || !(await isDirectory(full))) continue;
          const storageParts = [...prefix, entry];
          const name = storageParts.map((p) => this.decodeComponent(p)).join('/');
          if (!(depth === 0 && entry === 'INBOX')) add(name, storageParts.join('/'), await isDirectory(path.join(full, 'cur')));
          await walk(full, storageParts, depth + 1);
        }
      };
      await walk(this.root, [], 0);
    }
    return [...found.values()].sort((a, b) => compareUtf8(a.paths.name, b.paths.name));
  }
}

async function readDir(dir: string): Promise<string[]> {
  try {
    return await fs.promises.readdir(dir);
  } catch (e) {
    throw fromSystemError(e, 'list the mailbox directory', { path: dir });
  }
}

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await fs.promises.stat(p)).isDirectory();
  } catch {
    return false;
  }
}
