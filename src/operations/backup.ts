/**
 * backup: read users' mail through the storage engine (MessageSource) and write one dump
 * (DumpWriter). Users, mailboxes and messages are written in a deterministic order (users and
 * mailboxes by UTF-8 bytes, messages by UID). A message that cannot be read is skipped and listed
 * (exit "partial"); a failure of the output aborts.
 */
import { availableParallelism } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { PassThrough, type Readable } from 'node:stream';
import { isoFromUnixSeconds } from '../archive/iso-time.js';
import type { DumpWriter, WriterPart } from '../archive/writer.js';
import { encodingFitsDump } from '../archive/parts.js';
import type { MailboxRecord, MessageInput } from '../archive/records.js';
import type { MailboxInfo, MailboxReader, MessageInfo, MessageSource, MessageWithBody } from '../storage/types.js';
import { MailvaultError, UnexpectedError, InterruptedError, StorageNotFoundError } from '../core/errors.js';
import { writerParts, splitMessage, type SplitOptions } from './attachments.js';
import { mailboxMatcher } from './selection.js';
import { SummaryTap, summaryOf } from './message-summary.js';
import { incompleteBase, describeChange, flagTableChunks, fullPlan, scanMailbox, type IncrementalPlanner, type MailboxChange, type MailboxPlan } from './incremental.js';
import { UidSequence, type CursorRecorder, type MailboxCursor } from './cursors.js';
import { skipUnreadableItems, type ItemErrorPolicy, type ProgressCallback, type SkippedItem, type WarningItem } from './progress.js';

export interface BackupOptions {
  /** Mailbox patterns (`*`, `%`); empty = all. */
  readonly mailboxes: readonly string[];
  readonly onItemError: ItemErrorPolicy;
  readonly onProgress?: ProgressCallback;
  readonly signal?: AbortSignal;
  /**
   * For sources without SIS (Maildir, IMAP): split base64 attachments of at least `minSize` bytes out of
   * messages into blobs (the writer must allow parts). null/absent: messages are stored whole. Sources with
   * SIS (dbox) store their external attachments as blobs whenever the writer allows parts.
   */
  readonly dedupAttachments?: SplitOptions | null;
  /** An incremental: per mailbox, what to carry compared with the base cursors (incremental.ts). */
  readonly incremental?: IncrementalPlanner | null;
  /** Collects every mailbox's cursor (for --state-file). */
  readonly recorder?: CursorRecorder | null;
  /**
   * Let the driver read bodies ahead in another thread where it can (MailboxReader.messagesWithBodies):
   * worth it only with a core to spare for it (see readAheadPays). Default false.
   */
  readonly readAhead?: boolean;
}

/**
 * True if this machine has a core for a read-ahead thread beside the backup's busy ones: the main
 * thread, and the compression worker when compressing.
 * Measured on 2 cores, 10k-message Maildir (4 interleaved runs each): uncompressed 1.65 -> 1.51 s
 * with it; zstd 2.29 -> 2.46 s, the three threads then competing for two cores.
 */
export function readAheadPays(compressing: boolean, cores: number = availableParallelism()): boolean {
  return cores >= (compressing ? 3 : 2);
}

export function defaultBackupOptions(overrides: Partial<BackupOptions> = {}): BackupOptions {
  return { mailboxes: [], onItemError: skipUnreadableItems, ...overrides };
}

export interface BackupSummary {
  users: number;
  mailboxes: number;
  messages: number;
  /** Message bytes written (full sizes, however stored). */
  bytes: number;
  /** Messages stored as stub + blobs. */
  messagesAsParts: number;
  /** Distinct blobs written, and their bytes. */
  blobs: number;
  blobBytes: number;
  skipped: SkippedItem[];
  /** Messages backed up with less than the store should tell (see MessageInfo.warning). */
  warnings: WarningItem[];
  /** Incrementals: per mailbox what changed, including deleted ones (status "deleted"). */
  changes: MailboxChange[];
  startedAt: string;
  finishedAt: string;
  seconds: number;
}

