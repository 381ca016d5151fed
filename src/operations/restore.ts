/**
 * restore: read a dump (one pass, from a pipe or a file) and write the selected users, mailboxes and
 * messages through the storage engine (MessageSink).
 *
 * Identity: into an absent mailbox, or an empty one that never held mail, the mailbox keeps its GUID
 * and UIDVALIDITY and every message its UID and GUID (drivers with the capabilities). Into a mailbox
 * that already holds mail, messages are appended with new UIDs (their GUIDs kept).
 *
 * Idempotency: before writing into a mailbox, the GUIDs present there are counted; a message whose GUID
 * is already present (as often as the dump has it so far) is not written again. So a rerun, or a rerun
 * after a crash, adds nothing twice. Message bytes are never altered for this.
 *
 * Integrity: the reader yields a message only after its size and sha256 matched its record. Messages
 * are committed in batches; on a damaged or truncated dump everything verified so far is committed and
 * the error is raised with a count of what was restored.
 */
import type { Readable } from 'node:stream';
import { readDump, type DumpEntry } from '../archive/reader.js';
import type { MailboxRecord, MessageRecord, UserRecord } from '../archive/records.js';
import type { MailboxInfo, MessageSink, SaveTransaction, SystemFlag } from '../storage/types.js';
import { MailvaultError, UnexpectedError, InterruptedError } from '../core/errors.js';
import { normalizeFlags } from '../storage/flags.js';
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
  seconds: number;
}

export type SinkOpener = (user: string) => Promise<MessageSink>;

interface MailboxState {
  target: string;
  info: MailboxInfo;
  sameIncarnation: boolean;
  present: Map<string, number>;
  seen: Map<string, number>;
  tx: SaveTransaction | null;
  pending: number;
  report: RestoredMailbox;
  source: MailboxRecord;
}

function seconds(iso: string): number {
  return Math.floor(Date.parse(iso) / 1000);
}

