/**
 * restore: read a dump (one pass, from a pipe or a file) and write the selected users, mailboxes and
 * messages through the storage engine (MessageSink). The writing half, RestoreSession, is shared with
 * restore-from-file.ts (random access to a dump file for narrow selections).
 *
 * Identity: into an absent mailbox, or an empty one that never held mail, the mailbox keeps its GUID
 * and UIDVALIDITY and every message its UID and GUID (drivers with the capabilities). Into a mailbox
 * that already holds mail, messages are appended with new UIDs (their GUIDs kept).
 *
 * Idempotency, without altering message bytes:
 * - Sinks that keep GUIDs (Maildir): the GUIDs present in the target mailbox are counted when it is
 *   opened; a message is skipped while the target holds at least as many messages with its GUID as
 *   this run has met so far (the dump may hold the same GUID twice).
 * - Sinks that cannot keep GUIDs (IMAP: APPEND assigns new ones) answer countExisting: how many
 *   messages with the same bytes (modulo line ends, as the server serves them) and the same
 *   INTERNALDATE the mailbox holds. The same counting rule applies, with "same bytes + INTERNALDATE"
 *   as the identity. A mailbox created by this run, or empty when this run opened it, is not asked.
 * The counts are kept per TARGET mailbox, so several source mailboxes restored into one --to-mailbox
 * count together. A rerun after a crash finds every message an earlier run committed (or APPENDed
 * before dying in the middle of a commit: APPEND is atomic per message) and adds only the rest. Two
 * messages that are byte-identical with the same INTERNALDATE are one identity: a mailbox that already
 * holds one such copy that did not come from the dump gets one copy fewer.
 *
 * Integrity: the reader yields a message only after its size and sha256 matched its record. Messages
 * are committed in batches; on a damaged or truncated dump everything verified so far is committed and
 * the error is raised with a count of what was restored.
 */
import type { Readable } from 'node:stream';
import { readDump, type DumpEntry } from '../archive/reader.js';
import type { MailboxRecord, MessageRecord, UserRecord } from '../archive/records.js';
import type { MailboxInfo, MessageSink, SaveTransaction, SystemFlag } from '../storage/types.js';
import { MailboxNameError, MailvaultError, UnexpectedError, InterruptedError } from '../core/errors.js';
import { keywordKey, normalizeFlags } from '../storage/flags.js';
import { mailboxMatcher, messageMatches, userMatcher, type Selection } from './selection.js';
import type { ProgressCallback } from './progress.js';

export interface RestoreOptions {
  readonly selection: Selection;
  /** Restore every selected user into this user. */
  readonly toUser?: string;
  /** Restore every selected message into this mailbox. */
  readonly toMailbox?: string;
  /** Messages per commit (each commit is durable). */
  readonly commitEvery: number;
  /** Report what would be restored without writing. */
  readonly dryRun: boolean;
  readonly onProgress?: ProgressCallback;
  readonly onWarning?: (message: string) => void;
  readonly signal?: AbortSignal;
}

export function defaultRestoreOptions(overrides: Partial<RestoreOptions> = {}): RestoreOptions {
  return { selection: {}, commitEvery: 500, dryRun: false, ...overrides };
}

export interface RestoredMailbox {
  user: string;
  mailbox: string;
  /** The source mailbox in the dump. */
  from: string;
  created: boolean;
  identityPreserved: boolean;
  restored: number;
  alreadyPresent: number;
  /** Source UIDs found on the server with other body bytes (ExistingCopies.altered), counted as already present. */
  alteredByServer?: number[];
  /** Messages (by UID in the dump) restored without some of their keywords, which the target could not store (CommitResult.keywordsNotStored). */
  keywordsNotStored?: { uid: number; keywords: string[] }[];
  /** CommitResult.keywordsNotStoredWhy: the target's reason, where it is not a Maildir file name's 26 letters. */
  keywordsNotStoredWhy?: string;
  /** Source UIDs of messages the target cannot hold at all (0 bytes over IMAP), not restored. */
  messagesNotStored?: number[];
  /** Source UIDs of messages restored with an INTERNALDATE the target does not keep (MessageSink.keepsInternalDate). */
  datesNotKept?: number[];
}