/** Opens one user's store; supplied by the front end, which knows the drivers. */
export type SourceOpener = (user: string) => Promise<MessageSource>;

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

function toIso(seconds: number | null): string | null {
  return seconds === null ? null : isoFromUnixSeconds(seconds);
}

function asMailvaultError(e: unknown): MailvaultError {
  return e instanceof MailvaultError ? e : new UnexpectedError(e instanceof Error ? e.message : String(e), { cause: e });
}

export async function backup(users: readonly string[], openSource: SourceOpener, writer: DumpWriter, options: BackupOptions): Promise<BackupSummary> {
  const started = Date.now();
  const summary: BackupSummary = { users: 0, mailboxes: 0, messages: 0, bytes: 0, messagesAsParts: 0, blobs: 0, blobBytes: 0, skipped: [], warnings: [], changes: [], startedAt: new Date(started).toISOString(), finishedAt: '', seconds: 0 };
  const wantMailbox = mailboxMatcher(options.mailboxes);
  let firstUserError: MailvaultError | null = null;
  const checkAbort = (): void => {
    if (options.signal?.aborted) throw new InterruptedError('backup interrupted; the dump is incomplete and has no trailer', { hint: 'run the backup again' });
  };
  const skip = (item: { user: string; mailbox?: string; uid?: number }, e: unknown): void => {
    const err = asMailvaultError(e);
    if (options.onItemError(item, err) === 'abort') throw err;
    summary.skipped.push({ ...item, code: err.code, reason: err.message, ...(err.hint ? { hint: err.hint } : {}) });
  };

  // Whole small messages are read into this one buffer (OpenMessageOptions.scratch), each written out
  // before the next is read, instead of into fresh memory per message.
  const scratch = Buffer.allocUnsafeSlow(SMALL_MESSAGE_BYTES + 1);
  for (const user of [...new Set(users)].sort(byteOrder)) {
    checkAbort();
    let source: MessageSource;
    try {
      source = await openSource(user);
    } catch (e) {
      firstUserError ??= asMailvaultError(e);
      skip({ user }, e);
      continue;
    }
    try {
      const mailboxes = (await listForBackup(source)).sort((a, b) => byteOrder(a.name, b.name));
      const subscriptions = await source.listSubscriptions();
      const subscribed = new Set(subscriptions);
      await writer.writeUser({ user, subscriptions });
      options.recorder?.touchUser(user);
      const planner = options.incremental ? options.incremental.forUser(user) : null;
      summary.users++;
      options.onProgress?.({ phase: 'user', user, messages: summary.messages, bytes: summary.bytes });
      // Mailboxes --mailbox leaves out are carried from the base cursor found by their GUID (a rename
      // keeps it, a mailbox created again under an old name has none): a listing without GUIDs (a
      // driver's cheap one) is completed by the full listing.
      const unselected = planner !== null ? mailboxes.filter((m) => m.selectable && !wantMailbox(m.name)) : [];
      const guids = unselected.some((m) => m.guid === null) && source.listMailboxEntries !== undefined ? new Map((await source.listMailboxes()).map((m) => [m.name, m.guid])) : null;
      // Two mailboxes with one GUID (a Maildir folder copied on disk keeps the original's uidlist GUID):
      // one keeps it, the base's owner where it is still listed under its name, else the first in name
      // order; the others go as mailboxes without a GUID (planned by name: to a chain, a mailbox of its
      // own), so that neither takes the other's cursor and a restore of the chain does not read one as
      // the other renamed and drop one (formats/dump-v1.md 5.10, rule 3).
      const guidsUsed = new Set<string>();
      const listedNames = new Set(mailboxes.map((m) => m.name));
      const identity = (name: string, guid: string | null): string | null => {
        if (guid === null) return null;
        const owner = planner?.baseNameOf(guid) ?? null;
        if (guidsUsed.has(guid) || (owner !== null && owner !== name && listedNames.has(owner))) return null;
        guidsUsed.add(guid);
        return guid;
      };
      for (const mailbox of mailboxes) {
        checkAbort();
        const wanted = wantMailbox(mailbox.name);
        if (!wanted && planner === null) continue;
        if (!mailbox.selectable) {
          // A \NoSelect level: its record only (also when --mailbox left it out of an incremental).
          await writer.writeMailbox(mailboxRecordOf(user, mailbox, subscribed.has(mailbox.name)));
          summary.mailboxes++;
          continue;
        }
        if (wanted) await backupMailbox(source, user, mailbox, subscribed.has(mailbox.name), writer, options, summary, skip, checkAbort, scratch, planner, identity);
        else if (planner !== null) await keepUnselectedMailbox(user, { ...mailbox, guid: guids?.get(mailbox.name) ?? mailbox.guid }, subscribed.has(mailbox.name), writer, options, summary, planner, identity);
      }
      if (planner) {
        for (const gone of planner.deleted()) summary.changes.push({ user, mailbox: gone.name, status: 'deleted', renamedFrom: null, newMessages: 0, flagEntries: 0, expunged: null });
      }
    } finally {
      await source.close();
    }
  }
  // Nothing could be opened at all (one user with a missing mail root, say): that is a failure of the
  // run, not a partial result.
  const unopened = summary.skipped.filter((s) => s.mailbox === undefined);
  if (summary.users === 0 && unopened.length > 0 && firstUserError) throw firstUserError;
  const finished = Date.now();
  summary.finishedAt = new Date(finished).toISOString();
  summary.seconds = (finished - started) / 1000;
  options.onProgress?.({ phase: 'done', messages: summary.messages, bytes: summary.bytes });
  return summary;
}

