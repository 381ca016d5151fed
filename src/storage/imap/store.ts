/**
 * The IMAP driver: one user's mail store reached through an IMAP server (MailStore: read and write).
 * Writing goes through the server (APPEND as a master user) so that quota, indexes, SIS and the
 * user's IDLE sessions see restored mail, as doveadm does through the storage API.
 *
 * One connection per store; imapflow serialises commands and the driver selects mailboxes read-only
 * (EXAMINE) under imapflow's mailbox lock for the time of one command group only.
 */
import { UsageError } from '../../core/errors.js';
import type {
  CreateMailboxOptions,
  DriverCapabilities,
  ExistenceProbe,
  MailboxEntry,
  MailboxInfo,
  MailboxReader,
  MailStore,
  SaveTransaction,
  SpecialUse,
  SubscribeResult,
  ExistingCopies,
} from '../types.js';
import { openSession, type ImapConnectionOptions, type ImapSession } from './connection.js';
import { fromServerPath, toServerPath } from './mailbox-names.js';
import { fetchMetadata, ImapBodyStream, ImapMailboxReader, type FetchFeatures } from './reader.js';
import { ImapSaveTransaction } from './save.js';
import { hashServedForm, sameUpToBase64Encoding, toServedForm } from './served-form.js';

/** Messages up to this size (served form) are compared in memory when the server may have re-encoded them. */
const ALTERED_COMPARE_BYTES = 64 * 1024 * 1024;

/**
 * Mailboxes up to this many messages get a table of what is on the server (ExistingTable) for
 * countExisting; larger ones are searched per message (a table takes about 170 bytes a message: 85 MB
 * at this size). One table is kept at a time, the current mailbox's.
 */
const EXISTING_TABLE_MAX_MESSAGES = 500_000;

/** Candidates of one size above this many are narrowed by a SEARCH for the Message-ID among them. */
const NARROW_CANDIDATES = 4;

/** A message on the server as countExisting needs it. */
interface ExistingMessage {
  readonly uid: number;
  readonly internalDate: number;
  readonly keywords: readonly string[];
}

/** The messages of one mailbox below `uidNext`, by served size (countExisting). */
interface ExistingTable {
  readonly uidValidity: number;
  /** Every UID below this is in the table (unless expunged before the table read it). */
  uidNext: number;
  readonly bySize: Map<number, ExistingMessage[]>;
}

async function collect(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(chunks);
}
import { assertUsable, call, rawCommand, withMailbox, wirePath } from './session-calls.js';
import { MailboxNameError, ServerRejectedError, StorageNotFoundError } from '../../core/errors.js';

/**
 * What the driver can do on a server like Dovecot 2.3 (CONDSTORE, SAVEDATE). A store's own
 * `capabilities` turn hasModseq/hasSaveDate off for servers that lack those extensions.
 * - preservesUids / preservesMailboxIdentity: false: APPEND and CREATE let the server choose.
 * - hasMessageGuids: false: Dovecot reports X-GUID (MessageInfo.guid carries it) but APPEND cannot
 *   set it; restore stays idempotent through countExisting instead.
 * - filePerMessage: true: each body is fetched on its own, without reading any other message.
 */
export const IMAP_CAPABILITIES: DriverCapabilities = {
  preservesUids: false,
  preservesMailboxIdentity: false,
  hasMessageGuids: false,
  hasModseq: true,
  hasSaveDate: true,
  sis: false,
  filePerMessage: true,
  writable: true,
  // Dovecot answers an APPEND of 0 bytes with NO "Can't save a zero byte message".
  storesEmptyMessages: false,
};

const SPECIAL_USE_FLAGS = new Set(['\\All', '\\Archive', '\\Drafts', '\\Flagged', '\\Junk', '\\Sent', '\\Trash', '\\Important']);

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

interface ListEntry {
  path: string;
  delimiter: string;
  flags: Set<string>;
  subscribed: boolean;
  listed: boolean;
  status?: { messages?: number; uidNext?: number; uidValidity?: bigint; highestModseq?: bigint };
}

