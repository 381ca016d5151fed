/**
 * The storage engine's contract. A driver gives access to ONE user's mail store (what Dovecot calls a
 * mail_user with its namespace): mailboxes, their state, and their messages. Backup reads through
 * `MessageSource`; restore writes through `MessageSink`. Operations import only these types, never a
 * driver class; they test `capabilities`, never `instanceof`.
 *
 * Conventions shared by every driver:
 * - Mailbox names are UTF-8 with "/" as the hierarchy separator (the virtual name an IMAP client sees
 *   with separator "/"), whatever the on-disk encoding (mUTF-7, Maildir++ dots, LAYOUT=fs dirs).
 *   "INBOX" is always spelled "INBOX".
 * - System flags are the IMAP spellings `\Seen \Answered \Flagged \Deleted \Draft`. `\Recent` is never
 *   reported or accepted (it is session state). Keywords are IMAP atoms, case preserved.
 * - Times are integer Unix seconds (IMAP INTERNALDATE has second precision).
 * - Message bodies are the bytes as stored (Dovecot Maildir/dbox: LF line ends unless the file has CRLF).
 *   `size` is known before the body is read, and the body stream yields exactly `size` bytes; a driver
 *   that finds otherwise fails the stream with an IntegrityError naming mailbox and UID.
 * - Methods may throw MailvaultError subclasses (StorageNotFoundError, StorageCorruptError,
 *   StorageLockTimeoutError, PermissionDeniedError, DiskFullError, ...); never raw Node errors.
 */
import type { Readable } from 'node:stream';
import type { MailvaultError } from '../core/errors.js';

export type SystemFlag = '\\Seen' | '\\Answered' | '\\Flagged' | '\\Deleted' | '\\Draft';
export const SYSTEM_FLAGS: readonly SystemFlag[] = ['\\Answered', '\\Deleted', '\\Draft', '\\Flagged', '\\Seen'];

export interface DriverCapabilities {
  /** Can save a message with a caller-chosen UID (>= the mailbox's UIDNEXT). */
  readonly preservesUids: boolean;
  /** Can create a mailbox with a caller-chosen UIDVALIDITY and mailbox GUID. */
  readonly preservesMailboxIdentity: boolean;
  /** Messages have GUIDs the driver reports, and can be saved with a caller-chosen GUID. */
  readonly hasMessageGuids: boolean;
  /** Reports per-message modseq and mailbox HIGHESTMODSEQ. */
  readonly hasModseq: boolean;
  /** Reports the save date (date.saved) of messages. */
  readonly hasSaveDate: boolean;
  /** Messages may be stored with external attachment references (Dovecot SIS); see openMessageParts. */
  readonly sis: boolean;
  /** One file per message (Maildir, sdbox): a body can be read without touching others. */
  readonly filePerMessage: boolean;
  /** Implements MessageSink. */
  readonly writable: boolean;
  /** false: a message of 0 bytes cannot be saved (IMAP: Dovecot refuses to APPEND one). Default true. */
  readonly storesEmptyMessages?: boolean;
}

export type SpecialUse = '\\All' | '\\Archive' | '\\Drafts' | '\\Flagged' | '\\Junk' | '\\Sent' | '\\Trash' | (string & {});

export interface MailboxInfo {
  /** UTF-8, "/" separated, INBOX spelled "INBOX". */
  readonly name: string;
  /** Mailbox GUID, 32 lowercase hex digits, or null where the store has none. */
  readonly guid: string | null;
  readonly uidValidity: number;
  /** max(recorded next UID, highest UID + 1). */
  readonly uidNext: number;
  /** HIGHESTMODSEQ as a decimal string (can exceed 2^53), or null where unknown. */
  readonly highestModseq: string | null;
  readonly messageCount: number;
  readonly specialUse: readonly SpecialUse[];
  /** false for a \NoSelect parent that exists only as a hierarchy level. */
  readonly selectable: boolean;
  /**
   * See MailboxEntry.changeToken. Where a reader gives it, it was taken before the reader listed the
   * messages, so a later run with the same token sees what this reader saw.
   */
  readonly changeToken?: string | null;
}