/** A mailbox record's fields from the listing (the record of a mailbox read whole). */
function mailboxRecordOf(user: string, mailbox: MailboxInfo, isSubscribed: boolean): Omit<MailboxRecord, 'type' | 'uidSet' | 'reset'> {
  return {
    user,
    name: mailbox.name,
    guid: mailbox.guid,
    uidValidity: mailbox.uidValidity,
    uidNext: mailbox.uidNext,
    highestModseq: mailbox.highestModseq,
    messageCount: mailbox.messageCount,
    specialUse: [...mailbox.specialUse],
    subscribed: isSubscribed,
    selectable: mailbox.selectable,
    metadata: {},
    acl: {},
  };
}

/**
 * An incremental with --mailbox: a mailbox left out of the selection that its base holds is carried as
 * the base has it (record from the base cursor, no message, no flag table), so that a restore of the
 * chain does not read it as deleted; its cursor stays the base's, so a later run carries what changed.
 * Mailboxes the base does not hold are left out, as in a full dump.
 */
async function keepUnselectedMailbox(
  user: string,
  mailbox: MailboxInfo,
  isSubscribed: boolean,
  writer: DumpWriter,
  options: BackupOptions,
  summary: BackupSummary,
  planner: ReturnType<IncrementalPlanner['forUser']>,
  identity: (name: string, guid: string | null) => string | null,
): Promise<void> {
  const record = mailboxRecordOf(user, mailbox, isSubscribed);
  // A copy's GUID (see backup): found by name.
  const kept = planner.kept({ ...mailbox, guid: identity(mailbox.name, mailbox.guid) });
  if (kept !== null) await writeUnchangedMailbox(user, record, kept, writer, options, summary, 'unselected');
}

