/**
 * The records of the mailvault dump format, version 1 (spec: formats/dump-v1.md). These types are the
 * archive's own: they do not import the storage engine (operations map between the two).
 */

/** Version 1: every message is stored whole (`<uid>.eml`). Written when the dump holds no parts. */
export const FORMAT_VERSION_PLAIN = 1;
/** Version 2: messages may be stored as a stub plus blob references (`<uid>.stub`, record `parts`). */
export const FORMAT_VERSION_PARTS = 2;
/** Version 3: incremental dumps, which hold flag-table members (`flags.<n>.json`). */
export const FORMAT_VERSION_INCREMENTAL = 3;
/**
 * Version 4: everything of version 3; the trailer digest takes the content of bodies, stubs and blobs
 * as its sha256 (HASHED_CONTENT_DIGEST) instead of its bytes. Every dump is written as version 4.
 */
export const FORMAT_VERSION_HASHED_CONTENT = 4;
/** The format version this code writes. */
export const FORMAT_VERSION_WRITTEN = FORMAT_VERSION_HASHED_CONTENT;
/** The newest format version this code reads. */
export const FORMAT_VERSION_MAX_READ = FORMAT_VERSION_HASHED_CONTENT;
/** The trailer digest's algorithm up to version 3: sha256 of every byte before the trailer. */
export const PLAIN_DIGEST = 'sha256';
/** The trailer digest's algorithm from version 4 (spec section 5.6). */
export const HASHED_CONTENT_DIGEST = 'sha256-hashed-content';
export type DigestAlgorithm = typeof PLAIN_DIGEST | typeof HASHED_CONTENT_DIGEST;
export const FORMAT_NAME = 'mailvault-dump';

export type DumpKind = 'full' | 'incremental';

/** First member, `mailvault/header.json`. */
export interface HeaderRecord {
  readonly type: 'header';
  readonly format: typeof FORMAT_NAME;
  readonly version: number;
  /** "mailvault 0.1.0" */
  readonly creator: string;
  /** ISO 8601 UTC, e.g. 2026-11-28T14:00:00Z */
  readonly created: string;
  /** Random UUID of this run. */
  readonly runId: string;
  readonly kind: DumpKind;
  /** For incrementals: the run this dump follows. */
  readonly base: { readonly runId: string; readonly created: string } | null;
  /** What was read: driver name, location (Dovecot syntax) or IMAP URL, host name. */
  readonly source: { readonly driver: string; readonly location: string; readonly host: string };
  /** The options that shaped the dump (mailbox filters, since, compression). Informational. */
  readonly options: Readonly<Record<string, unknown>>;
}

/** `users/<user>/user.json`, before that user's mailboxes. */
export interface UserRecord {
  readonly type: 'user';
  readonly user: string;
  /** Subscribed mailbox names (UTF-8, "/"), sorted. */
  readonly subscriptions: readonly string[];
}

/** `users/<user>/mailboxes/<name>/mailbox.json`, before that mailbox's messages. */
export interface MailboxRecord {
  readonly type: 'mailbox';
  readonly user: string;
  /** UTF-8, "/" separated. */
  readonly name: string;
  readonly guid: string | null;
  readonly uidValidity: number;
  readonly uidNext: number;
  readonly highestModseq: string | null;
  readonly messageCount: number;
  readonly specialUse: readonly string[];
  readonly subscribed: boolean;
  readonly selectable: boolean;
  /** Reserved: IMAP METADATA entries (RFC 5464), name -> value. */
  readonly metadata: Readonly<Record<string, string>>;
  /** Reserved: ACL entries (RFC 4314), identifier -> rights. */
  readonly acl: Readonly<Record<string, string>>;
  /**
   * UIDs present when the mailbox was read, as IMAP sequence-set text ("1:5,7,9:120"), ascending, no "*".
   * Written by mailvault 0.3 in every dump; absent in older dumps (a v1 addition: readers ignore it).
   */
  readonly uidSet?: string;
  /** Incrementals (version 3): true when the dump carries the mailbox whole (new since the base, or UIDVALIDITY changed). */
  readonly reset?: boolean;
}

/** One line of a flag table: a message whose body is in an earlier dump, and its flags now. */
export interface FlagTableEntry {
  readonly uid: number;
  readonly flags: readonly string[];
  readonly keywords: readonly string[];
}

/**
 * Version 3 (incrementals): `users/<U>/mailboxes/<M>/flags.<n>.json`, n = 1, 2, ..., after the mailbox
 * record and before its messages; at most FLAG_TABLE_MAX_ENTRIES entries each, UIDs ascending across them.
 */
export interface FlagTableRecord {
  readonly type: 'flags';
  readonly user: string;
  readonly mailbox: string;
  /** 1-based number of this table within the mailbox. */
  readonly seq: number;
  readonly entries: readonly FlagTableEntry[];
}

/** Entries per flag-table member: with 64 keywords of 50 bytes per message a table stays under 1 MiB... most of the time; the writer checks. */
export const FLAG_TABLE_MAX_ENTRIES = 2000;

/** Envelope fields for `list` (taken from the message header at backup time; may be empty). */
export interface MessageSummary {
  readonly from: string;
  readonly subject: string;
  readonly messageId: string;
  /** The Date: header as written, or "". */
  readonly date: string;
}

/** How a blob's stored (decoded) content becomes message bytes. */
export type PartEncoding = { readonly type: 'raw' } | { readonly type: 'base64'; readonly lineLength: number; readonly crlf: boolean };

/**
 * One piece of a message stored as parts (version 2). Inline pieces are consecutive ranges of the stub
 * member, in order; a blob piece is the blob's content, encoded, cut to `size` bytes.
 */