/** A mailbox as listed without reading its messages (MessageSource.listMailboxEntries). */
export interface MailboxEntry {
  readonly name: string;
  readonly specialUse: readonly SpecialUse[];
  readonly selectable: boolean;
  /**
   * Opaque, driver-specific: it changes whenever the mailbox's messages, flags, keywords or UIDs may
   * have changed, so two equal tokens from the same store mean that nothing a backup reads has changed.
   * null where the driver cannot tell, and where the mailbox changed so recently that the file
   * system's timestamps could still miss a change (they come from a coarse clock).
   */
  readonly changeToken: string | null;
}

export interface MessageInfo {
  readonly uid: number;
  /** Message GUID as Dovecot reports it (Maildir: uidlist G<..> or the base file name; dbox: G metadata). */
  readonly guid: string | null;
  /** System flags, sorted as in SYSTEM_FLAGS. */
  readonly flags: readonly SystemFlag[];
  /** Keywords, sorted by code point, no duplicates. */
  readonly keywords: readonly string[];
  /** INTERNALDATE, Unix seconds. */
  readonly internalDate: number;
  /** Save date, Unix seconds, where known. */
  readonly saveDate: number | null;
  /**
   * Optional, where saveDate is unknown: a time (Unix seconds) at or after which anything that put the
   * message into this mailbox happened, if it happened after its INTERNALDATE (Maildir: the file's
   * ctime, which a save, a copy or move by hard link, and a rename set, and nothing sets back). A
   * time-based incremental carries a message whose INTERNALDATE or this is at or after its time: a
   * message copied or moved into the mailbox, or saved with an old INTERNALDATE, keeps that date.
   */
  readonly changedAt?: number;
  /** Exact byte size of the body as openMessage yields it. */
  readonly size: number;
  /** Per-message modseq (decimal string) where known. */
  readonly modseq: string | null;
  /**
   * Driver-specific metadata that must be carried, not dropped (dbox unknown keys, POP3 UIDL/order).
   * Keys are short ASCII names; values strings.
   */
  readonly extra?: Readonly<Record<string, string>>;
  /**
   * Set when the store could not tell all of the above and the message is given with what is known
   * (a dbox file whose metadata block was cut short: GUID, INTERNALDATE may be stand-ins): what is
   * missing, for the backup summary. The body is whole.
   */
  readonly warning?: string;
}

/** One piece of a message split for attachment deduplication (Dovecot SIS, or MIME splitting). */
export type MessagePart =
  | { readonly kind: 'inline'; readonly data: Buffer }
  | {
      readonly kind: 'attachment';
      /** Number of bytes this part contributes to the full message: the stored content after `encoding`
       *  (base64 with the given line length and LF or CRLF, no break after the last line), cut to `size`. */
      readonly size: number;
      /** How the stored content is turned into message bytes. */
      readonly encoding: { readonly type: 'raw' } | { readonly type: 'base64'; readonly lineLength: number; readonly crlf: boolean };
      /** Size of the stored (decoded) content. */
      readonly contentSize: number;
      /**
       * Optional: names the stored content for the length of a backup run, across users: parts with the
       * same key have the same content (dbox SIS: the content-hash part of the attachment file's name,
       * its device, inode, size and mtime; Dovecot hard-links one file for every message with that
       * attachment). Lets a caller reuse what it derived from the content (a backup: its encoding).
       */
      readonly contentKey?: string;
      /** Opens the stored (decoded) content. */
      open(): Promise<Readable>;
      /**
       * Optional: the same content read into `scratch`, for a caller that is done with each chunk before
       * it asks for the next (hashing, copying). Every chunk is a view of `scratch`, valid only until the
       * next one is requested; nothing is allocated per chunk.
       */
      openChunks?(scratch: Buffer): AsyncIterable<Buffer>;
    };