async function backupMailbox(
  source: MessageSource,
  user: string,
  mailbox: MailboxInfo,
  isSubscribed: boolean,
  writer: DumpWriter,
  options: BackupOptions,
  summary: BackupSummary,
  skip: (item: { user: string; mailbox?: string; uid?: number }, e: unknown) => void,
  checkAbort: () => void,
  scratch: Buffer,
  planner: ReturnType<IncrementalPlanner['forUser']> | null,
  identity: (name: string, guid: string | null) => string | null,
): Promise<void> {
  const record = mailboxRecordOf(user, mailbox, isSubscribed);
  const base = planner?.unchanged(mailbox) ?? null;
  // (A cursor whose GUID another mailbox of this run has is not taken as is: the mailbox is read.)
  if (base !== null && identity(mailbox.name, base.guid) === base.guid) {
    await writeUnchangedMailbox(user, record, base, writer, options, summary);
    return;
  }
  let plan: MailboxPlan = fullPlan();
  let reader;
  try {
    reader = await source.openMailbox(mailbox.name);
  } catch (e) {
    skip({ user, mailbox: mailbox.name }, e);
    // An incremental carries a mailbox its base holds as the base has it (record from the base cursor,
    // no message, no flag table): without a record, a restore of the chain would read it as deleted and
    // drop its earlier mail. Its cursor stays the base's, so the next run carries what changed.
    // The mailbox's GUID where the listing gave one (a driver's cheap listing may not: then by name).
    const kept = planner?.kept({ ...mailbox, guid: identity(mailbox.name, mailbox.guid) }) ?? null;
    if (kept !== null) await writeUnchangedMailbox(user, record, kept, writer, options, summary, 'kept');
    return;
  }
  try {
    // The reader's info is fresher than the listing (it synced the mailbox). A metadata pass (no bodies)
    // gives the UID set, and for incrementals the flag table; messages arriving after the reader was
    // opened (UID >= its UIDNEXT) are left for the next run.
    // A copy's GUID (two mailboxes, one GUID: see backup) is not this mailbox's.
    const guid = identity(mailbox.name, reader.info.guid);
    const info = guid === reader.info.guid ? reader.info : { ...reader.info, guid };
    if (planner) plan = planner.plan(info, source.capabilities.hasModseq);
    let scan = await scanMailbox(reader, plan, info.uidNext, options.recorder != null);
    if (scan.lacking.length > 0) {
      // Older messages the base does not hold (it skipped them). If one can be read now, the mailbox
      // goes whole again (incompleteBase: a restore needs its UIDs in order). If none can, they are
      // reported again and stay out of the cursor; the rest of the mailbox goes as planned, instead
      // of a message that stays unreadable making every run carry the whole mailbox.
      const probe = await probeLacking(reader, scan.lacking, scratch);
      if (probe.readable) ({ plan, scan } = incompleteBase(plan, scan));
      else {
        for (const f of probe.failures) skip({ user, mailbox: mailbox.name, uid: f.uid }, f.error);
        scan = { ...scan, bodies: scan.bodies - scan.lacking.length }; // for the summary: not carried
      }
    }
    const uidSet = scan.uidSet.toString();
    await writer.writeMailbox({ ...record, uidValidity: info.uidValidity, uidNext: info.uidNext, guid: info.guid, highestModseq: info.highestModseq, messageCount: info.messageCount, uidSet, ...(planner ? { reset: plan.reset } : {}) });
    if (planner) {
      for (const chunk of flagTableChunks(scan.flagEntries)) await writer.writeFlagTable(user, mailbox.name, chunk);
      summary.changes.push(describeChange(user, info, plan, scan));
    }
    summary.mailboxes++;
    options.onProgress?.({ phase: 'mailbox', user, mailbox: mailbox.name, messages: summary.messages, bytes: summary.bytes });
    // Iterated by hand: a driver reports one unreadable message by rejecting one next() and goes on
    // with the following message on the next call (storage/types.ts, MailboxReader.messages).
    const listOptions = plan.minUid !== null ? { minUid: plan.minUid } : {};
    // Bodies read ahead in another thread where the driver can (Maildir), unless the plan picks
    // messages by date (bodies it does not want would be read too) or messages may go as parts.
    const readAhead = options.readAhead === true && reader.messagesWithBodies !== undefined && plan.savedSince === null && !mayWriteAsParts(source, reader, writer, options);
    const messages: AsyncIterator<MessageWithBody> = readAhead ? reader.messagesWithBodies!(listOptions)[Symbol.asyncIterator]() : withoutBodies(reader.messages(listOptions)[Symbol.asyncIterator]());
    // UIDs written: the cursor holds the UID set less what was wanted and not written (skipped, or
    // never reached: a driver that could not list it, or that ended the listing on an error).
    const written: number[] = [];
    for (;;) {
      let step: IteratorResult<MessageWithBody>;
      try {
        step = await messages.next();
      } catch (e) {
        const err = asMailvaultError(e);
        skip({ user, mailbox: mailbox.name, ...(err.context.uid !== undefined ? { uid: err.context.uid } : {}) }, err);
        continue;
      }
      if (step.done) break;
      const message = step.value.info;
      const preread = step.value.body;
      // The scan's decision, not a second one: what decides it (a ctime) may have moved since.
      if (message.uid >= info.uidNext || !scan.uidSet.has(message.uid) || !scan.wanted.has(message.uid)) continue;
      checkAbort();
      const where = { user, mailbox: mailbox.name, uid: message.uid };
      const asParts = await writeAsParts(source, reader, writer, user, mailbox.name, message, options, summary);
      if (asParts instanceof Error) {
        skip(where, asParts);
        continue;
      }
      if (!asParts) {
        let body: Readable | Buffer;
        if (preread !== null) body = preread.bytes;
        else {
          try {
            // Read whole where the driver does that anyway: no stream per message.
            const whole = reader.readMessage !== undefined && message.size <= SMALL_MESSAGE_BYTES ? await reader.readMessage(message, { scratch }) : null;
            body = whole ?? (await reader.openMessage(message, { scratch }));
          } catch (e) {
            skip(where, e);
            continue;
          }
        }
        // Done with the bytes (the writer has copied them) when this returns: scratch is free again.
        try {
          await writeOneMessage(writer, user, mailbox.name, message, body, preread?.sha256);
        } catch (e) {
          // A body that fails before the writer wrote any of it (read whole first, or failing before its
          // first byte: a message expunged meanwhile) is one message lost to this run, not the dump.
          if (!writer.usable) throw e;
          skip(where, e);
          continue;
        }
      }
      written.push(message.uid);
      scan.digest?.written(message.uid, message.flags, message.keywords);
      if (message.warning !== undefined) summary.warnings.push({ user, mailbox: mailbox.name, uid: message.uid, reason: message.warning });
      summary.messages++;
      summary.bytes += message.size;
      options.onProgress?.({ phase: 'message', user, mailbox: mailbox.name, messages: summary.messages, bytes: summary.bytes });
    }
    for (const reason of reader.warnings ?? []) summary.warnings.push({ user, mailbox: mailbox.name, reason });
    // Messages the driver found but could not hand out (no UID yet): reported, not in the dump.
    const notListed = reader.notListed ?? [];
    for (const e of notListed) skip({ user, mailbox: mailbox.name }, e);
    if (options.recorder) {
      // Left out of the cursor, the next incremental sees them as not held and carries them; without a
      // change token (also when the metadata pass could not list some messages) it reads the mailbox.
      const notHeld = UidSequence.of(scan.wanted.minus(UidSequence.of(written)));
      const held = notHeld.size === 0 ? uidSet : UidSequence.of(scan.uidSet.minus(notHeld)).toString();
      // A mailbox read with a warning (its Maildir index unreadable) gets no change token: the next
      // incremental reads it again, and carries what this one could not.
      const complete = notHeld.size === 0 && scan.unreadable === 0 && notListed.length === 0 && (reader.warnings ?? []).length === 0;
      for (const uid of notHeld) scan.digest?.dropped(uid);
      const flagDigest = scan.digest?.toString() ?? null;
      options.recorder.add(user, { name: mailbox.name, guid: info.guid, uidValidity: info.uidValidity, uidNext: info.uidNext, highestModseq: info.highestModseq, uidSet: held, changeToken: complete ? (info.changeToken ?? null) : null, ...(flagDigest !== null ? { flagDigest } : {}) });
    }
  } finally {
    await reader.close();
  }
}