export interface MailboxNotRestored {
  user: string;
  /** The target name that could not be created. */
  mailbox: string;
  /** The source mailbox in the dump. */
  from: string;
  reason: string;
  hint?: string;
  /** Its messages in the dump (selected ones), none of which was restored. */
  messages: number;
}

export interface RestoreSummary {
  users: number;
  mailboxes: RestoredMailbox[];
  messages: number;
  bytes: number;
  alreadyPresent: number;
  /** Set when the dump was damaged or cut short: what stopped the restore. */
  stoppedAt: { offset: number | null; member: string | null; code: string; message: string } | null;
  dumpComplete: boolean;
  /** --use-list ids that name no entry of the dump. */
  unknownIds: number[];
  /** Mailboxes left out because the target cannot hold their names; each was also a warning. */
  mailboxesNotRestored?: MailboxNotRestored[];
  /** Subscriptions the target refused (over IMAP: to mailboxes that do not exist); each was also a warning. */
  subscriptionsNotRestored?: { user: string; mailbox: string; reason: string }[];
  seconds: number;
  /** How the dump was read: "sequential" (one pass) or "random-access" (trailer, TOC, selected members). */
  access?: 'sequential' | 'random-access';
}

export type SinkOpener = (user: string) => Promise<MessageSink>;

/** Up to ten of `items` joined with `sep`, with `sep` and "..." after them when there are more. */
function someOf(items: readonly (string | number)[], sep: string): string {
  return `${items.slice(0, 10).join(sep)}${items.length > 10 ? `${sep}...` : ''}`;
}

/** One warning per target mailbox for which `warn` has one. */
function perMailbox(summary: Pick<RestoreSummary, 'mailboxes'>, warn: (m: RestoredMailbox) => string | null): string[] {
  return summary.mailboxes.flatMap((m) => {
    const w = warn(m);
    return w === null ? [] : [w];
  });
}

/**
 * One warning per target mailbox where messages of the dump were found on the server with other body
 * bytes (RestoredMailbox.alteredByServer): counted as present, so not sent again; the server holds
 * them as it changed them.
 */
export function alteredByServerWarnings(summary: Pick<RestoreSummary, 'mailboxes'>): string[] {
  return perMailbox(summary, (m) => {
    const altered = m.alteredByServer ?? [];
    if (altered.length === 0) return null;
    return (
      `${m.user} ${m.mailbox}: ${altered.length} messages (UID ${someOf(altered, ', ')} in the dump) are on the server with other body bytes than in the dump (same headers, size and INTERNALDATE): ` +
      'the server changed them when they were saved (Dovecot with mail_attachment_dir re-encodes base64 attachments that are not in canonical form); counted as present, not sent again'
    );
  });
}

/**
 * One warning per target mailbox with messages the target cannot hold (RestoredMailbox.messagesNotStored:
 * messages of 0 bytes, which an IMAP server refuses): not restored; the caller exits 3.
 */
export function messagesNotStoredWarnings(summary: Pick<RestoreSummary, 'mailboxes'>): string[] {
  return perMailbox(summary, (m) => {
    const uids = m.messagesNotStored ?? [];
    if (uids.length === 0) return null;
    return (
      `${m.user} ${m.mailbox}: ${uids.length} messages of 0 bytes (UID ${someOf(uids, ', ')} in the dump) not restored: ` +
      'an IMAP server does not store a message without bytes (Dovecot: "Can\'t save a zero byte message"); restore this mailbox into a Maildir (--location) to keep them'
    );
  });
}

/** One warning per target mailbox with messages whose INTERNALDATE the target does not keep (RestoredMailbox.datesNotKept); the caller exits 3. */
export function datesNotKeptWarnings(summary: Pick<RestoreSummary, 'mailboxes'>): string[] {
  return perMailbox(summary, (m) => {
    const uids = m.datesNotKept ?? [];
    if (uids.length === 0) return null;
    return (
      `${m.user} ${m.mailbox}: ${uids.length} messages (UID ${someOf(uids, ', ')} in the dump) restored, but their INTERNALDATE (in the future, or before 1970) is not kept: ` +
      'Dovecot gives a message APPENDed with a future date the time of saving, and serves a Maildir mtime before 1970 as a date after 2038'
    );
  });
}