export async function restore(input: Readable, openSink: SinkOpener, options: RestoreOptions): Promise<RestoreSummary> {
  const started = Date.now();
  const sel = options.selection;
  const wantUser = userMatcher(sel.users);
  const wantMailbox = mailboxMatcher(sel.mailboxes);
  const summary: RestoreSummary = { users: 0, mailboxes: [], messages: 0, bytes: 0, alreadyPresent: 0, stoppedAt: null, dumpComplete: false, unknownIds: [], seconds: 0 };

  const sinks = new Map<string, MessageSink>();
  let currentUser: UserRecord | null = null;
  let userSelected = false;
  let restoredNames = new Set<string>();
  let box: MailboxState | null = null;
  // Mailbox records seen in the dump, per user, for --use-list: a selected message implies its mailbox.
  let pendingMailbox: MailboxRecord | null = null;
  // Entry ids (formats/dump-v1.md, "Entry ids"): 1-based over users, mailboxes and messages in dump order.
  let entryId = 0;
  let currentUserId = 0;
  const seenIds = new Set<number>();

  const sinkFor = async (user: string): Promise<MessageSink> => {
    const target = options.toUser ?? user;
    let sink = sinks.get(target);
    if (!sink) {
      sink = await openSink(target);
      sinks.set(target, sink);
    }
    return sink;
  };

  const commitPending = async (): Promise<void> => {
    if (box?.tx) {
      const tx = box.tx;
      box.tx = null;
      box.pending = 0;
      await tx.commit();
    }
  };

  const finishMailbox = async (): Promise<void> => {
    if (!box) return;
    await commitPending();
    const sink = await sinkFor(box.source.user);
    if (box.report.identityPreserved && sink.raiseUidNext && !options.dryRun) {
      await sink.raiseUidNext(box.target, box.source.uidNext);
    }
    box = null;
  };

  const finishUser = async (): Promise<void> => {
    await finishMailbox();
    if (currentUser && userSelected && !options.dryRun) {
      const sink = await sinkFor(currentUser.user);
      const whole = (!sel.mailboxes?.length && !sel.ids && !options.toMailbox) || Boolean(sel.ids?.has(currentUserId));
      const subs = whole ? currentUser.subscriptions : currentUser.subscriptions.filter((s) => restoredNames.has(s));
      const mapped = options.toMailbox ? (currentUser.subscriptions.some((s) => restoredNames.has(s)) ? [options.toMailbox] : []) : subs;
      if (mapped.length > 0) await sink.subscribe(mapped);
    }
    currentUser = null;
    restoredNames = new Set();
  };

  const openMailboxState = async (rec: MailboxRecord): Promise<MailboxState> => {
    const sink = await sinkFor(rec.user);
    const target = options.toMailbox ?? rec.name;
    const sameName = target === rec.name;
    let info = await sink.getMailbox(target);
    let created = false;
    let identityPreserved = false;
    if (!options.dryRun) {
      if (!info) {
        info = await sink.createMailbox({
          name: target,
          ...(sameName && sink.capabilities.preservesMailboxIdentity ? { guid: rec.guid, uidValidity: rec.uidValidity } : {}),
          specialUse: rec.specialUse,
        });
        created = true;
        identityPreserved = sameName && sink.capabilities.preservesMailboxIdentity;
      } else if (sameName && info.messageCount === 0 && info.uidNext === 1 && sink.resetMailboxIdentity && sink.capabilities.preservesMailboxIdentity) {
        if (info.uidValidity !== rec.uidValidity || info.guid !== rec.guid) info = await sink.resetMailboxIdentity(target, { guid: rec.guid, uidValidity: rec.uidValidity });
        identityPreserved = true;
      }
    }
    const present = new Map<string, number>();
    if (info && !created && !sink.countExisting) for await (const m of sink.listMessageGuids(target)) if (m.guid) present.set(m.guid, (present.get(m.guid) ?? 0) + 1);
    const report: RestoredMailbox = { user: options.toUser ?? rec.user, mailbox: target, from: rec.name, created, identityPreserved, restored: 0, alreadyPresent: 0 };
    summary.mailboxes.push(report);
    restoredNames.add(rec.name);
    const placeholder: MailboxInfo = { name: target, guid: null, uidValidity: 0, uidNext: 1, highestModseq: null, messageCount: 0, specialUse: [], selectable: true };
    return {
      target,
      info: info ?? placeholder,
      sameIncarnation: Boolean(info && info.uidValidity === rec.uidValidity && sink.capabilities.preservesUids),
      present,
      seen: new Map(),
      tx: null,
      pending: 0,
      report,
      source: rec,
    };
  };

  const restoreMessage = async (rec: MessageRecord, body: () => Readable): Promise<void> => {
    if (!box && pendingMailbox) {
      box = await openMailboxState(pendingMailbox);
      pendingMailbox = null;
    }
    if (!box) return;
    const guid = rec.guid ?? rec.sha256.slice(0, 32);
    const sink = await sinkFor(rec.user);
    // Sinks that keep GUIDs are checked against the GUIDs counted when the mailbox was opened; sinks that
    // cannot (IMAP) are asked per message (same bytes, same INTERNALDATE).
    const key = sink.countExisting ? `${rec.sha256}:${rec.internalDate}` : guid;
    const seen = (box.seen.get(key) ?? 0) + 1;
    box.seen.set(key, seen);
    const present = sink.countExisting
      ? box.report.created
        ? 0
        : await sink.countExisting(box.target, { guid: rec.guid, size: rec.size, internalDate: seconds(rec.internalDate), sha256: rec.sha256, messageId: rec.summary.messageId, openBody: body })
      : (box.present.get(guid) ?? 0);
    if (seen <= present) {
      box.report.alreadyPresent++;
      summary.alreadyPresent++;
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
        ...(box.sameIncarnation || box.report.identityPreserved ? { uid: rec.uid } : {}),
        guid,
        flags: normalizeFlags(rec.flags) as SystemFlag[],
        keywords: [...rec.keywords],
        internalDate: seconds(rec.internalDate),
        size: rec.size,
        extra: rec.extra,
      },
      body(),
    );
    box.pending++;
    box.report.restored++;
    summary.messages++;
    summary.bytes += rec.size;
    options.onProgress?.({ phase: 'message', user: rec.user, mailbox: box.target, messages: summary.messages, bytes: summary.bytes });
    if (box.pending >= options.commitEvery) await commitPending();
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
          await finishMailbox();
          pendingMailbox = null;
          seenIds.add(++entryId);
          if (userSelected && wantMailbox(entry.record.name) && entry.record.selectable) {
            if (sel.ids?.has(entryId)) {
              box = await openMailboxState(entry.record);
            } else if (sel.ids || sel.uids || sel.messageIds?.length || sel.from || sel.subject || sel.since !== undefined || sel.before !== undefined) {
              // Only create the mailbox if a message of it is selected (single-message restores).
              pendingMailbox = entry.record;
            } else {
              box = await openMailboxState(entry.record);
            }
          } else if (userSelected && wantMailbox(entry.record.name) && !entry.record.selectable && !options.dryRun && !options.toMailbox) {
            restoredNames.add(entry.record.name);
          }
          break;
        case 'message': {
          entryId = entry.id;
          seenIds.add(entryId);
          if (!userSelected || !wantMailbox(entry.record.mailbox)) break;
          const rec = entry.record;
          if (sel.ids && !sel.ids.has(entry.id)) break;
          if (!messageMatches(sel, { uid: rec.uid, internalDate: seconds(rec.internalDate), messageId: rec.summary.messageId, from: rec.summary.from, subject: rec.summary.subject })) break;
          await restoreMessage(rec, entry.openBody);
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
    try {
      await commitPending();
    } catch {
      await box?.tx?.rollback().catch(() => {});
    }
    const err = e instanceof MailvaultError ? e : new UnexpectedError(e instanceof Error ? e.message : String(e), { cause: e });
    summary.stoppedAt = { offset: err.context.offset ?? null, member: err.context.member ?? null, code: err.code, message: err.message };
    summary.seconds = (Date.now() - started) / 1000;
    throw Object.assign(err, { restoreSummary: summary });
  } finally {
    for (const sink of sinks.values()) await sink.close().catch(() => {});
  }
  summary.seconds = (Date.now() - started) / 1000;
  return summary;
}

/** The summary attached to an error thrown by restore(), if any. */
export function restoreSummaryOf(error: unknown): RestoreSummary | null {
  return (error as { restoreSummary?: RestoreSummary } | null)?.restoreSummary ?? null;
}