export class ImapStore implements MailStore {
  readonly driverName = 'imap';
  readonly capabilities: DriverCapabilities;
  readonly user: string;
  private separator: string | null = null;
  /** countExisting's tables, by mailbox name. */
  private readonly existing = new Map<string, ExistingTable>();

  constructor(
    private readonly session: ImapSession,
    private readonly features: FetchFeatures,
  ) {
    this.user = session.errorContext.user;
    this.capabilities = { ...IMAP_CAPABILITIES, hasModseq: features.modseq, hasSaveDate: features.saveDate };
  }

  /** The hierarchy separator (the personal namespace's, as imapflow learned it at login), cached. */
  private separatorNow(): string {
    if (this.separator !== null) return this.separator;
    const ns = (this.session.client as unknown as { namespace?: { delimiter?: string } }).namespace;
    this.separator = ns?.delimiter || '/';
    return this.separator;
  }

  private async getSeparator(): Promise<string | null> {
    return this.separatorNow();
  }

  /**
   * The personal namespace's prefix ('' if none; "INBOX." on servers configured like Courier): mailbox
   * names in dumps carry none (Dovecot's files do not: "INBOX.Sent" over IMAP is .Sent in Maildir++),
   * so it is added to every server path but INBOX's and taken off the names the server lists, as
   * imapflow adds it to the paths it sends.
   */
  private namespacePrefix(): string {
    return (this.session.client as unknown as { namespace?: { prefix?: string } }).namespace?.prefix ?? '';
  }

  private async serverPath(name: string): Promise<string> {
    const path = toServerPath(name, await this.getSeparator());
    const prefix = this.namespacePrefix();
    return path === 'INBOX' || prefix === '' || path.startsWith(prefix) ? path : prefix + path;
  }

  /** mailvault's name of a mailbox the server lists as `path` (its prefix taken off). */
  private nameOf(path: string, separator: string | null): string {
    const prefix = this.namespacePrefix();
    return fromServerPath(prefix !== '' && path.toUpperCase() !== 'INBOX' && path.startsWith(prefix) && path.length > prefix.length ? path.slice(prefix.length) : path, separator);
  }

  /** A name with the server's separator inside a level cannot be a mailbox here (MailboxNameError). */
  checkMailboxName(name: string): void {
    toServerPath(name, this.separatorNow());
  }

  private async listRaw(what: string, statusQuery: boolean): Promise<ListEntry[]> {
    return await call(this.session, { what }, async () => {
      const q = statusQuery ? { statusQuery: { messages: true, uidNext: true, uidValidity: true, ...(this.features.modseq ? { highestModseq: true } : {}) } } : {};
      return (await this.session.client.list(q)) as unknown as ListEntry[];
    });
  }

  private toInfo(name: string, e: Pick<ListEntry, 'flags' | 'status'> | null, status: ListEntry['status'] | undefined): MailboxInfo {
    const flags = e?.flags ?? new Set<string>();
    const selectable = ![...flags].some((f) => /^\\(noselect|nonexistent)$/i.test(f));
    const specialUse = [...flags].filter((f) => SPECIAL_USE_FLAGS.has(f)).sort() as SpecialUse[];
    return {
      name,
      guid: null,
      uidValidity: Number(status?.uidValidity ?? 0),
      uidNext: status?.uidNext ?? 1,
      highestModseq: status?.highestModseq !== undefined && this.features.modseq ? status.highestModseq.toString() : null,
      messageCount: status?.messages ?? 0,
      specialUse,
      selectable,
      changeToken: this.changeToken(status),
    };
  }

  /**
   * The change token of a mailbox from its STATUS, where the server has CONDSTORE: HIGHESTMODSEQ grows
   * with every flag or keyword change, expunge and new message (RFC 7162), so the same UIDVALIDITY,
   * UIDNEXT, MESSAGES and HIGHESTMODSEQ on the same server mean nothing changed. null without it.
   */
  private changeToken(status: ListEntry['status'] | undefined): string | null {
    if (!this.features.modseq || status?.highestModseq === undefined || status.uidValidity === undefined || status.uidNext === undefined || status.messages === undefined) return null;
    return ['imap1', this.session.address.display, this.user, status.uidValidity.toString(), status.uidNext, status.messages, status.highestModseq.toString()].join(':');
  }