export type PartRecord =
  | { readonly type: 'inline'; readonly offset: number; readonly size: number }
  | {
      readonly type: 'blob';
      readonly sha256: string;
      /** Bytes of the blob member (decoded content). */
      readonly contentSize: number;
      /** Bytes this piece contributes to the message. */
      readonly size: number;
      readonly encoding: 'raw' | 'base64';
      /** base64 only: characters per line, and CRLF (else LF) between lines; no break after the last line. */
      readonly lineLength?: number;
      readonly crlf?: boolean;
    };

/**
 * `users/<user>/mailboxes/<name>/<uid>.json`, immediately after the body member `<uid>.eml` (or, version 2,
 * after the stub member `<uid>.stub`; then `stub` and `parts` are present).
 */
export interface MessageRecord {
  readonly type: 'message';
  readonly user: string;
  readonly mailbox: string;
  readonly uid: number;
  readonly guid: string | null;
  readonly flags: readonly string[];
  readonly keywords: readonly string[];
  /** INTERNALDATE, ISO 8601 UTC with seconds. */
  readonly internalDate: string;
  readonly saveDate: string | null;
  readonly modseq: string | null;
  /** Size of the full message in bytes. */
  readonly size: number;
  /** sha256 (hex) of the full message bytes. */
  readonly sha256: string;
  readonly summary: MessageSummary;
  readonly extra: Readonly<Record<string, string>>;
  /** Version 2, stored as parts only: size and sha256 of the stub member. */
  readonly stub?: { readonly size: number; readonly sha256: string };
  /** Version 2, stored as parts only: how to rebuild the full message from the stub and blobs. */
  readonly parts?: readonly PartRecord[];
}

/** Input to DumpWriter.writeMessage: the record without the fields the writer computes. */
export type MessageInput = Omit<MessageRecord, 'type' | 'sha256' | 'stub' | 'parts'>;

/** Counts in the trailer. */
export interface TrailerCounts {
  readonly users: number;
  readonly mailboxes: number;
  readonly messages: number;
  readonly blobs: number;
  /** Sum of the full message sizes (record `size`), whether stored whole or as parts. */
  readonly messageBytes: number;
}

/** Where the TOC member sits (offsets in the uncompressed tar stream). */
export interface TocLocation {
  /** Offset of the TOC member's first tar header block. */
  readonly offset: number;
  /** Offset of the TOC member's data. */
  readonly dataOffset: number;
  /** Size of the TOC member's data in bytes. */
  readonly size: number;
  /** sha256 (hex) of the TOC member's data. */
  readonly sha256: string;
}

/** Last member, `mailvault/trailer.json`: the completion marker. */
export interface TrailerRecord {
  readonly type: 'trailer';
  readonly format: typeof FORMAT_NAME;
  readonly version: number;
  /** The header's runId. */
  readonly runId: string;
  /** ISO 8601 UTC: when the writer finished. */
  readonly completed: string;
  readonly counts: TrailerCounts;
  readonly toc: TocLocation;
  /**
   * The archive digest of the uncompressed stream before the trailer member's first header block:
   * every byte (versions 1-3, "sha256"), or with each body, stub and blob as its sha256 (version 4,
   * "sha256-hashed-content"; spec section 5.6).
   */
  readonly digest: { readonly algorithm: DigestAlgorithm; readonly value: string };
  readonly complete: true;
}

/** `blobs/<2 hex>/<sha256>`: decoded attachment content, stored once per dump. */
export interface BlobInput {
  /** sha256 (hex, lowercase) of the content; also the member name. */
  readonly sha256: string;
  readonly size: number;
}

export type TocEntryType = 'header' | 'user' | 'mailbox' | 'message' | 'blob' | 'flags';

/** Fields every TOC line has. */
interface TocEntryBase {
  /** Stable entry id: 1-based ordinal over users, mailboxes and messages in dump order; 0 for header and blobs. */
  readonly id: number;
  readonly member: string;
  readonly type: TocEntryType;
  /** Offset of the member's first tar header block (a pax header if there is one). */
  readonly offset: number;
  readonly dataOffset: number;
  readonly size: number;
  readonly sha256: string;
}

export interface TocHeaderEntry extends TocEntryBase { readonly type: 'header' }
export interface TocBlobEntry extends TocEntryBase { readonly type: 'blob' }
/** Version 3: a flag table (id 0, like blobs: not an entry of list files). */
export interface TocFlagsEntry extends TocEntryBase { readonly type: 'flags'; readonly user: string; readonly mailbox: string }
export interface TocUserEntry extends TocEntryBase { readonly type: 'user'; readonly user: string }
export interface TocMailboxEntry extends TocEntryBase { readonly type: 'mailbox'; readonly user: string; readonly mailbox: string }
/** One line per message; `member`/`offset`/`size`/`sha256` describe the `.eml` (or `.stub`), `record*` the `.json`. */
export interface TocMessageEntry extends TocEntryBase {
  readonly type: 'message';
  readonly recordOffset: number;
  readonly recordDataOffset: number;
  readonly recordSize: number;
  readonly recordSha256: string;
  readonly user: string;
  readonly mailbox: string;
  readonly uid: number;
  readonly flags: readonly string[];
  readonly keywords: readonly string[];
  readonly internalDate: string;
  readonly summary: MessageSummary;
}

/** One line of `mailvault/toc.jsonl`. */
export type TocEntry = TocHeaderEntry | TocBlobEntry | TocFlagsEntry | TocUserEntry | TocMailboxEntry | TocMessageEntry;