/**
 * One warning per target mailbox whose messages were restored without some of their keywords
 * (RestoredMailbox.keywordsNotStored): the restore did not give back the whole state, which the caller
 * reports (the CLI exits 3).
 */
export function keywordsNotStoredWarnings(summary: Pick<RestoreSummary, 'mailboxes'>): string[] {
  return perMailbox(summary, (m) => {
    const list = m.keywordsNotStored ?? [];
    if (list.length === 0) return null;
    const names = [...new Set(list.flatMap((x) => x.keywords))].sort();
    return (
      `${m.user} ${m.mailbox}: ${list.length} messages (UID ${someOf(list.map((x) => x.uid), ', ')} in the dump) restored without ${names.length === 1 ? 'the keyword' : `${names.length} keywords`} ${someOf(names, ' ')}: ` +
      (m.keywordsNotStoredWhy ??
        'a Maildir file name holds 26 keyword letters and Dovecot keeps further keywords only in its index, which mailvault does not write; restore this mailbox through IMAP (--imap) to keep every keyword')
    );
  });
}

/** Does the selection name single messages (so a mailbox is created only when one of its messages is selected)? */
export function isNarrowSelection(sel: Selection): boolean {
  return Boolean(sel.ids || sel.uids || sel.messageIds?.length || sel.from || sel.subject || sel.since !== undefined || sel.before !== undefined);
}

export function emptySummary(): RestoreSummary {
  return { users: 0, mailboxes: [], messages: 0, bytes: 0, alreadyPresent: 0, stoppedAt: null, dumpComplete: false, unknownIds: [], seconds: 0 };
}

interface MailboxState {
  target: string;
  /**
   * This source mailbox's identity went to the target (it was created or reset for it): its UIDs and
   * UIDNEXT are kept. Per open, not per target: under --to-mailbox, other sources share the report.
   */
  identityPreserved: boolean;
  /** Server UIDs of copies the server changed, counted as present for a dump message (its key). */
  claimed: Map<number, string>;
  /** MessageSink.keywordsKept of the target, once asked. */
  keywordsKept?: ReadonlySet<string> | null;
  info: MailboxInfo;
  sameIncarnation: boolean;
  /** The target held no message when this run opened it (or was created by it): nothing to look for. */
  startedEmpty: boolean;
  present: Map<string, number>;
  seen: Map<string, number>;
  tx: SaveTransaction | null;
  pending: number;
  /** Sizes of the messages saved in the open batch (pending), to take back what a failed commit did not keep. */
  pendingSizes: number[];
  /** Their UIDs in the dump, in save order: what a commit reports by position is reported by these. */
  pendingUids: number[];
  report: RestoredMailbox;
  source: MailboxRecord;
}

/**
 * Bodies up to this size go to the sink as one buffer when the reader holds them in memory. A larger
 * body held in pieces would be joined by a copy that costs more than the stream it saves (the Maildir
 * sink streams bodies over 1 MiB anyway): 0.15 s of a 10k restore's 4.5 s went to such copies.
 */
const JOIN_BODY_BYTES = 1024 * 1024;

function seconds(iso: string): number {
  return Math.floor(Date.parse(iso) / 1000);
}

/**
 * The writing half of a restore: opens sinks per target user, creates or reuses mailboxes, skips what
 * is already there (see the file comment), batches saves into transactions and subscribes. Callers feed
 * it in dump order: openMailbox(record), then message(record, body) for its messages, then
 * finishMailbox(); finishUser(subscriptions) at the end of a user; close() always.
 */
