/**
 * One user's Maildir store (Dovecot 2.3 compatible), read and write. See index.ts for the entry point and
 * reader.ts / save.ts for the per-mailbox rules.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { MessageWithoutUidError, StorageCorruptError, StorageNotFoundError, UsageError, fromSystemError, isMailvaultError, type MailvaultError } from '../../core/errors.js';
import type {
  CreateMailboxOptions,
  DriverCapabilities,
  MailboxEntry,
  MailboxInfo,
  MailboxReader,
  MailStore,
  SaveTransaction,
} from '../types.js';
import { assignUidsToUnlisted } from './assign-uids.js';
import { acquireDotlock } from './lock.js';
import { compareUtf8, normalizeMailboxName, type MailboxPaths, type MaildirNaming } from './mailbox-names.js';
import { createFile, makeDirs, writeFileAtomic, type CreatePermissions } from './permissions.js';
import { maildirChangeToken } from './change-token.js';
import { readIndexKeywords } from './index-keywords.js';
import { keywordKey } from '../flags.js';
import { readKeywords } from './keywords.js';
import { KEYWORDS_FILE, MaildirMailboxReader, UIDLIST_FILE, loadMailboxState, scanMailDirs, type MailboxState } from './reader.js';
import { MaildirSaveTransaction } from './save.js';
import { addSubscriptions, readSubscriptions } from './subscriptions.js';
import { formatUidlistHeader, formatUidlistRecord, parseUidlistHeader, readUidlist } from './uidlist.js';
import { nextUidValidity } from './uidvalidity.js';

export const MAILDIR_CAPABILITIES: DriverCapabilities = Object.freeze({
  preservesUids: true,
  preservesMailboxIdentity: true,
  hasMessageGuids: true,
  hasModseq: false,
  hasSaveDate: false,
  sis: false,
  filePerMessage: true,
  writable: true,
});

export interface MaildirStoreSettings {
  readonly lockTimeoutMs: number;
  readonly hostname: string;
  readonly perms: CreatePermissions;
  /** Never write to the store while reading it: files without a UID are reported, not given one. */
  readonly readOnly?: boolean;
}

const GUID_RE = /^[0-9a-fA-F]{32}$/;

