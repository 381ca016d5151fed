/**
 * An in-memory MailStore, for tests of the operations layer and of the conformance suite itself.
 * It follows the same contract as the real drivers (UID rules, transactions invisible until commit),
 * keeping message bytes in Buffers: use it for small data only.
 */
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { IntegrityError, StorageNotFoundError, UsageError } from '../../core/errors.js';
import type {
  CommitResult,
  CreateMailboxOptions,
  DriverCapabilities,
  MailboxInfo,
  MailboxReader,
  MailStore,
  MessageInfo,
  MessageListOptions,
  SaveBody,
  SaveMetadata,
  SavedMessage,
  SaveTransaction,
} from '../types.js';
import { normalizeFlags, normalizeKeywords } from '../flags.js';

export const MEMORY_CAPABILITIES: DriverCapabilities = {
  preservesUids: true,
  preservesMailboxIdentity: true,
  hasMessageGuids: true,
  hasModseq: false,
  hasSaveDate: false,
  sis: false,
  filePerMessage: true,
  writable: true,
};

interface MemoryMessage {
  info: MessageInfo;
  body: Buffer;
}

interface MemoryMailbox {
  info: MailboxInfo;
  messages: MemoryMessage[];
}

export interface MemoryStoreData {
  mailboxes: Map<string, MemoryMailbox>;
  subscriptions: Set<string>;
  nextUidValidity: number;
}

export function createMemoryStoreData(): MemoryStoreData {
  return { mailboxes: new Map(), subscriptions: new Set(), nextUidValidity: 1_700_000_000 };
}

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

async function readAll(stream: SaveBody): Promise<Buffer> {
  if (stream instanceof Uint8Array) return Buffer.from(stream); // a copy: the caller's bytes are lent for the call only
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks);
}

export class MemoryStore implements MailStore {
  readonly driverName = 'memory';
  readonly capabilities = MEMORY_CAPABILITIES;
  /** Number of message bodies opened, for tests that count reads. */
  bodiesOpened = 0;

  constructor(
    readonly user: string,
    readonly data: MemoryStoreData = createMemoryStoreData(),
  ) {}

  private box(name: string): MemoryMailbox {
    const box = this.data.mailboxes.get(name);
    if (!box) throw new StorageNotFoundError(`mailbox "${name}" does not exist for user "${this.user}"`, { user: this.user, mailbox: name });
    return box;
  }

  async listMailboxes(): Promise<MailboxInfo[]> {
    return [...this.data.mailboxes.values()].map((b) => ({ ...b.info, messageCount: b.messages.length })).sort((a, b) => byteOrder(a.name, b.name));
  }

  async listSubscriptions(): Promise<string[]> {
    return [...this.data.subscriptions].sort(byteOrder);
  }

  async openMailbox(name: string): Promise<MailboxReader> {
    const box = this.box(name);
    const store = this;
    return {
      info: { ...box.info, messageCount: box.messages.length },
      async *messages(options: MessageListOptions = {}): AsyncIterable<MessageInfo> {
        for (const m of [...box.messages]) if (m.info.uid >= (options.minUid ?? 0)) yield m.info;
      },
      async openMessage(message: MessageInfo): Promise<Readable> {
        const m = box.messages.find((x) => x.info.uid === message.uid);
        if (!m) throw new StorageNotFoundError(`message UID ${message.uid} in "${name}" was expunged`, { user: store.user, mailbox: name, uid: message.uid });
        store.bodiesOpened++;
        return Readable.from([m.body]);
      },
      async close(): Promise<void> {},
    };
  }

  async getMailbox(name: string): Promise<MailboxInfo | null> {
    const box = this.data.mailboxes.get(name);
    return box ? { ...box.info, messageCount: box.messages.length } : null;
  }

  async createMailbox(options: CreateMailboxOptions): Promise<MailboxInfo> {
    if (this.data.mailboxes.has(options.name)) throw new UsageError(`mailbox "${options.name}" already exists`, { mailbox: options.name });
    const info: MailboxInfo = {
      name: options.name,
      guid: options.guid ?? randomBytes(16).toString('hex'),
      uidValidity: options.uidValidity ?? this.data.nextUidValidity++,
      uidNext: 1,
      highestModseq: null,
      messageCount: 0,
      specialUse: options.specialUse ?? [],
      selectable: true,
    };
    this.data.mailboxes.set(options.name, { info, messages: [] });
    return info;
  }

  async resetMailboxIdentity(name: string, identity: { guid?: string | null; uidValidity: number }): Promise<MailboxInfo> {
    const box = this.box(name);
    if (box.messages.length > 0 || box.info.uidNext !== 1) throw new UsageError(`mailbox "${name}" is not empty; its identity cannot change`, { mailbox: name });
    box.info = { ...box.info, uidValidity: identity.uidValidity, guid: identity.guid ?? box.info.guid };
    return box.info;
  }

  async raiseUidNext(name: string, uidNext: number): Promise<MailboxInfo> {
    const box = this.box(name);
    if (uidNext > box.info.uidNext) box.info = { ...box.info, uidNext };
    return box.info;
  }

  async *listMessageGuids(name: string): AsyncIterable<{ uid: number; guid: string | null }> {
    for (const m of this.box(name).messages) yield { uid: m.info.uid, guid: m.info.guid };
  }

  async beginSave(mailboxName: string): Promise<SaveTransaction> {
    const box = this.box(mailboxName);
    const pending: { meta: SaveMetadata; body: Buffer }[] = [];
    let done = false;
    const check = (): void => {
      if (done) throw new UsageError('save transaction already committed or rolled back');
    };
    return {
      mailbox: box.info,
      async save(meta: SaveMetadata, body: SaveBody): Promise<SavedMessage> {
        check();
        const bytes = await readAll(body);
        if (bytes.length !== meta.size) throw new IntegrityError(`message body has ${bytes.length} bytes, expected ${meta.size}`, { mailbox: mailboxName });
        pending.push({ meta, body: bytes });
        return { uid: null, guid: meta.guid ?? null };
      },
      async commit(): Promise<CommitResult> {
        check();
        done = true;
        const uids: number[] = [];
        for (const { meta, body } of pending) {
          const used = new Set(box.messages.map((m) => m.info.uid));
          const uid = meta.uid !== undefined && meta.uid >= box.info.uidNext && !used.has(meta.uid) ? meta.uid : box.info.uidNext;
          const info: MessageInfo = {
            uid,
            guid: meta.guid ?? randomBytes(16).toString('hex'),
            flags: normalizeFlags(meta.flags),
            keywords: normalizeKeywords(meta.keywords),
            internalDate: meta.internalDate,
            saveDate: null,
            size: body.length,
            modseq: null,
            ...(meta.extra ? { extra: meta.extra } : {}),
          };
          box.messages.push({ info, body });
          box.messages.sort((a, b) => a.info.uid - b.info.uid);
          box.info = { ...box.info, uidNext: Math.max(box.info.uidNext, uid + 1) };
          uids.push(uid);
        }
        return { uids, uidValidity: box.info.uidValidity };
      },
      async rollback(): Promise<void> {
        check();
        done = true;
      },
    };
  }

  async subscribe(names: readonly string[]): Promise<void> {
    for (const n of names) this.data.subscriptions.add(n);
  }

  async close(): Promise<void> {}
}