  async listMailboxEntries(): Promise<MailboxEntry[]> {
    return (await this.listMailboxes()).map((m) => ({ name: m.name, specialUse: m.specialUse, selectable: m.selectable, changeToken: m.selectable ? (m.changeToken ?? null) : null }));
  }

  async listMailboxes(): Promise<MailboxInfo[]> {
    const entries = await this.listRaw('list the mailboxes of the user', true);
    const out: MailboxInfo[] = [];
    for (const e of entries) {
      if (!e.listed) continue;
      const name = this.nameOf(e.path, e.delimiter || (await this.getSeparator()));
      const info = this.toInfo(name, e, undefined);
      let status = e.status;
      if (info.selectable && (status === undefined || status.uidValidity === undefined)) status = (await this.statusOf(name, e.path)) ?? undefined;
      out.push(this.toInfo(name, e, status));
    }
    return out.sort((a, b) => byteOrder(a.name, b.name));
  }

  async listSubscriptions(): Promise<string[]> {
    const entries = await this.listRaw('list the subscriptions of the user', false);
    const sep = await this.getSeparator();
    const names = new Set(entries.filter((e) => e.subscribed && e.path.toUpperCase() !== 'INBOX').map((e) => this.nameOf(e.path, e.delimiter || sep)));
    // imapflow's list() marks INBOX subscribed whatever the server says; ask the server itself.
    if (await this.isInboxSubscribed()) names.add('INBOX');
    return [...names].sort(byteOrder);
  }

  /** LSUB "" INBOX: whether the server lists INBOX among the subscriptions. */
  private async isInboxSubscribed(): Promise<boolean> {
    return await call(this.session, { what: 'read the subscription of INBOX of', mailbox: 'INBOX' }, async () => {
      let found = false;
      const client = this.session.client as unknown as {
        exec(command: string, attributes: unknown[], options: { untagged: Record<string, () => Promise<void>> }): Promise<{ next(): void }>;
      };
      const response = await client.exec('LSUB', [{ type: 'STRING', value: '' }, { type: 'STRING', value: 'INBOX' }], {
        untagged: {
          LSUB: async () => {
            found = true;
          },
        },
      });
      response.next();
      return found;
    });
  }

  private async statusOf(name: string, path: string): Promise<ListEntry['status'] | null> {
    return await call(this.session, { what: 'read the status of', mailbox: name }, async () => {
      try {
        const s = await this.session.client.status(path, { messages: true, uidNext: true, uidValidity: true, ...(this.features.modseq ? { highestModseq: true } : {}) });
        if (s) return s;
      } catch (err) {
        const e = err as { code?: string; serverResponseCode?: string };
        if (e.code !== 'NotFound' && String(e.serverResponseCode).toUpperCase() !== 'NONEXISTENT') throw err;
      }
      // "No such mailbox" only from a live connection: imapflow also answers false when the server
      // went away during STATUS (seen: a server stopped mid-restore reported as exit 66, "mailbox
      // does not exist", instead of 75). A NOOP proves the connection; assertUsable maps a dead one.
      assertUsable(this.session, { what: 'read the status of', mailbox: name });
      await this.session.client.noop();
      assertUsable(this.session, { what: 'read the status of', mailbox: name });
      return null;
    });
  }

  async openMailbox(name: string): Promise<MailboxReader> {
    const info = await this.getMailbox(name);
    if (!info) throw new StorageNotFoundError(`mailbox "${name}" does not exist for user "${this.user}" on ${this.session.address.display}`, { user: this.user, mailbox: name, hint: 'check the mailbox name (mailvault names use "/" as separator)' });
    return new ImapMailboxReader(this.session, await this.serverPath(name), info, this.features);
  }

  async getMailbox(name: string): Promise<MailboxInfo | null> {
    const path = await this.serverPath(name);
    const status = await this.statusOf(name, path);
    if (!status) return null;
    return this.toInfo(name, null, status);
  }