/**
 * The mailboxes to back up. Where the driver can list them without reading their messages, that is
 * used (each mailbox's state then comes from its reader, read once), with the change tokens an
 * incremental compares; the record fields of a \NoSelect level are the same as listMailboxes() gives.
 */
async function listForBackup(source: MessageSource): Promise<MailboxInfo[]> {
  if (source.listMailboxEntries === undefined) return await source.listMailboxes();
  return (await source.listMailboxEntries()).map((e) => ({
    name: e.name,
    guid: null,
    uidValidity: 0,
    uidNext: 1,
    highestModseq: null,
    messageCount: 0,
    specialUse: e.specialUse,
    selectable: e.selectable,
    changeToken: e.changeToken,
  }));
}

/**
 * An incremental's record of a mailbox whose change token is the one its base recorded: nothing in it
 * changed, so it is not opened. Its state (UIDs, UIDNEXT, identity) is the base's, and it carries no
 * message and no flag table; the cursor is recorded again, token included.
 */
async function writeUnchangedMailbox(
  user: string,
  record: Omit<MailboxRecord, 'type' | 'uidSet' | 'reset'>,
  base: MailboxCursor,
  writer: DumpWriter,
  options: BackupOptions,
  summary: BackupSummary,
  status: 'unchanged' | 'kept' | 'unselected' = 'unchanged',
): Promise<void> {
  const uidSet = base.uidSet ?? '';
  const messageCount = UidSequence.parse(uidSet)?.size ?? 0;
  await writer.writeMailbox({ ...record, guid: base.guid, uidValidity: base.uidValidity, uidNext: base.uidNext, highestModseq: base.highestModseq, messageCount, uidSet, reset: false });
  options.recorder?.add(user, { ...base, name: record.name });
  summary.changes.push({ user, mailbox: record.name, status, renamedFrom: null, newMessages: 0, flagEntries: 0, expunged: 0, notRead: true });
  summary.mailboxes++;
  options.onProgress?.({ phase: 'mailbox', user, mailbox: record.name, messages: summary.messages, bytes: summary.bytes });
}