async function isDir(p: string): Promise<boolean> {
  try {
    return (await fs.promises.stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** What changes when a Maildir mailbox changes: uidlist identity and size, and the new/ cur/ mtimes (ns). */
function stateStamp(paths: MailboxPaths): string | null {
  try {
    const u = fs.statSync(path.join(paths.controlDir, UIDLIST_FILE), { bigint: true });
    const n = fs.statSync(path.join(paths.mailDir, 'new'), { bigint: true });
    const c = fs.statSync(path.join(paths.mailDir, 'cur'), { bigint: true });
    return `${u.dev}:${u.ino}:${u.size}:${u.mtimeNs}|${n.mtimeNs}|${c.mtimeNs}`;
  } catch {
    return null;
  }
}

export class MaildirStore implements MailStore {
  readonly driverName = 'maildir';
  readonly capabilities = MAILDIR_CAPABILITIES;

  constructor(
    private readonly naming: MaildirNaming,
    readonly user: string,
    private readonly settings: MaildirStoreSettings,
  ) {}

  private notFound(name: string, why = 'does not exist'): StorageNotFoundError {
    return new StorageNotFoundError(`mailbox "${name}" of user ${this.user} ${why} in ${this.naming.location.raw}`, {
      user: this.user,
      mailbox: name,
      path: this.naming.root,
      hint: 'list the mailboxes with "mailvault list" and check the name (hierarchy separator "/")',
    });
  }

  /** Paths of an existing mailbox, and whether it is selectable; null if there is no such mailbox. */
  private async resolve(name: string): Promise<{ paths: MailboxPaths; selectable: boolean } | null> {
    const vname = normalizeMailboxName(name);
    if (vname === 'INBOX') return { paths: this.naming.paths('INBOX'), selectable: true };
    let direct: MailboxPaths | null = null;
    try {
      direct = this.naming.paths(vname);
    } catch {
      direct = null;
    }
    if (direct && (await isDir(direct.mailDir))) {
      const selectable = this.naming.listSep === '.' || (await isDir(path.join(direct.mailDir, 'cur')));
      return { paths: direct, selectable };
    }
    // A root that does not exist (restore --dry-run into a new target: MaildirOpenOptions.absentOk)
    // holds no mailbox.
    if (!(await isDir(this.naming.location.root))) return null;
    // Names that do not round-trip (a directory that is not valid mUTF-7, or not valid UTF-8) are only
    // found by listing. Such a directory decodes to a name with "&" or a non-ASCII character (U+FFFD
    // included); any other name has one directory only, the direct path. (Listing for every name made
    // a restore of 2,000 new mailboxes take 97-330 s: each lookup listed all mailboxes made so far.)
    if (!/[&\u0080-\uffff]/.test(vname)) return null;
    const listed = (await this.naming.list()).find((m) => m.paths.name === vname);
    return listed ? { paths: listed.paths, selectable: listed.selectable } : null;
  }

  async listMailboxes(): Promise<MailboxInfo[]> {
    const out: MailboxInfo[] = [];
    for (const m of await this.naming.list()) {
      if (!m.selectable) {
        out.push({ name: m.paths.name, guid: null, uidValidity: 0, uidNext: 1, highestModseq: null, messageCount: 0, specialUse: [], selectable: false });
        continue;
      }
      try {
        out.push((await this.loadState(m.paths)).info);
      } catch (e) {
        // One damaged mailbox must not hide the others: list it without state; openMailbox() raises
        // the error, so a backup skips that mailbox alone and names the file.
        if (!(e instanceof StorageCorruptError)) throw e;
        out.push({ name: m.paths.name, guid: null, uidValidity: 0, uidNext: 1, highestModseq: null, messageCount: 0, specialUse: [], selectable: true });
      }
    }
    return out;
  }

  async listMailboxEntries(): Promise<MailboxEntry[]> {
    const out: MailboxEntry[] = [];
    for (const m of await this.naming.list()) {
      const { paths } = m;
      const changeToken = m.selectable ? maildirChangeToken(path.join(paths.controlDir, UIDLIST_FILE), path.join(paths.controlDir, KEYWORDS_FILE), paths.mailDir, paths.indexDir) : null;
      out.push({ name: paths.name, specialUse: [], selectable: m.selectable, changeToken });
    }
    return out;
  }

  async listSubscriptions(): Promise<string[]> {
    const file = await readSubscriptions(this.naming.subscriptionsPath, this.naming.listSep);
    const names = new Set<string>();
    for (const parts of file?.entries ?? []) {
      if (parts.length === 0 || parts.every((p) => p === '')) continue;
      names.add(normalizeMailboxName(parts.map((p) => this.naming.decodeComponent(p)).join('/')));
    }
    return [...names].sort(compareUtf8);
  }

  async openMailbox(name: string): Promise<MailboxReader> {
    const found = await this.resolve(name);
    if (!found) throw this.notFound(name);
    if (!found.selectable) throw this.notFound(name, 'is only a hierarchy level (\\NoSelect), not a mailbox');
    const state = await this.loadState(found.paths);
    return new MaildirMailboxReader(state, this.user, await readIndexKeywords(found.paths.indexDir, state.info.uidValidity, state.keywords));
  }

  /**
   * The mailbox's state (uidlist, keywords, listing of new/ and cur/). A state loaded by
   * listMailboxes() is reused by openMailbox() when nothing changed in between: same uidlist (inode,
   * size, mtime) and same mtimes of new/ and cur/ (renames, deliveries and expunges change those).
   * Each state is used once, so a reader never shares mutable state with another.
   */
  private async loadState(paths: MailboxPaths): Promise<MailboxState> {
    const key = paths.mailDir;
    const stamp = stateStamp(paths);
    const cached = this.stateCache.get(key);
    this.stateCache.delete(key);
    if (cached && stamp !== null && cached.stamp === stamp) return cached.state;
    const state = await loadMailboxState(paths, this.user);
    if (state.listing.unlisted.length > 0) return await this.withUids(paths, state);
    if (stamp !== null && stamp === stateStamp(paths)) this.stateCache.set(key, { stamp, state });
    return state;
  }

  /**
   * The state of a mailbox with files its uidlist does not list: they are given UIDs as Dovecot's next
   * sync would give them (assign-uids.ts), and the mailbox is read again. Files that arrive meanwhile
   * are left for the next run, like any message above UIDNEXT. If giving UIDs fails (read-only store,
   * lock held too long), each such file is reported (MailboxReader.notListed) and the mailbox gets no
   * change token, so that the next incremental reads it again.
   */
  private async withUids(paths: MailboxPaths, state: MailboxState): Promise<MailboxState> {
    const { hostname, lockTimeoutMs, perms } = this.settings;
    const hint = `let Dovecot list the mailbox (an IMAP login, or doveadm mailbox status -u ${this.user} messages '${paths.name}'), then back up again`;
    const noUid = (files: readonly string[], why: string, cause?: MailvaultError): MessageWithoutUidError[] =>
      files.map(
        (file) =>
          new MessageWithoutUidError(`${file} in mailbox "${paths.name}" of user ${this.user} has no UID yet (Dovecot has not listed it) and mailvault could not give it one: ${why}`, {
            user: this.user,
            mailbox: paths.name,
            path: path.join(paths.mailDir, file),
            ...(cause !== undefined ? { cause } : {}),
            hint: cause?.hint !== undefined ? `${cause.hint}; or ${hint}` : hint,
          }),
      );
    if (this.settings.readOnly === true) {
      return {
        ...state,
        info: { ...state.info, changeToken: null },
        notListed: noUid(state.listing.unlisted, 'the backup runs with --read-only, which changes nothing in the store', new UsageError('read-only backup', { hint: 'back up without --read-only, which gives such files UIDs as Dovecot would' })),
      };
    }
    try {
      await assignUidsToUnlisted(paths, { user: this.user, hostname, lockTimeoutMs, perms, uidValidityPath: this.naming.uidValidityPath });
    } catch (e) {
      const cause = isMailvaultError(e) ? e : fromSystemError(e, 'give UIDs to new files', { path: paths.mailDir, user: this.user, mailbox: paths.name });
      return { ...state, info: { ...state.info, changeToken: null }, notListed: noUid(state.listing.unlisted, cause.message, cause) };
    }
    const again = await loadMailboxState(paths, this.user);
    // Files that arrived meanwhile wait for the next run (above UIDNEXT); names that are not valid UTF-8
    // were not given a UID (assign-uids.ts) and are reported.
    const unnamed = again.listing.unlisted.filter((f) => f.includes('\uFFFD'));
    return unnamed.length === 0 ? again : { ...again, info: { ...again.info, changeToken: null }, notListed: noUid(unnamed, 'its name is not valid UTF-8') };
  }

  private readonly stateCache = new Map<string, { stamp: string; state: MailboxState }>();

  async close(): Promise<void> {
    // Nothing is held open between calls.
  }

  async getMailbox(name: string): Promise<MailboxInfo | null> {
    const found = await this.resolve(name);
    if (!found || !found.selectable) return null;
    return (await loadMailboxState(found.paths, this.user)).info;
  }

  private lockOptions(mailbox: string) {
    return {
      timeoutMs: this.settings.lockTimeoutMs,
      staleMs: 120_000,
      hostname: this.settings.hostname,
      writePid: true,
      mode: this.settings.perms.fileMode,
      owner: this.settings.perms.owner,
      user: this.user,
      mailbox,
    };
  }

  private checkGuid(guid: string | null | undefined, name: string): string | null {
    if (guid === undefined || guid === null || guid === '') return null;
    if (!GUID_RE.test(guid)) {
      throw new UsageError(`mailbox GUID "${guid}" for "${name}" is not 32 hex digits`, { user: this.user, mailbox: name, hint: 'give no GUID to have one generated' });
    }
    return guid.toLowerCase();
  }

  private checkUidValidity(v: number | undefined, name: string): number | null {
    if (v === undefined || v === 0) return null;
    if (!Number.isInteger(v) || v < 1 || v > 0xffffffff) throw new UsageError(`UIDVALIDITY ${v} for "${name}" is not a 32-bit number above 0`, { user: this.user, mailbox: name });
    return v;
  }

  /** Dovecot serves a file's mtime before 1970 (negative) as a date after 2038. */
  keepsInternalDate(seconds: number): boolean {
    return seconds >= 0;
  }

  async keywordsKept(mailbox: string): Promise<ReadonlySet<string> | null> {
    const found = await this.resolve(mailbox);
    if (!found) return new Set();
    const { map } = await readKeywords(path.join(found.paths.controlDir, KEYWORDS_FILE));
    return new Set(map.names.flatMap((n) => (n === undefined ? [] : [keywordKey(n)])));
  }

  checkMailboxName(name: string): void {
    const normalized = normalizeMailboxName(name);
    if (normalized !== 'INBOX') this.naming.validateName(normalized);
  }

  async createMailbox(options: CreateMailboxOptions): Promise<MailboxInfo> {
    const name = normalizeMailboxName(options.name);
    if (name !== 'INBOX') this.naming.validateName(name);
    const requestedGuid = this.checkGuid(options.guid, name);
    const requestedUv = this.checkUidValidity(options.uidValidity, name);
    const paths = this.naming.paths(name);
    const perms = this.settings.perms;
    const exists = name === 'INBOX' || this.naming.listSep === '/' ? await isDir(path.join(paths.mailDir, 'cur')) : await isDir(paths.mailDir);
    if (exists) {
      throw new UsageError(`mailbox "${name}" of user ${this.user} already exists`, {
        user: this.user,
        mailbox: name,
        path: paths.mailDir,
        hint: 'restore into the existing mailbox, or choose another target name',
      });
    }
    try {
      await makeDirs(paths.mailDir, perms);
      for (const sub of ['cur', 'new', 'tmp']) await makeDirs(path.join(paths.mailDir, sub), perms);
      if (this.naming.listSep === '.' && name !== 'INBOX') {
        const marker = path.join(paths.mailDir, 'maildirfolder');
        await createFile(marker, perms)
          .then((h) => h.close())
          .catch((e: NodeJS.ErrnoException) => {
            if (e.code !== 'EEXIST') throw e;
          });
      }
      await makeDirs(paths.controlDir, perms);
    } catch (e) {
      throw fromSystemError(e, 'create the mailbox directories', { path: paths.mailDir, user: this.user, mailbox: name });
    }
    const uidlistPath = path.join(paths.controlDir, UIDLIST_FILE);
    const lock = await acquireDotlock(uidlistPath, this.lockOptions(name));
    try {
      const existing = await readUidlist(uidlistPath, { user: this.user, mailbox: name });
      if (existing === null) {
        const uidValidity = requestedUv ?? (await nextUidValidity(this.naming.uidValidityPath, perms));
        const guid = requestedGuid ?? crypto.randomBytes(16).toString('hex');
        await writeFileAtomic(uidlistPath, formatUidlistHeader({ uidValidity, nextUid: 1, guid }), perms);
      }
    } catch (e) {
      throw fromSystemError(e, 'write the uidlist', { path: uidlistPath, user: this.user, mailbox: name });
    } finally {
      await lock.release();
    }
    return (await loadMailboxState(paths, this.user)).info;
  }

  async resetMailboxIdentity(name: string, identity: { guid?: string | null; uidValidity: number }): Promise<MailboxInfo> {
    const found = await this.resolve(name);
    if (!found || !found.selectable) throw this.notFound(name);
    const { paths } = found;
    const uidValidity = this.checkUidValidity(identity.uidValidity, paths.name);
    if (uidValidity === null) throw new UsageError(`UIDVALIDITY 0 is not valid for "${paths.name}"`, { user: this.user, mailbox: paths.name });
    const requestedGuid = this.checkGuid(identity.guid, paths.name);
    const uidlistPath = path.join(paths.controlDir, UIDLIST_FILE);
    await makeDirs(paths.controlDir, this.settings.perms);
    const lock = await acquireDotlock(uidlistPath, this.lockOptions(paths.name));
    try {
      const uidlist = await readUidlist(uidlistPath, { user: this.user, mailbox: paths.name });
      const files = await scanMailDirs(paths.mailDir);
      if (files.size > 0 || (uidlist !== null && (uidlist.records.length > 0 || uidlist.nextUid > 1))) {
        throw new UsageError(`mailbox "${paths.name}" of user ${this.user} is not empty (UIDNEXT ${uidlist?.nextUid ?? 1}, ${files.size} files): its identity cannot be changed`, {
          user: this.user,
          mailbox: paths.name,
          path: paths.mailDir,
          hint: 'restore into an empty or new mailbox; UIDs would not be preserved here',
        });
      }
      const guid = requestedGuid ?? uidlist?.header.guid ?? crypto.randomBytes(16).toString('hex');
      await writeFileAtomic(uidlistPath, formatUidlistHeader({ uidValidity, nextUid: 1, guid, extensions: uidlist?.header.extensions ?? [] }), this.settings.perms);
    } catch (e) {
      throw fromSystemError(e, 'rewrite the uidlist header', { path: uidlistPath, user: this.user, mailbox: paths.name });
    } finally {
      await lock.release();
    }
    return (await loadMailboxState(paths, this.user)).info;
  }

  /**
   * Raise the uidlist's next UID (header N) to `uidNext`, rewriting the file under the lock the way
   * Dovecot does (tmp + rename, every record kept). Never lowers it. Dovecot reads
   * max(N, last uid + 1) and carries it into its index at the next sync.
   */
  async raiseUidNext(name: string, uidNext: number): Promise<MailboxInfo> {
    const found = await this.resolve(name);
    if (!found || !found.selectable) throw this.notFound(name);
    const { paths } = found;
    if (!Number.isSafeInteger(uidNext) || uidNext < 1 || uidNext > 0xffffffff) {
      throw new UsageError(`UIDNEXT ${uidNext} is not valid for "${paths.name}"`, { user: this.user, mailbox: paths.name });
    }
    const uidlistPath = path.join(paths.controlDir, UIDLIST_FILE);
    const lock = await acquireDotlock(uidlistPath, this.lockOptions(paths.name));
    try {
      const uidlist = await readUidlist(uidlistPath, { user: this.user, mailbox: paths.name });
      // No uidlist: a mailbox nothing was ever saved to (an INBOX that never got mail): UIDNEXT is 1,
      // and raising it to 1 is nothing to do.
      if (uidlist === null && uidNext <= 1) return (await loadMailboxState(paths, this.user)).info;
      if (uidlist === null) throw this.notFound(name);
      if (uidlist.nextUid < uidNext) {
        const guid = uidlist.header.guid ?? crypto.randomBytes(16).toString('hex');
        const text = formatUidlistHeader({ uidValidity: uidlist.header.uidValidity, nextUid: uidNext, guid, extensions: uidlist.header.extensions }) + uidlist.records.map(formatUidlistRecord).join('');
        await writeFileAtomic(uidlistPath, text, this.settings.perms);
      }
    } catch (e) {
      throw fromSystemError(e, 'rewrite the uidlist header', { path: uidlistPath, user: this.user, mailbox: paths.name });
    } finally {
      await lock.release();
    }
    return (await loadMailboxState(paths, this.user)).info;
  }

  async *listMessageGuids(name: string): AsyncIterable<{ uid: number; guid: string | null }> {
    const found = await this.resolve(name);
    if (!found || !found.selectable) throw this.notFound(name);
    const state = await loadMailboxState(found.paths, this.user);
    const listing = state.listing;
    for (let i = 0; i < listing.recordCount; i++) {
      if (!listing.hasFile(i)) continue;
      const r = listing.record(i);
      yield { uid: r.uid, guid: r.ext['G'] || r.base };
    }
  }

  async beginSave(mailboxName: string): Promise<SaveTransaction> {
    const found = await this.resolve(mailboxName);
    if (!found || !found.selectable) throw this.notFound(mailboxName);
    // Only the uidlist header: a restore begins a transaction every few hundred messages, and listing
    // the mailbox each time would make restoring a large mailbox quadratic. commit() re-reads the
    // uidlist under the lock anyway.
    const info = await this.lightInfo(found.paths);
    return new MaildirSaveTransaction(info, found.paths, {
      user: this.user,
      hostname: this.settings.hostname,
      lockTimeoutMs: this.settings.lockTimeoutMs,
      perms: this.settings.perms,
      uidValidityPath: this.naming.uidValidityPath,
    });
  }

  /** Mailbox info from the first line of dovecot-uidlist only (message count not computed: 0). */
  private async lightInfo(paths: MailboxPaths): Promise<MailboxInfo> {
    const uidlistPath = path.join(paths.controlDir, UIDLIST_FILE);
    let first = '';
    try {
      const fh = await fs.promises.open(uidlistPath, 'r');
      try {
        const buf = Buffer.alloc(4096);
        const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
        first = buf.toString('utf8', 0, bytesRead).split('\n')[0] ?? '';
      } finally {
        await fh.close();
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fromSystemError(e, 'read the uidlist', { path: uidlistPath, user: this.user, mailbox: paths.name });
    }
    const header = first === '' ? null : parseUidlistHeader(first, uidlistPath, { user: this.user, mailbox: paths.name });
    return {
      name: paths.name,
      guid: header?.guid ?? null,
      uidValidity: header?.uidValidity ?? 0,
      uidNext: header?.headerNextUid ?? 1,
      highestModseq: null,
      messageCount: 0,
      specialUse: [],
      selectable: true,
    };
  }

  async subscribe(names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    const entries = names.map((n) => normalizeMailboxName(n).split('/').map((c) => this.naming.encodeComponent(c)));
    await makeDirs(this.naming.rootControlDir, this.settings.perms);
    await addSubscriptions(this.naming.subscriptionsPath, entries, {
      listSep: this.naming.listSep,
      hostname: this.settings.hostname,
      lockTimeoutMs: this.settings.lockTimeoutMs,
      mode: this.settings.perms.fileMode,
      owner: this.settings.perms.owner,
      user: this.user,
    });
  }
}
