/**
 * The read-only MessageSource shared by sdbox and mdbox: mailbox list, subscriptions, mailbox state
 * from the replayed index. A driver plugs in where its mailbox GUID lives and how messages are located.
 */
import path from 'node:path';
import { StorageCorruptError, StorageNotFoundError, UnsupportedLocationError } from '../../../core/errors.js';
import { readDovecotIndex, type IndexSnapshot } from '../../dovecot-index/index.js';
import type { MailLocation } from '../../location.js';
import { changeTokenOf, stampOf } from '../../change-token.js';
import type { DriverCapabilities, MailboxEntry, MailboxInfo, MailboxReader, MessageSource } from '../../types.js';
import { listDboxMailboxes, mailboxIndexDirs, mailboxMailDir, readDboxSubscriptions, type DboxMailboxEntry } from './mailbox-list.js';
import { DboxMailboxReader, type DboxMessageLocator } from './mailbox-reader.js';

export interface DboxStoreOptions {
  /** Dovecot mail_attachment_dir (absolute), or null when SIS is not used. */
  readonly attachmentDir?: string | null;
}

export interface DboxMailboxContext {
  readonly location: MailLocation;
  readonly entry: DboxMailboxEntry;
  readonly mailDir: string;
  readonly snapshot: IndexSnapshot;
  /** Mailbox GUID, lowercase hex, or null. */
  readonly mailboxGuid: string | null;
}

export interface DboxDriver {
  readonly name: 'sdbox' | 'mdbox';
  readonly capabilities: DriverCapabilities;
  /** Index extension whose header holds `rebuild_count|map_uid_validity u32, mailbox_guid[16]`. */
  readonly headerExt: 'dbox-hdr' | 'mdbox-hdr';
  createLocator(ctx: DboxMailboxContext): Promise<DboxMessageLocator>;
}

/** Mailbox GUID from the dbox-hdr / mdbox-hdr extension header (bytes 4..19). */
export function mailboxGuidFrom(snapshot: IndexSnapshot, ext: string): string | null {
  const h = snapshot.extHeaders.get(ext);
  if (!h || h.length < 20) return null;
  const g = h.subarray(4, 20);
  return g.every((b) => b === 0) ? null : g.toString('hex');
}

/**
 * A dbox mailbox's change token (MailboxEntry.changeToken; rules in ../../change-token.ts): its index
 * files, which every new message, flag or keyword change and expunge goes through (the log is appended
 * to, rotated into .log.2, or the index rewritten), and the mailbox directory (message files added or
 * removed). null where no index directory has an index yet.
 */
function dboxChangeToken(driver: string, indexDirs: readonly string[], mailDir: string): string | null {
  let dir: string | undefined;
  try {
    dir = indexDirs.find((d) => stampOf(path.join(d, 'dovecot.index')) !== null || stampOf(path.join(d, 'dovecot.index.log')) !== null);
  } catch {
    return null;
  }
  if (dir === undefined) return null;
  return changeTokenOf(`${driver}1`, [path.join(dir, 'dovecot.index'), path.join(dir, 'dovecot.index.log'), path.join(dir, 'dovecot.index.log.2'), mailDir]);
}

export class DboxStore implements MessageSource {
  readonly driverName: string;
  readonly capabilities: DriverCapabilities;
  private readonly attachmentDir: string | null;

  constructor(
    private readonly driver: DboxDriver,
    readonly location: MailLocation,
    readonly user: string,
    options: DboxStoreOptions,
  ) {
    if (location.index === 'MEMORY') {
      throw new UnsupportedLocationError(`mail_location "${location.raw}" keeps the index in memory (INDEX=MEMORY): flags, keywords and UIDVALIDITY exist nowhere on disk`, {
        hint: 'back this store up through IMAP (--imap) instead',
      });
    }
    this.driverName = driver.name;
    this.attachmentDir = options.attachmentDir ?? null;
    this.capabilities = { ...driver.capabilities, sis: this.attachmentDir !== null };
  }

  async listMailboxes(): Promise<MailboxInfo[]> {
    const out: MailboxInfo[] = [];
    for (const entry of await listDboxMailboxes(this.location)) {
      if (!entry.selectable || entry.unreadable !== undefined) {
        // An unreadable mailbox is listed without state; openMailbox reports why.
        out.push({ name: entry.name, guid: null, uidValidity: 0, uidNext: 1, highestModseq: null, messageCount: 0, specialUse: [], selectable: entry.selectable });
        continue;
      }
      try {
        out.push((await this.readState(entry)).info);
      } catch (e) {
        // A damaged index fails this mailbox only: it is listed, and openMailbox reports the error.
        if (!(e instanceof StorageCorruptError || e instanceof StorageNotFoundError)) throw e;
        out.push({ name: entry.name, guid: null, uidValidity: 0, uidNext: 1, highestModseq: null, messageCount: 0, specialUse: [], selectable: true });
      }
    }
    return out;
  }