  async createMailbox(options: CreateMailboxOptions): Promise<MailboxInfo> {
    const name = options.name;
    const path = await this.serverPath(name);
    await this.createOnServer(name, path, false);
    const info = await this.getMailbox(name);
    if (!info) throw new StorageNotFoundError(`mailbox "${name}" was created on ${this.session.address.display} but STATUS does not find it`, { user: this.user, mailbox: name });
    // CREATE-SPECIAL-USE (RFC 6154) is not offered by Dovecot 2.3: special use comes from its config.
    return { ...info, specialUse: options.specialUse ?? [] };
  }

  /** Raw CREATE (imapflow's mailboxCreate() also subscribes, which a restore must not do on its own). */
  private async createOnServer(name: string, path: string, existingOk: boolean): Promise<void> {
    await call(this.session, { what: 'create', mailbox: name }, async () => {
      try {
        await rawCommand(this.session, 'CREATE', [{ type: 'STRING', value: wirePath(this.session, path) }]);
      } catch (err) {
        const attrs = (err as { response?: { attributes?: { section?: { value?: string }[] }[] } }).response?.attributes;
        const code = attrs?.[0]?.section?.[0]?.value?.toUpperCase();
        const text = String((err as { responseText?: string }).responseText ?? '');
        if (code === 'ALREADYEXISTS' || /already exists/i.test(text)) {
          if (existingOk) return;
          throw new UsageError(`mailbox "${name}" already exists for user "${this.user}"`, { user: this.user, mailbox: name });
        }
        // A refusal of this name (not of the session): RFC 5530 CANNOT, "the operation violates some
        // invariant of the server" (Dovecot: a character its layout cannot hold, such as "." in
        // Maildir++); a NO without a code (Dovecot: "Not found" for a Maildir++ directory name over
        // the file system's 255 bytes), NOPERM, LIMIT; a BAD (the name makes the command line too
        // long). Not the refusals that say the server or the account is in trouble: those still fail.
        const status = String((err as { response?: { command?: string } }).response?.command ?? '').toUpperCase();
        const serverTrouble = code === 'UNAVAILABLE' || code === 'SERVERBUG' || code === 'OVERQUOTA' || code === 'INUSE' || code === 'CONTACTADMIN';
        if ((status === 'NO' || status === 'BAD') && !serverTrouble && this.session.state.failure === undefined) {
          throw new MailboxNameError(`mailbox name "${name}" cannot be created on ${this.session.address.display}: the server answered ${status}${code ? ` [${code}]` : ''}: ${text || '(no text)'}`, {
            user: this.user,
            mailbox: name,
            hint: 'restore it under another name with --to-mailbox, or into a store whose layout can hold the name',
          });
        }
        throw err;
      }
    });
  }

  async *listMessageGuids(name: string): AsyncIterable<{ uid: number; guid: string | null }> {
    const reader = await this.openMailbox(name);
    for await (const m of reader.messages()) yield { uid: m.uid, guid: m.guid };
  }

  /**
   * How many messages in `mailboxName` equal `probe`: same INTERNALDATE and the same bytes in served
   * form (see served-form.ts: LF -> CRLF, NULs dropped, on both sides). Candidates come from
   * UID SEARCH HEADER Message-ID (or, without one, a date window around INTERNALDATE plus the exact
   * served size), are narrowed by INTERNALDATE and RFC822.SIZE, and only then have their bytes hashed.
   */
  /** Dovecot's APPEND replaces a date in the future with the time of saving; before 1970 as Maildir. */
  keepsInternalDate(seconds: number): boolean {
    return seconds >= 0 && seconds <= Date.now() / 1000;
  }