const NO_EXTRA: Readonly<Record<string, string>> = Object.freeze({});

/**
 * The writer's input for a message. Flags, keywords and extra are passed as they are, not copied: the
 * writer reads them only while the call runs and never changes them. `summary` is a value, or a function
 * when it is known only once the body has streamed past.
 */
function messageInput(user: string, mailbox: string, message: MessageInfo, summary: MessageInput['summary'] | (() => MessageInput['summary'])): MessageInput {
  const internalDate = toIso(message.internalDate)!;
  const saveDate = toIso(message.saveDate);
  const extra = message.extra ?? NO_EXTRA;
  if (typeof summary !== 'function') {
    return { user, mailbox, uid: message.uid, guid: message.guid, flags: message.flags, keywords: message.keywords, internalDate, saveDate, modseq: message.modseq, size: message.size, summary, extra };
  }
  return {
    user,
    mailbox,
    uid: message.uid,
    guid: message.guid,
    flags: message.flags,
    keywords: message.keywords,
    internalDate,
    saveDate,
    modseq: message.modseq,
    size: message.size,
    get summary() {
      return summary();
    },
    extra,
  };
}

const fitsDump = (p: WriterPart): boolean => p.kind === 'inline' || encodingFitsDump(p.encoding);

/**
 * Store the message as stub + blobs when that applies: the source has SIS and the message has external
 * attachments, or --dedup-attachments found attachments to split. Returns true if written, false if the
 * message is to be stored whole, or the error that makes it skipped (nothing of it written). An error
 * after which the writer is unusable is thrown (the dump is lost).
 */
/** False if writeAsParts returns false for every message of this reader (it checks the same). */
function mayWriteAsParts(source: MessageSource, reader: MailboxReader, writer: DumpWriter, options: BackupOptions): boolean {
  if (!writer.partsAllowed) return false;
  return (source.capabilities.sis && reader.openMessageParts !== undefined) || Boolean(options.dedupAttachments);
}