export class RestoreSession {
  private readonly sinks = new Map<string, MessageSink>();
  /** Per target user + mailbox: identity key -> how often this run met it. */
  private readonly seenByTarget = new Map<string, Map<string, number>>();
  private box: MailboxState | null = null;
  /** The mailbox being skipped (its name cannot be stored in the target), while its messages go by. */
  private notRestored: MailboxNotRestored | null = null;
  /** summary.mailboxes by user + "\0" + target mailbox. */
  private readonly reports = new Map<string, RestoredMailbox>();
  /** summary.mailboxesNotRestored by user + "\0" + target mailbox. */
  private readonly notRestoredByTarget = new Map<string, MailboxNotRestored>();
  /** Source mailbox names restored for the current user (for subscriptions). */
  restoredNames = new Set<string>();

  constructor(
    private readonly openSink: SinkOpener,
    private readonly options: RestoreOptions,
    readonly summary: RestoreSummary,
  ) {}

  async sinkFor(user: string): Promise<MessageSink> {
    const target = this.options.toUser ?? user;
    let sink = this.sinks.get(target);
    if (!sink) {
      sink = await this.openSink(target);
      this.sinks.set(target, sink);
    }
    return sink;
  }

  get hasOpenMailbox(): boolean {
    return this.box !== null;
  }

  /**
   * Commits run one after another, in order (so UIDs are assigned in dump order), but a full batch's
   * commit runs in the background while the next batch is written: its fsyncs then overlap with the
   * next files instead of idling. At most one commit is in flight: a batch that is full while the
   * previous commit still runs waits for it, so a dump that reads faster than the disk commits holds
   * at most two batches (before, every batch waited in memory and in tmp/: 89k pending messages and
   * 520 MiB of RSS in a restore of 100k small messages). Every other path waits for it (settle()).
   */
  private committing: Promise<void> = Promise.resolve();
  private commitError: unknown = null;

  private async startCommit(): Promise<void> {
    if (!this.box?.tx) return;
    const tx = this.box.tx;
    const report = this.box.report;
    const sizes = this.box.pendingSizes;
    const sourceUids = this.box.pendingUids;
    const summary = this.summary;
    this.box.tx = null;
    this.box.pending = 0;
    this.box.pendingSizes = [];
    this.box.pendingUids = [];
    await this.committing;
    this.committing = this.committing.then(() => tx.commit()).then(
      (result) => {
        if (result.keywordsNotStored === undefined) return;
        // By the message's UID in the dump, as every other per-message report (the target's UID, which an
        // IMAP server assigns, says nothing about which message of the dump it is).
        (report.keywordsNotStored ??= []).push(...result.keywordsNotStored.map((m) => ({ uid: sourceUids[m.index] ?? m.uid, keywords: [...m.keywords] })));
        if (result.keywordsNotStoredWhy !== undefined) report.keywordsNotStoredWhy ??= result.keywordsNotStoredWhy;
      },
      (e: unknown) => {
        // The batch was counted as restored when it was saved; the target keeps none of it after a
        // failed commit (Maildir makes nothing visible), but the messages an IMAP commit APPENDed
        // before the failure (they stay: keptBeforeFailure, SaveTransaction.commit).
        const lost = sizes.slice(Math.min(sizes.length, keptBeforeFailure(e)));
        report.restored -= lost.length;
        summary.messages -= lost.length;
        summary.bytes -= lost.reduce((a, b) => a + b, 0);
        this.commitError ??= e;
      },
    );
  }

  /** Wait for the background commits; rethrow the first failure. */
  private async settle(): Promise<void> {
    await this.committing;
    if (this.commitError !== null) {
      const e = this.commitError;
      this.commitError = null;
      throw e;
    }
  }

  async commitPending(): Promise<void> {
    await this.startCommit();
    await this.settle();
  }

  /** After a failure: commit what is verified and pending, or roll it back if that fails too. */
  async salvage(): Promise<void> {
    const tx = this.box?.tx ?? null;
    try {
      await this.commitPending();
    } catch {
      await tx?.rollback().catch(() => {});
    }
  }

  async finishMailbox(): Promise<void> {
    this.notRestored = null;
    const box = this.box;
    if (!box) return;
    await this.commitPending();
    const sink = await this.sinkFor(box.source.user);
    if (box.identityPreserved && sink.raiseUidNext && !this.options.dryRun) {
      await sink.raiseUidNext(box.target, box.source.uidNext);
    }
    this.box = null;
  }