  async listMailboxEntries(): Promise<MailboxEntry[]> {
    return (await listDboxMailboxes(this.location)).map((entry) => ({
      name: entry.name,
      specialUse: [],
      selectable: entry.selectable,
      changeToken: entry.selectable && entry.unreadable === undefined ? dboxChangeToken(this.driver.name, mailboxIndexDirs(this.location, entry.storageParts), mailboxMailDir(this.location, entry.storageParts)) : null,
    }));
  }

  async listSubscriptions(): Promise<string[]> {
    return readDboxSubscriptions(this.location);
  }

  async openMailbox(name: string): Promise<MailboxReader> {
    const wanted = name.toUpperCase() === 'INBOX' ? 'INBOX' : name;
    const entry = (await listDboxMailboxes(this.location)).find((e) => e.name === wanted);
    if (!entry || !entry.selectable) {
      throw new StorageNotFoundError(`mailbox "${name}" does not exist in ${this.location.root}`, { mailbox: name, user: this.user, hint: 'list the mailboxes with "mailvault list"' });
    }
    if (entry.unreadable !== undefined) {
      throw new StorageCorruptError(`mailbox "${entry.name}" cannot be read: ${entry.unreadable}`, {
        mailbox: entry.name,
        user: this.user,
        path: path.join(this.location.root, 'mailboxes'),
        hint: `Dovecot renames such a directory when it next lists the mailboxes: run "doveadm mailbox list -u ${this.user}" (or rename it to valid UTF-8 or mUTF-7), then back up again`,
      });
    }
    const { info, snapshot, mailDir, mailboxGuid } = await this.readState(entry);
    const locator = await this.driver.createLocator({ location: this.location, entry, mailDir, snapshot, mailboxGuid });
    // Directories that give this name too (mailbox-list.ts): their mail is not in this mailbox.
    const notListed = (entry.shadowed ?? []).map(
      (dir) =>
        new StorageCorruptError(`mailbox "${entry.name}": the directory ${dir} gives the same mailbox name, and its mail is not backed up (a dump holds one mailbox per name; Dovecot opens ${mailboxMailDir(this.location, entry.storageParts)} for it)`, {
          mailbox: entry.name,
          user: this.user,
          path: dir,
          hint: 'move the mail of that directory into a mailbox of its own with doveadm (or rename the directory to a name of its own), then back up again',
        }),
    );
    return new DboxMailboxReader(info, snapshot, locator, { attachmentDir: this.attachmentDir, notListed });
  }

  async close(): Promise<void> {}

  private async readState(entry: DboxMailboxEntry): Promise<{ info: MailboxInfo; snapshot: IndexSnapshot; mailDir: string; mailboxGuid: string | null }> {
    const mailDir = mailboxMailDir(this.location, entry.storageParts);
    const indexDirs = mailboxIndexDirs(this.location, entry.storageParts);
    // Before the index is read: a change while it is read then shows in the next run's token.
    const changeToken = dboxChangeToken(this.driver.name, indexDirs, mailDir);
    let snapshot: IndexSnapshot | null = null;
    for (const dir of indexDirs) {
      snapshot = await readDovecotIndex(dir);
      if (snapshot) break;
    }
    if (!snapshot) {
      throw new StorageCorruptError(`mailbox "${entry.name}" has no Dovecot index (${mailDir}/dovecot.index and dovecot.index.log are missing): its UIDs, flags and UIDVALIDITY are unknown`, {
        mailbox: entry.name,
        path: mailDir,
        hint: `run "doveadm force-resync -u ${this.user} '${entry.name}'" (this assigns a new UIDVALIDITY), then back up again`,
      });
    }
    const mailboxGuid = mailboxGuidFrom(snapshot, this.driver.headerExt);
    const info: MailboxInfo = {
      name: entry.name,
      guid: mailboxGuid,
      uidValidity: snapshot.uidValidity,
      uidNext: snapshot.nextUid,
      highestModseq: snapshot.highestModseq,
      messageCount: snapshot.messages.length,
      specialUse: [],
      selectable: true,
      changeToken,
    };
    return { info, snapshot, mailDir, mailboxGuid };
  }
}