  /**
   * How many copies of the probe the mailbox holds. The candidates (same served size, and the same
   * INTERNALDATE where the server keeps that date) come from a table of the mailbox: one UID FETCH of
   * sizes and dates at the first call for it, then, whenever STATUS shows a higher UIDNEXT (messages
   * this run or anyone else APPENDed), a FETCH of the new UIDs only. It replaces a SEARCH per message,
   * which Dovecot answers by reading every message's header (7.8 ms a search in a mailbox of 4,880,
   * so a rerun over a large mailbox took time quadratic in its size). The candidates' bytes decide.
   * A message someone else expunges while the restore runs may still be counted (a live SEARCH
   * would not count it): the restore then leaves out the message that user just deleted.
   */
  async countExisting(mailboxName: string, probe: ExistenceProbe): Promise<ExistingCopies> {
    const info = await this.getMailbox(mailboxName);
    if (!info) return { same: 0, altered: [] };
    const path = await this.serverPath(mailboxName);
    const want = await hashServedForm(probe.openBody());
    const c = { what: 'look for a message in', mailbox: mailboxName };
    // A date the server does not keep (keepsInternalDate) cannot find the copy: it is looked for by
    // size (and Message-ID) alone, and told by its bytes.
    const dated = this.keepsInternalDate(probe.internalDate);
    const table = await this.existingTable(mailboxName, path, info);
    const candidates: readonly ExistingMessage[] =
      table !== null
        ? await this.narrowByMessageId(path, c, (table.bySize.get(want.servedSize) ?? []).filter((m) => !dated || m.internalDate === probe.internalDate), probe.messageId)
        : await withMailbox(this.session, path, c, async () => {
            const day = 86_400_000;
            const query: Record<string, unknown> = probe.messageId
              ? { header: { 'Message-ID': probe.messageId } }
              : { ...(dated ? { since: new Date(probe.internalDate * 1000 - day), before: new Date(probe.internalDate * 1000 + 2 * day) } : {}), larger: want.servedSize - 1, smaller: want.servedSize + 1 };
            const found = await this.session.client.search(query, { uid: true });
            const uids = (Array.isArray(found) ? found : []).sort((a, b) => a - b);
            const rows = [];
            for (let i = 0; i < uids.length; i += 500) rows.push(...(await fetchMetadata(this.session, mailboxName, uids.slice(i, i + 500), { modseq: false, xGuid: false, saveDate: false, binary: false })));
            return rows.filter((m) => (!dated || m.internalDate === probe.internalDate) && m.size === want.servedSize);
          });
    let same = 0;
    const altered: number[] = [];
    const sameKeywords: string[][] = [];
    let wanted: Buffer | null = null;
    for (const m of candidates) {
      const body = (): ImapBodyStream => new ImapBodyStream(this.session, path, mailboxName, { uid: m.uid, size: want.servedSize }, info.uidValidity, this.features.binary);
      const got = await hashServedForm(body());
      if (got.sha256 === want.sha256) {
        same++;
        sameKeywords.push([...m.keywords]);
        continue;
      }
      // Same Message-ID (or date window), INTERNALDATE, size and header section, other body bytes: the
      // message as the server changed it when it was saved, if the bytes differ only in base64 lines
      // that decode alike (ExistingCopies.altered). Compared in memory, up to ALTERED_COMPARE_BYTES.
      if (got.headerSha256 !== want.headerSha256 || want.servedSize > ALTERED_COMPARE_BYTES) continue;
      wanted ??= toServedForm(await collect(probe.openBody()));
      if (sameUpToBase64Encoding(wanted, toServedForm(await collect(body())))) altered.push(m.uid);
    }
    return { same, altered, sameKeywords };
  }

  /**
   * Many candidates of one size (and date): an import that gave many messages one date, or dates the
   * server does not keep. Each would be fetched whole to compare its bytes; a SEARCH for the
   * Message-ID among just those UIDs (cheap: the server reads only their headers) leaves the ones
   * worth fetching.
   */
  private async narrowByMessageId(path: string, c: { what: string; mailbox: string }, candidates: ExistingMessage[], messageId: string): Promise<ExistingMessage[]> {
    if (candidates.length <= NARROW_CANDIDATES || messageId === '') return candidates;
    const found = await withMailbox(this.session, path, c, () => this.session.client.search({ uid: candidates.map((m) => m.uid).join(','), header: { 'Message-ID': messageId } }, { uid: true }));
    const keep = new Set(Array.isArray(found) ? found : []);
    return candidates.filter((m) => keep.has(m.uid));
  }