/** messages() as messagesWithBodies() yields it, without bodies. */
function withoutBodies(it: AsyncIterator<MessageInfo>): AsyncIterator<MessageWithBody> {
  return {
    async next(): Promise<IteratorResult<MessageWithBody>> {
      const step = await it.next();
      return step.done ? { done: true, value: undefined } : { done: false, value: { info: step.value, body: null } };
    },
    async return(): Promise<IteratorResult<MessageWithBody>> {
      await it.return?.();
      return { done: true, value: undefined };
    },
  };
}

async function writeAsParts(
  source: MessageSource,
  reader: MailboxReader,
  writer: DumpWriter,
  user: string,
  mailbox: string,
  message: MessageInfo,
  options: BackupOptions,
  summary: BackupSummary,
): Promise<boolean | MailvaultError> {
  if (!mayWriteAsParts(source, reader, writer, options)) return false;
  const sis = source.capabilities.sis && reader.openMessageParts !== undefined;
  const counted = (r: { blobsWritten: number }, blobBytesBefore: number): true => {
    summary.messagesAsParts++;
    summary.blobs += r.blobsWritten;
    summary.blobBytes += writer.blobBytes - blobBytesBefore;
    return true;
  };
  if (sis) {
    let parts;
    try {
      parts = await reader.openMessageParts!(message);
    } catch (e) {
      return asMailvaultError(e);
    }
    if (parts === null) return false;
    const mapped = writerParts(parts);
    if (!mapped.parts.every(fitsDump)) return false; // rebuilt by the driver and stored whole
    try {
      const before = writer.blobBytes;
      return counted(await writer.writeMessageParts(messageInput(user, mailbox, message, () => mapped.summary), mapped.parts), before);
    } catch (e) {
      if (writer.usable) return asMailvaultError(e);
      throw e;
    }
  }
  let split;
  try {
    split = await splitMessage(() => reader.openMessage(message), message, options.dedupAttachments!);
  } catch (e) {
    return asMailvaultError(e);
  }
  if (split === null) return false;
  try {
    if (!split.parts.every(fitsDump)) return false;
    const before = writer.blobBytes;
    return counted(await writer.writeMessageParts(messageInput(user, mailbox, message, () => split.summary), split.parts, split.sha256), before);
  } catch (e) {
    // Parts that do not rebuild the message exactly: store it whole (nothing was written).
    if (writer.usable) return false;
    throw e;
  } finally {
    await split.dispose();
  }
}

/** Messages up to this size go to the writer as one Buffer, without a per-message stream pipeline. */
const SMALL_MESSAGE_BYTES = 1024 * 1024;

/**
 * All of a small body, as one Buffer: what the stream has buffered is taken with read(), and only when
 * it has nothing ready is an event awaited. Drivers hand small messages over already read
 * (Readable.from([buffer])), so this is mostly two read() calls and one wait for 'end', against an
 * async iterator, its end-of-stream watcher and their listeners per message (profiled: about half the
 * cost). Stops collecting once more than `limit` bytes came (the writer then reports the size mismatch).
 */
async function collectSmallBody(body: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  for (;;) {
    let c: unknown;
    while (got <= limit && (c = body.read()) !== null) {
      const chunk = Buffer.isBuffer(c) ? c : Buffer.from(c as string);
      chunks.push(chunk);
      got += chunk.length;
    }
    if (got > limit || body.readableEnded) break;
    // Destroyed already: its 'error'/'close' have been emitted, no event would come.
    if (body.destroyed) throw body.errored ?? new UnexpectedError('the message body stream closed before its end');
    const ended = await nextEvent(body);
    if (ended) break;
  }
  if (got > limit) body.destroy();
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, got);
}