  /** Ends a user: subscribes `subscriptions` (source names; mapped to --to-mailbox where given). */
  async finishUser(user: string | null, subscriptions: readonly string[]): Promise<void> {
    await this.finishMailbox();
    if (user !== null && !this.options.dryRun) {
      const wanted = this.options.toMailbox ? (subscriptions.length > 0 ? [this.options.toMailbox] : []) : subscriptions;
      // Nothing to subscribe: no sink opened (opening a Maildir target creates its mail root).
      const sink = wanted.length > 0 ? await this.sinkFor(user) : null;
      const target = this.options.toUser ?? user;
      const notRestored = (name: string, reason: string): void => {
        (this.summary.subscriptionsNotRestored ??= []).push({ user: target, mailbox: name, reason });
        this.options.onWarning?.(`${target}: the subscription to "${name}" was not restored: ${reason}`);
      };
      // A name the target cannot hold as a mailbox is no subscription there either: Maildir++ would
      // read "a.b" as "a/b", another mailbox's.
      const names = wanted.filter((name) => {
        try {
          sink!.checkMailboxName?.(name);
          return true;
        } catch (e) {
          if (!(e instanceof MailboxNameError)) throw e;
          notRestored(name, e.message);
          return false;
        }
      });
      if (names.length > 0) {
        const result = await sink!.subscribe(names);
        for (const r of result?.refused ?? []) notRestored(r.name, r.reason);
      }
    }
    this.restoredNames = new Set();
  }

  async openMailbox(rec: MailboxRecord): Promise<void> {
    await this.finishMailbox();
    const { options, summary } = this;
    const sink = await this.sinkFor(rec.user);
    const target = options.toMailbox ?? rec.name;
    const sameName = target === rec.name;
    // A name this target cannot hold (a Maildir++ level with "."; a server's NO [CANNOT] to CREATE):
    // that mailbox is left out and reported, the rest is restored; the caller exits 3. Checked before
    // any lookup (Maildir++ would find "a.b" as "a/b"), in a dry run too.
    const leaveOut = (e: MailboxNameError): void => {
      const user = options.toUser ?? rec.user;
      // Once per target mailbox: a chain meets it once per dump.
      const key = `${user}\0${target}`;
      let entry = this.notRestoredByTarget.get(key);
      if (entry === undefined) {
        entry = { user, mailbox: target, from: rec.name, reason: e.message, ...(e.hint !== undefined ? { hint: e.hint } : {}), messages: 0 };
        this.notRestoredByTarget.set(key, entry);
        (summary.mailboxesNotRestored ??= []).push(entry);
        options.onWarning?.(`${user}: mailbox "${rec.name}" was not restored: ${e.message}${e.hint !== undefined ? ` (${e.hint})` : ''}`);
      }
      this.notRestored = entry;
    };
    try {
      sink.checkMailboxName?.(target);
    } catch (e) {
      if (!(e instanceof MailboxNameError)) throw e;
      leaveOut(e);
      return;
    }
    let info = await sink.getMailbox(target);
    let created = false;
    let identityPreserved = false;
    if (!options.dryRun) {
      if (!info) {
        try {
          info = await sink.createMailbox({
            name: target,
            ...(sameName && sink.capabilities.preservesMailboxIdentity ? { guid: rec.guid, uidValidity: rec.uidValidity } : {}),
            specialUse: rec.specialUse,
          });
        } catch (e) {
          if (!(e instanceof MailboxNameError)) throw e;
          leaveOut(e);
          return;
        }
        created = true;
        identityPreserved = sameName && sink.capabilities.preservesMailboxIdentity;
      } else if (sameName && info.messageCount === 0 && info.uidNext === 1 && sink.resetMailboxIdentity && sink.capabilities.preservesMailboxIdentity) {
        if (info.uidValidity !== rec.uidValidity || info.guid !== rec.guid) info = await sink.resetMailboxIdentity(target, { guid: rec.guid, uidValidity: rec.uidValidity });
        identityPreserved = true;
      }
    }
    const present = new Map<string, number>();
    if (info && !created && !sink.countExisting) for await (const m of sink.listMessageGuids(target)) if (m.guid) present.set(m.guid, (present.get(m.guid) ?? 0) + 1);
    // One report per target mailbox: a chain opens a mailbox once per dump, --to-mailbox sends several
    // source mailboxes into one.
    const user = options.toUser ?? rec.user;
    let report = this.reports.get(`${user}\0${target}`);
    if (report === undefined) {
      report = { user, mailbox: target, from: rec.name, created, identityPreserved, restored: 0, alreadyPresent: 0 };
      summary.mailboxes.push(report);
      this.reports.set(`${user}\0${target}`, report);
    } else {
      report.created ||= created;
      report.identityPreserved ||= identityPreserved;
    }
    this.restoredNames.add(rec.name);
    const placeholder: MailboxInfo = { name: target, guid: null, uidValidity: 0, uidNext: 1, highestModseq: null, messageCount: 0, specialUse: [], selectable: true };
    const targetKey = `${report.user}\0${target}`;
    let seen = this.seenByTarget.get(targetKey);
    if (!seen) this.seenByTarget.set(targetKey, (seen = new Map()));
    this.box = {
      target,
      identityPreserved,
      claimed: new Map(),
      info: info ?? placeholder,
      sameIncarnation: Boolean(info && info.uidValidity === rec.uidValidity && sink.capabilities.preservesUids),
      startedEmpty: created || !info || info.messageCount === 0,
      present,
      seen,
      tx: null,
      pending: 0,
      pendingSizes: [],
      pendingUids: [],
      report,
      source: rec,
    };
  }