export interface MessageListOptions {
  /** Only messages with UID >= this. */
  readonly minUid?: number;
  /** Only messages whose modseq is > this (drivers with hasModseq). */
  readonly changedSinceModseq?: string;
  /**
   * false: the caller does not need internalDate or saveDate, and a driver for which they cost a call
   * per message (Maildir: a stat for the file's mtime) may report them as 0 and null. For metadata
   * scans of UIDs and flags, e.g. an incremental backup's comparison with its base. Default true.
   */
  readonly dates?: boolean;
  /**
   * true: the caller needs only uid, flags, keywords and modseq (an incremental's comparison, a
   * backup's UID set), and a driver that would read each message's file for the rest (dbox: size and
   * GUID are in the file) may skip that and report size 0, guid null and dates 0/null. Default false.
   */
  readonly flagsOnly?: boolean;
}

/** A message with its body as MailboxReader.messagesWithBodies yields it. */
export interface MessageWithBody {
  readonly info: MessageInfo;
  /** All `info.size` bytes and their sha256 (lowercase hex); null: read the body the ordinary way. */
  readonly body: { readonly bytes: Buffer; readonly sha256: string } | null;
}

export interface OpenMessageOptions {
  /**
   * Space the driver may read a whole message into instead of allocating a buffer for it; the stream
   * then yields a view of it. The caller must be done with the bytes before it uses the buffer again
   * (for the next message, say). A driver that streams the message, or for which it is too small,
   * ignores it. A backup reads thousands of messages a second, and fresh memory for each costs page
   * faults and allocator work: with it, peak RSS of a 10k-message Maildir backup went from 134 to
   * 113 MiB (time unchanged), and a short incremental got faster (CHANGELOG.md).
   */
  readonly scratch?: Buffer;
}

export interface MailboxReader {
  readonly info: MailboxInfo;
  /**
   * Message metadata in ascending UID order. Reading metadata never opens message bodies where the store
   * avoids it. A message whose metadata cannot be read makes one next() reject with a MailvaultError
   * (context.uid set where known); the following next() goes on with the next message. A driver whose
   * iterator cannot go on after an error ends it (done) instead.
   */
  messages(options?: MessageListOptions): AsyncIterable<MessageInfo>;
  /**
   * Optional: what messages({ dates: false, flagsOnly: true }) yields, as a synchronous iterable, for a
   * driver that holds all of it in memory once the mailbox is open (Maildir: uidlist and file names).
   * A metadata pass over a large mailbox then costs no await per message. Throws instead of skipping.
   */
  listFlags?(): Iterable<MessageInfo>;
  /**
   * Optional: what messages() yields (dates included), each message with its whole body where the
   * driver read it ahead, in another thread, with the body's sha256 (Maildir: a backup then leaves the
   * per-file system calls and the hashing to a second core). `body` is null for a message the driver
   * did not read ahead (too large, or the read failed): the caller reads it with readMessage or
   * openMessage, which report any error. `body.bytes` is read-only and valid only until the next
   * step of the iteration. Errors as for messages().
   */
  messagesWithBodies?(options?: { readonly minUid?: number }): AsyncIterable<MessageWithBody>;
  /** The message bytes; exactly `message.size` bytes. */
  openMessage(message: MessageInfo, options?: OpenMessageOptions): Promise<Readable>;
  /**
   * Optional: the bytes openMessage would yield, as one Buffer, for a message the driver reads whole
   * anyway (a small file): a view of `options.scratch` when it has room, or of memory the driver still
   * holds, so read-only and valid until the next call on this reader. null when the driver would
   * rather stream this one (call openMessage). Same bytes, same errors. A backup reads thousands of
   * messages a second; a stream per message cost 5-15 us of them (measured on the bench machine).
   */
  readMessage?(message: MessageInfo, options?: OpenMessageOptions): Promise<Buffer | null>;
  /**
   * Only with capabilities.sis: the message as inline parts and attachment references whose
   * concatenation (attachments encoded as described) is byte-identical to openMessage's output.
   * Returns null for a message stored whole.
   */
  openMessageParts?(message: MessageInfo): Promise<MessagePart[] | null>;
  /**
   * Optional: messages the driver found in the mailbox but cannot hand out, each as the error that
   * says which and why (Maildir: a file Dovecot has not given a UID yet, where giving it one failed).
   * Known when the reader is opened; a backup reports each as skipped and does not record the
   * mailbox as complete, so the next run reads it again.
   */
  readonly notListed?: readonly MailvaultError[];
  /**
   * Optional: what the backup should say of the mailbox as a whole although every message in it can
   * be handed out (Maildir: its Dovecot index could not be read, so keywords kept only there are not
   * known). Known when the reader is opened.
   */
  readonly warnings?: readonly string[];
  close(): Promise<void>;
}