/** Wait until `body` has data ('readable': false) or has ended ('end': true); reject on error or a close before the end. */
function nextEvent(body: Readable): Promise<boolean> {
  return new Promise<boolean>((resolve, reject) => {
    const done = (): void => {
      body.off('readable', onReadable);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
    };
    const onReadable = (): void => {
      done();
      resolve(false);
    };
    const onEnd = (): void => {
      done();
      resolve(true);
    };
    const onError = (err: Error): void => {
      done();
      reject(err);
    };
    const onClose = (): void => {
      done();
      if (body.readableEnded) resolve(true);
      else reject(body.errored ?? new UnexpectedError('the message body stream closed before its end'));
    };
    body.on('readable', onReadable);
    body.on('end', onEnd);
    body.on('error', onError);
    body.on('close', onClose);
  });
}

async function writeOneMessage(writer: DumpWriter, user: string, mailbox: string, message: MessageInfo, body: Readable | Buffer, sha256?: string): Promise<void> {
  // Most mail: a stream pipeline, a PassThrough and their AbortSignal cost more per message than
  // reading the bytes (profiled: ~40% of a backup of 100k small messages). A small body (read whole by
  // the driver, or collected here) goes to the writer as one Buffer, its envelope read from its header.
  // A body larger than announced stops being collected at the limit; the writer then reports the size
  // mismatch.
  const bytes = Buffer.isBuffer(body) ? body : message.size <= SMALL_MESSAGE_BYTES ? await collectSmallBody(body, SMALL_MESSAGE_BYTES) : null;
  if (bytes !== null) {
    await writer.writeMessage(messageInput(user, mailbox, message, summaryOf(bytes)), bytes, sha256 !== undefined && bytes === body ? { sha256 } : undefined);
    return;
  }
  const tap = new SummaryTap();
  const out = new PassThrough();
  // The record is written after the body, so the summary (parsed while the body streams) is final by then.
  const input = messageInput(user, mailbox, message, () => ({ ...tap.summary }));
  // If the writer fails, destroying `out` also ends the pipeline, so neither promise is left hanging.
  const writing = writer.writeMessage(input, out).catch((e: unknown) => {
    out.destroy(e instanceof Error ? e : new Error(String(e)));
    throw e;
  });
  const results = await Promise.allSettled([writing, pipeline(body, tap, out)]);
  // Written: the writer read the body to its end (so the pipeline ended too) and wrote the record.
  if (results[0].status === 'fulfilled') return;
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    out.destroy();
    throw failed.reason;
  }
}

/**
 * Tries to read the messages `uids` (ascending; older messages an incremental's base does not hold,
 * all in the metadata pass's UID set): readable as soon as one reads whole; otherwise the error of
 * each. One the listing does not yield (a driver that fails it without naming the UID, as for a
 * corrupt sdbox file) gets a "could not be listed" error. Reads into `scratch` and drops the bytes.
 */
async function probeLacking(reader: MailboxReader, uids: readonly number[], scratch: Buffer): Promise<{ readable: boolean; failures: Array<{ uid: number; error: unknown }> }> {
  const pending = new Set(uids);
  const last = uids[uids.length - 1]!;
  const failures: Array<{ uid: number; error: unknown }> = [];
  const it = reader.messages({ minUid: uids[0]! })[Symbol.asyncIterator]();
  try {
    while (pending.size > 0) {
      let step: IteratorResult<MessageInfo>;
      try {
        step = await it.next();
      } catch (e) {
        const uid = asMailvaultError(e).context.uid;
        if (uid !== undefined && pending.delete(uid)) failures.push({ uid, error: e });
        continue;
      }
      if (step.done || step.value.uid > last) break;
      const message = step.value;
      if (!pending.delete(message.uid)) continue;
      try {
        for await (const _ of await reader.openMessage(message, { scratch })) void _;
        return { readable: true, failures };
      } catch (e) {
        failures.push({ uid: message.uid, error: e });
      }
    }
  } finally {
    await it.return?.();
  }
  for (const uid of pending) failures.push({ uid, error: new StorageNotFoundError(`message UID ${uid} could not be listed`, { uid, hint: 'let Dovecot check the mailbox ("doveadm force-resync"); the message is not in this dump' }) });
  return { readable: false, failures };
}