  /**
   * countExisting's table of the mailbox, brought up to `info` (the mailbox's STATUS now): made on first
   * use and again after a UIDVALIDITY change, extended by the UIDs from its uidNext on when the
   * mailbox's UIDNEXT has grown. null for a mailbox too large to tabulate.
   */
  private async existingTable(mailboxName: string, path: string, info: MailboxInfo): Promise<ExistingTable | null> {
    let table = this.existing.get(mailboxName);
    if (table !== undefined && table.uidValidity === info.uidValidity && table.uidNext >= info.uidNext) return table;
    if (table === undefined || table.uidValidity !== info.uidValidity) {
      // Restore fills one mailbox at a time: the table of the one before is not asked again soon.
      this.existing.clear();
      if (info.messageCount > EXISTING_TABLE_MAX_MESSAGES) return null;
      table = { uidValidity: info.uidValidity, uidNext: 1, bySize: new Map() };
      this.existing.set(mailboxName, table);
    }
    const from = table.uidNext;
    const bySize = table.bySize;
    let next = Math.max(from, info.uidNext);
    await withMailbox(this.session, path, { what: 'list the messages of', mailbox: mailboxName }, async () => {
      const found = await this.session.client.search(from === 1 ? { all: true } : { uid: `${from}:*` }, { uid: true });
      // "n:*" also matches the highest UID when it is below n
      const uids = (Array.isArray(found) ? found : []).filter((u) => u >= from).sort((a, b) => a - b);
      for (let i = 0; i < uids.length; i += 1000) {
        for (const m of await fetchMetadata(this.session, mailboxName, uids.slice(i, i + 1000), { modseq: false, xGuid: false, saveDate: false, binary: false })) {
          const row: ExistingMessage = { uid: m.uid, internalDate: m.internalDate, keywords: m.keywords };
          const same = bySize.get(m.size);
          if (same === undefined) bySize.set(m.size, [row]);
          else same.push(row);
          // a message APPENDed after the STATUS: in the table now, not to be fetched again
          next = Math.max(next, m.uid + 1);
        }
      }
    });
    table.uidNext = next;
    return table;
  }

  async beginSave(mailboxName: string): Promise<SaveTransaction> {
    const info = await this.getMailbox(mailboxName);
    if (!info) throw new StorageNotFoundError(`mailbox "${mailboxName}" does not exist for user "${this.user}"; create it before saving into it`, { user: this.user, mailbox: mailboxName });
    const path = await this.serverPath(mailboxName);
    return new ImapSaveTransaction(this.session, info, path, { createMailbox: () => this.createOnServer(mailboxName, path, true) });
  }

  async subscribe(names: readonly string[]): Promise<SubscribeResult> {
    const refused: { name: string; reason: string }[] = [];
    for (const name of names) {
      const path = await this.serverPath(name);
      // SUBSCRIBE itself, not imapflow's mailboxSubscribe(): that answers false to a NO and to a lost
      // connection alike. A NO (Dovecot: "Mailbox doesn't exist") is the server refusing this one
      // subscription; anything else fails the restore as every other command does.
      try {
        await call(this.session, { what: 'subscribe to', mailbox: name }, () => rawCommand(this.session, 'SUBSCRIBE', [{ type: 'STRING', value: wirePath(this.session, path) }]));
      } catch (e) {
        if (!(e instanceof ServerRejectedError)) throw e;
        refused.push({ name, reason: `${e.message} (Dovecot refuses a subscription to a mailbox that does not exist)` });
      }
    }
    return { refused };
  }

  async close(): Promise<void> {
    const client = this.session.client;
    if (this.session.state.failure === undefined && client.usable) {
      await client.logout().catch(() => client.close());
    } else {
      client.close();
    }
  }
}

/** Connects, logs in (as a master user where given) and returns the store. */
export async function openImapStore(options: ImapConnectionOptions): Promise<MailStore> {
  const session = await openSession(options);
  const caps = session.client.capabilities;
  const features: FetchFeatures = {
    modseq: session.client.enabled.has('CONDSTORE'),
    // Dovecot answers FETCH X-GUID; it names itself in the ID answer.
    xGuid: /dovecot/i.test(String((session.client.serverInfo as { name?: string } | null)?.name ?? '')),
    saveDate: caps.has('SAVEDATE'),
    binary: caps.has('BINARY'),
  };
  return new ImapStore(session, features);
}