/** Read side of one user's store. */
export interface MessageSource {
  readonly driverName: string;
  readonly capabilities: DriverCapabilities;
  readonly user: string;
  /** All mailboxes (selectable and \NoSelect), sorted by name in UTF-8 byte order. */
  listMailboxes(): Promise<MailboxInfo[]>;
  /**
   * Optional, cheap: the same mailboxes as listMailboxes() without reading any mailbox's messages, each
   * with its change token. A backup uses it to list, and an incremental to skip a mailbox whose token
   * is the one its base recorded.
   */
  listMailboxEntries?(): Promise<MailboxEntry[]>;
  /** Subscribed mailbox names (UTF-8, "/"), sorted; may name mailboxes that do not exist. */
  listSubscriptions(): Promise<string[]>;
  /** Throws StorageNotFoundError if the mailbox does not exist. */
  openMailbox(name: string): Promise<MailboxReader>;
  close(): Promise<void>;
}

export interface CreateMailboxOptions {
  readonly name: string;
  /** Requested identity; honoured by drivers with preservesMailboxIdentity. */
  readonly guid?: string | null;
  readonly uidValidity?: number;
  readonly specialUse?: readonly SpecialUse[];
}

export interface SaveMetadata {
  /** Requested UID. Honoured by drivers with preservesUids when >= the mailbox's UIDNEXT; otherwise a new UID is assigned. */
  readonly uid?: number;
  readonly guid?: string | null;
  readonly flags: readonly SystemFlag[];
  readonly keywords: readonly string[];
  readonly internalDate: number;
  /** Exact size of the body stream. */
  readonly size: number;
  readonly extra?: Readonly<Record<string, string>>;
}

export interface SavedMessage {
  /** The UID the message will have after commit (or null where the driver learns it only then). */
  readonly uid: number | null;
  readonly guid: string | null;
}

export interface CommitResult {
  /** UIDs in save order, as assigned. */
  readonly uids: readonly number[];
  readonly uidValidity: number;
  /**
   * Keywords the store could not keep, per message (`index`: its position in save order, from 0; `uid`:
   * its UID in this store, where known), in save order; absent when every keyword was stored. Maildir: a file name holds 26 keyword letters; Dovecot keeps further keywords
   * only in its index, which mailvault does not write.
   */
  readonly keywordsNotStored?: readonly { readonly index: number; readonly uid: number; readonly keywords: readonly string[] }[];
  /** Why, in a sentence for the user, when the reason is not the Maildir one above. */
  readonly keywordsNotStoredWhy?: string;
}

/**
 * A save transaction on one mailbox: save()* then commit() or rollback(). Nothing saved is visible to
 * other readers (Dovecot, IMAP clients) before commit(). commit() and rollback() consume the
 * transaction; any later call throws. If save() throws, the transaction is still open and the caller
 * must roll back (or commit the messages saved before).
 */
/**
 * A message body handed to save(): a stream, or the whole body as bytes (a caller that holds it in
 * memory anyway, e.g. restore from a dump, saves the stream machinery per message). The bytes are
 * read-only to the driver and used only during the call.
 */
export type SaveBody = Readable | Uint8Array;

export interface SaveTransaction {
  readonly mailbox: MailboxInfo;
  save(metadata: SaveMetadata, body: SaveBody): Promise<SavedMessage>;
  /**
   * Makes the saved messages visible. On failure none of them are, except where the store cannot take
   * back what it already stored (IMAP: messages APPENDed before the failure stay); the error then has
   * `keptBeforeFailure`, how many of the first saved messages stay.
   */
  commit(): Promise<CommitResult>;
  rollback(): Promise<void>;
}