  /**
   * Restores one message into the open mailbox (skipped when already present); `body` may be called
   * more than once. `bytes`, if given, returns the same body as one buffer when the caller holds it
   * in memory anyway (else null): the sink then saves it without a stream.
   */
  async message(rec: MessageRecord, body: () => Readable, bytes?: () => Buffer | null): Promise<void> {
    const box = this.box;
    if (!box) {
      if (this.notRestored !== null) this.notRestored.messages++;
      return;
    }
    const { options, summary } = this;
    const guid = rec.guid ?? rec.sha256.slice(0, 32);
    const sink = await this.sinkFor(rec.user);
    // Sinks that keep GUIDs are checked against the GUIDs counted when the mailbox was opened; sinks that
    // cannot (IMAP) are asked per message (same bytes, same INTERNALDATE).
    const key = sink.countExisting ? `${rec.sha256}:${rec.internalDate}` : guid;
    const seen = (box.seen.get(key) ?? 0) + 1;
    box.seen.set(key, seen);
    let present: number;
    let altered: number[] = [];
    let same = Number.MAX_SAFE_INTEGER;
    let sameKeywords: readonly (readonly string[])[] | undefined;
    if (!sink.countExisting) present = box.present.get(guid) ?? 0;
    else if (box.startedEmpty) present = 0;
    else {
      const copies = await sink.countExisting(box.target, { guid: rec.guid, size: rec.size, internalDate: seconds(rec.internalDate), sha256: rec.sha256, messageId: rec.summary.messageId, openBody: body });
      // A copy the server changed counts for one message of the dump only (copies of this same message,
      // met again in the dump, claim the next ones, in server UID order).
      altered = copies.altered.filter((uid) => (box.claimed.get(uid) ?? key) === key);
      present = copies.same + altered.length;
      same = copies.same;
      sameKeywords = copies.sameKeywords;
    }
    if (seen <= present) {
      box.report.alreadyPresent++;
      summary.alreadyPresent++;
      // Already there from an earlier run that may have stopped before it said which keywords it left out.
      if (rec.keywords.length > 0 && sink.keywordsKept && !options.dryRun) {
        box.keywordsKept ??= await sink.keywordsKept(box.target);
        const kept = box.keywordsKept;
        const missing = kept === null ? [] : rec.keywords.filter((k) => !kept.has(keywordKey(k)));
        if (missing.length > 0) (box.report.keywordsNotStored ??= []).push({ uid: rec.uid, keywords: missing });
      } else if (rec.keywords.length > 0 && seen <= same && sameKeywords?.[seen - 1] !== undefined && !options.dryRun) {
        // A sink that shows the copy (IMAP): what this copy lacks of the dump's keywords.
        const have = new Set(sameKeywords[seen - 1]!.map(keywordKey));
        const missing = rec.keywords.filter((k) => !have.has(keywordKey(k)));
        if (missing.length > 0) {
          (box.report.keywordsNotStored ??= []).push({ uid: rec.uid, keywords: missing });
          box.report.keywordsNotStoredWhy ??= 'the copy already on the server lacks them: the server did not store them when an earlier run restored it (IMAP keywords are ASCII atoms, and Dovecot refuses keywords longer than mail_max_keyword_length)';
        }
      }
      if (seen > same) {
        // Counted as there: this message, as the server changed it when it was saved.
        box.claimed.set(altered[seen - same - 1]!, key);
        (box.report.alteredByServer ??= []).push(rec.uid);
      }
      return;
    }
    if (rec.size === 0 && sink.capabilities.storesEmptyMessages === false) {
      (box.report.messagesNotStored ??= []).push(rec.uid);
      return;
    }
    if (options.dryRun) {
      box.report.restored++;
      summary.messages++;
      summary.bytes += rec.size;
      return;
    }
    if (!box.tx) box.tx = await sink.beginSave(box.target);
    await box.tx.save(
      {
        ...(box.sameIncarnation || box.identityPreserved ? { uid: rec.uid } : {}),
        guid,
        flags: normalizeFlags(rec.flags) as SystemFlag[],
        keywords: [...rec.keywords],
        internalDate: seconds(rec.internalDate),
        size: rec.size,
        extra: rec.extra,
      },
      (rec.size <= JOIN_BODY_BYTES ? bytes?.() : null) ?? body(),
    );
    box.pending++;
    box.pendingSizes.push(rec.size);
    box.pendingUids.push(rec.uid);
    box.report.restored++;
    if (sink.keepsInternalDate && !sink.keepsInternalDate(seconds(rec.internalDate))) (box.report.datesNotKept ??= []).push(rec.uid);
    summary.messages++;
    summary.bytes += rec.size;
    options.onProgress?.({ phase: 'message', user: rec.user, mailbox: box.target, messages: summary.messages, bytes: summary.bytes });
    if (box.pending >= options.commitEvery) {
      // A failure of the previous background commit surfaces here, before more is written.
      if (this.commitError !== null) await this.settle();
      await this.startCommit();
    }
  }

  async close(): Promise<void> {
    await this.committing;
    for (const sink of this.sinks.values()) await sink.close().catch(() => {});
    this.sinks.clear();
  }
}

/** Messages of a failed commit the target keeps (SaveTransaction.commit: `keptBeforeFailure` on the error), else 0. */
function keptBeforeFailure(e: unknown): number {
  const kept = (e as { keptBeforeFailure?: unknown } | null)?.keptBeforeFailure;
  return typeof kept === 'number' && Number.isSafeInteger(kept) && kept > 0 ? kept : 0;
}

/** Attaches `summary` to `e` (as a MailvaultError) after a failed restore, with where it stopped. */
export function failedRestore(e: unknown, summary: RestoreSummary, started: number): MailvaultError {
  const err = e instanceof MailvaultError ? e : new UnexpectedError(e instanceof Error ? e.message : String(e), { cause: e });
  summary.stoppedAt = { offset: err.context.offset ?? null, member: err.context.member ?? null, code: err.code, message: err.message };
  summary.seconds = (Date.now() - started) / 1000;
  return Object.assign(err, { restoreSummary: summary });
}

export async function restore(input: Readable, openSink: SinkOpener, options: RestoreOptions): Promise<RestoreSummary> {
  const started = Date.now();
  const sel = options.selection;
  const wantUser = userMatcher(sel.users);
  const wantMailbox = mailboxMatcher(sel.mailboxes);
  const summary: RestoreSummary = { ...emptySummary(), access: 'sequential' };
  const session = new RestoreSession(openSink, options, summary);

  let currentUser: UserRecord | null = null;
  let userSelected = false;
  // Mailbox records seen in the dump, per user, for narrow selections: a selected message implies its mailbox.
  let pendingMailbox: MailboxRecord | null = null;
  // Entry ids (formats/dump-v1.md, "Entry ids"): 1-based over users, mailboxes and messages in dump order.
  let entryId = 0;
  let currentUserId = 0;
  const seenIds = new Set<number>();

  const finishUser = async (): Promise<void> => {
    await session.finishMailbox();
    if (currentUser && userSelected) {
      // A whole user (or a user entry kept in a list file) gets all its subscriptions back; a narrower
      // restore only those of the mailboxes it restored.
      const whole = (!sel.mailboxes?.length && !isNarrowSelection(sel) && !options.toMailbox) || Boolean(sel.ids?.has(currentUserId));
      const restored = session.restoredNames;
      await session.finishUser(currentUser.user, whole ? currentUser.subscriptions : currentUser.subscriptions.filter((s) => restored.has(s)));
    } else {
      await session.finishUser(null, []);
    }
    currentUser = null;
  };

  // Which message entries to keep bodies for is decided from the member name (user, mailbox, uid);
  // criteria that need the record (Message-ID, From, Subject, dates, list ids) are applied after.
  const wantBody = (ref: { user: string; mailbox: string; uid: number }): boolean =>
    wantUser(ref.user) && wantMailbox(ref.mailbox) && (!sel.uids || sel.uids.has(ref.uid));

  try {
    for await (const entry of readDump(input, { wantBody, ...(options.signal ? { signal: options.signal } : {}) }) as AsyncIterable<DumpEntry>) {
      if (options.signal?.aborted) throw new InterruptedError('restore interrupted; what was committed stays, run the same restore again to finish', {});
      switch (entry.type) {
        case 'header':
          break;
        case 'user':
          await finishUser();
          currentUserId = ++entryId;
          seenIds.add(entryId);
          currentUser = entry.record;
          userSelected = wantUser(entry.record.user);
          if (userSelected) summary.users++;
          break;
        case 'mailbox':
          await session.finishMailbox();
          pendingMailbox = null;
          seenIds.add(++entryId);
          if (userSelected && wantMailbox(entry.record.name) && entry.record.selectable) {
            if (sel.ids?.has(entryId)) {
              await session.openMailbox(entry.record);
            } else if (isNarrowSelection(sel)) {
              // Only create the mailbox if a message of it is selected (single-message restores).
              pendingMailbox = entry.record;
            } else {
              await session.openMailbox(entry.record);
            }
          } else if (userSelected && wantMailbox(entry.record.name) && !entry.record.selectable && !options.dryRun && !options.toMailbox) {
            session.restoredNames.add(entry.record.name);
          }
          break;
        case 'message': {
          entryId = entry.id;
          seenIds.add(entryId);
          if (!userSelected || !wantMailbox(entry.record.mailbox)) break;
          const rec = entry.record;
          if (sel.ids && !sel.ids.has(entry.id)) break;
          if (!messageMatches(sel, { uid: rec.uid, internalDate: seconds(rec.internalDate), messageId: rec.summary.messageId, from: rec.summary.from, subject: rec.summary.subject })) break;
          if (!session.hasOpenMailbox && pendingMailbox) {
            await session.openMailbox(pendingMailbox);
            pendingMailbox = null;
          }
          await session.message(rec, entry.openBody, entry.bodyBytes);
          break;
        }
        case 'trailer':
          summary.dumpComplete = true;
          break;
      }
    }
    await finishUser();
    if (sel.ids) summary.unknownIds = [...sel.ids].filter((id) => !seenIds.has(id)).sort((a, b) => a - b);
  } catch (e) {
    // Keep what is verified: commit the open batch, then report where the dump stopped.
    await session.salvage();
    throw failedRestore(e, summary, started);
  } finally {
    await session.close();
  }
  summary.seconds = (Date.now() - started) / 1000;
  return summary;
}

/** The summary attached to an error thrown by restore(), if any. */
export function restoreSummaryOf(error: unknown): RestoreSummary | null {
  return (error as { restoreSummary?: RestoreSummary } | null)?.restoreSummary ?? null;
}