/** What countExisting found of a message in a mailbox. */
export interface ExistingCopies {
  /** Copies with the same bytes (as served) and INTERNALDATE. */
  readonly same: number;
  /**
   * Server UIDs of copies with the same INTERNALDATE, size and header section whose body differs only
   * in base64 lines that decode to the same bytes: the message as a server changed it when it was saved
   * (Dovecot with single-instance attachment storage re-encodes a base64 attachment whose last
   * characters carry non-zero padding bits). A restore counts each such copy once as present, so that
   * a rerun does not add the message once more, and says so.
   */
  readonly altered: readonly number[];
  /** Optional: the keywords of each of the `same` copies, in server order (a rerun names what they lack). */
  readonly sameKeywords?: readonly (readonly string[])[];
}

/** What restore knows about a message when it asks a sink whether the message is already there. */
export interface ExistenceProbe {
  readonly guid: string | null;
  readonly size: number;
  readonly internalDate: number;
  /** sha256 (hex) of the exact bytes. */
  readonly sha256: string;
  /** Message-ID header value ("" if none). */
  readonly messageId: string;
  /** Opens the bytes (may be called more than once). */
  openBody(): Readable;
}

export interface SubscribeResult {
  readonly refused: readonly { readonly name: string; readonly reason: string }[];
}

/** Write side of one user's store. */
export interface MessageSink {
  readonly driverName: string;
  readonly capabilities: DriverCapabilities;
  readonly user: string;
  /** null if the mailbox does not exist. */
  getMailbox(name: string): Promise<MailboxInfo | null>;
  /**
   * Optional: throws MailboxNameError if this store cannot hold a mailbox of this name (Maildir++: a "."
   * inside a level), before anything is created.
   */
  checkMailboxName?(name: string): void;
  /**
   * Optional, for stores that cannot keep every keyword: the keywords (as keywordKey gives them: ASCII
   * letters lowercased) a message of this mailbox can carry now (Maildir: those with a letter in
   * dovecot-keywords), null for any. A restore asks it for messages already present, whose keywords
   * an earlier run may have had to leave out.
   */
  keywordsKept?(mailbox: string): Promise<ReadonlySet<string> | null>;
  /**
   * Optional: whether a message saved with this INTERNALDATE (seconds since the epoch) keeps it. Dovecot
   * replaces a date in the future with the time of an IMAP APPEND, and serves a Maildir file's mtime
   * before 1970 as a date after 2038. A restore names such messages (they are restored).
   */
  keepsInternalDate?(seconds: number): boolean;
  /** Creates the mailbox (and missing parents). Throws if it exists. */
  createMailbox(options: CreateMailboxOptions): Promise<MailboxInfo>;
  /**
   * Give an existing EMPTY mailbox (no messages, none ever: uidNext 1) a new identity.
   * Only with preservesMailboxIdentity. Throws if the mailbox is not empty.
   */
  resetMailboxIdentity?(name: string, identity: { guid?: string | null; uidValidity: number }): Promise<MailboxInfo>;
  /**
   * Raise the mailbox's UIDNEXT to at least `uidNext` (never lowers it), so that a restored mailbox keeps
   * the gap left by expunged messages at its end. Only with preservesUids.
   */
  raiseUidNext?(name: string, uidNext: number): Promise<MailboxInfo>;
  /** GUIDs of the messages present in the mailbox (to make restores idempotent). */
  listMessageGuids(name: string): AsyncIterable<{ uid: number; guid: string | null }>;
  /**
   * Optional, for sinks that cannot keep message GUIDs (IMAP APPEND assigns new ones): how many
   * messages equal to `probe` (same bytes as the server would serve them, same INTERNALDATE) the mailbox
   * already holds. When a sink has it, restore uses it instead of listMessageGuids to stay idempotent.
   */
  countExisting?(mailboxName: string, probe: ExistenceProbe): Promise<ExistingCopies>;
  beginSave(mailboxName: string): Promise<SaveTransaction>;
  /**
   * Adds subscriptions (existing ones kept). Resolves with the names the store refused and why (an
   * IMAP server may refuse a subscription to a mailbox that does not exist), or with nothing when it
   * took them all.
   */
  subscribe(names: readonly string[]): Promise<SubscribeResult | void>;
  close(): Promise<void>;
}

/** A driver that can both read and write (Maildir, IMAP, memory). */
export interface MailStore extends MessageSource, MessageSink {}
