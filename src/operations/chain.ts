/**
 * Restore from a chain of dumps: one full dump and the incrementals that follow it, each naming the
 * run before it (header `base.runId`). The state at the end of the LAST dump is computed first, then
 * every message is written once, into its final mailbox name with its final flags, so no sink needs
 * expunge, rename or flag-setting operations.
 *
 * 1. The chain is checked before anything is written: the first dump is full, each next one's base is
 *    the run before it. A gap, a wrong order or a foreign dump is an ArchiveChainError naming the dump
 *    and the missing run.
 * 2. Pre-pass over the incrementals (bodies hashed but not kept): per user the final mailboxes (from
 *    the last dump holding the user: name, GUID, UIDVALIDITY, UIDNEXT, UID set), subscriptions, and
 *    flag overrides (the latest flag-table entry or message record of a later dump). Memory: the flag
 *    overrides of the incrementals (with modseq sources: only what changed; without: one entry per
 *    message of the mailboxes they cover) and one UID-range list per mailbox.
 * 3. One pass over each dump in order: a message is restored if its mailbox (by GUID, else by name)
 *    is in the final state with the same UIDVALIDITY and its UID is in the final UID set, it was not
 *    restored from an earlier dump, and no later dump carries the mailbox whole again (reset).
 * 4. Final mailboxes that got no message are created; UIDNEXT is raised to the final one where the
 *    identity was kept; subscriptions are the final list. UIDs of the final sets whose body is in no
 *    dump are reported as missing (the caller exits "partial").
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { ArchiveChainError, InterruptedError, UsageError } from '../core/errors.js';
import { openDumpFile } from '../archive/random-access.js';
import { readDump, type DumpEntry } from '../archive/reader.js';
import type { FlagTableRecord, HeaderRecord, MailboxRecord, MessageRecord, UserRecord } from '../archive/records.js';
import { UidSequence, UidSequenceBuilder } from './cursors.js';
import { emptySummary, failedRestore, RestoreSession, type RestoreOptions, type RestoreSummary, type SinkOpener } from './restore.js';
import { mailboxMatcher, userMatcher } from './selection.js';

/** A dump of a chain, as given on the command line. */
export interface ChainLink {
  readonly file: string;
  readonly header: HeaderRecord;
  /** Trailer `completed`. */
  readonly completed: string;
}

/** Mailbox records carry uidSet / reset since mailvault 0.3 (formats/dump-v1.md 5.4); absent in older dumps. */
export type ChainMailboxRecord = MailboxRecord;

type ChainEntry = DumpEntry;

/** Reads headers and trailers of the files (random access: the TOC and trailer, no bodies). */
export async function readChainLinks(files: readonly string[]): Promise<ChainLink[]> {
  const links: ChainLink[] = [];
  for (const file of files) {
    if (file === '-') throw new UsageError('a chain of dumps must be read from files: "-" (stdin) can only restore a single dump', { hint: 'save the dumps to files, then give them in order' });
    const dump = await openDumpFile(file);
    try {
      links.push({ file, header: dump.header, completed: dump.trailer.completed });
    } finally {
      await dump.close();
    }
  }
  return links;
}

/**
 * Checks that `links` form a chain in order: a full dump, then incrementals each based on the run
 * before it. Throws ArchiveChainError naming the offending dump and the missing run.
 */
export function checkChain(links: readonly ChainLink[]): void {
  if (links.length === 0) throw new UsageError('no dump given');
  const first = links[0]!;
  if (first.header.kind !== 'full') {
    throw new ArchiveChainError(
      `dump chain: ${first.file} is an incremental (it follows run ${first.header.base?.runId ?? '?'} of ${first.header.base?.created ?? '?'}); a chain starts with a full dump`,
      { path: first.file, hint: `give the full dump of run ${first.header.base?.runId ?? '?'} (and the incrementals between) before it` },
    );
  }
  const byRun = new Map(links.map((l) => [l.header.runId, l]));
  for (let i = 1; i < links.length; i++) {
    const prev = links[i - 1]!;
    const link = links[i]!;
    if (link.header.kind !== 'incremental' || link.header.base === null) {
      throw new ArchiveChainError(`dump chain: ${link.file} is a full dump (run ${link.header.runId}); only incrementals may follow ${prev.file}`, {
        path: link.file,
        hint: 'restore a full dump on its own, or start the chain with it',
      });
    }
    const base = link.header.base;
    if (base.runId === prev.header.runId) continue;
    // An incremental by plain TIME (no cursors) names no run: it follows any dump that started at or after that time.
    if (base.runId === 'none' && Date.parse(base.created) <= Date.parse(prev.header.created)) continue;
    const given = byRun.get(base.runId);
    if (given) {
      throw new ArchiveChainError(`dump chain out of order: ${link.file} follows ${given.file} (run ${base.runId}), but was given after ${prev.file}`, {
        path: link.file,
        hint: 'give the dumps oldest first: the full dump, then each incremental after the one it follows',
      });
    }
    throw new ArchiveChainError(
      `dump chain has a gap: ${link.file} follows run ${base.runId} (dump of ${base.created}), which is missing; the dump before it, ${prev.file}, is run ${prev.header.runId}`,
      { path: link.file, hint: `add the dump of run ${base.runId} (created ${base.created}) between ${prev.file} and ${link.file}` },
    );
  }
}

/** The prefix of a checked chain whose dumps were created at or before `at` (Unix seconds). */
export function chainAt(links: readonly ChainLink[], at: number): ChainLink[] {
  const out: ChainLink[] = [];
  for (const link of links) {
    if (Date.parse(link.header.created) / 1000 <= at) out.push(link);
    else break;
  }
  if (out.length === 0) {
    throw new UsageError(`--at ${new Date(at * 1000).toISOString()}: no dump of the chain was made by then (the first, ${links[0]?.file ?? '?'}, was made ${links[0]?.header.created ?? '?'})`, {
      hint: 'give a later time, or an older full dump',
    });
  }
  return out;
}

/** Identity of a mailbox across dumps: its GUID, or its name where it has none. */
export function mailboxKey(rec: Pick<MailboxRecord, 'guid' | 'name'>): string {
  return rec.guid ? `g:${rec.guid}` : `n:${rec.name}`;
}

/** One mailbox of the final state. */
export interface FinalMailbox {
  readonly record: ChainMailboxRecord;
  /** null: the last record had no UID set (every UID of the dumps counts). */
  readonly uidSet: UidSequence | null;
  /** Index of the last dump that carries the mailbox whole (full dump, new or reset); earlier copies are stale. */
  readonly wholeFrom: number;
}

/** One user of the final state. */
export interface FinalUser {
  readonly user: UserRecord;
  /** Index of the dump the user's final state comes from. */
  readonly dump: number;
  readonly mailboxes: Map<string, FinalMailbox>;
}

/** The state at the end of a chain (without the messages of the full dump, which carry their own flags). */
export class FinalState {
  readonly users = new Map<string, FinalUser>();
  /** (user, mailbox key, uidValidity, uid) -> flags of the latest dump that said, and its index. */
  private readonly flags = new Map<string, { dump: number; flags: readonly string[]; keywords: readonly string[] }>();

  private static flagKey(user: string, key: string, uidValidity: number, uid: number): string {
    return `${user}\0${key}\0${uidValidity}\0${uid}`;
  }

  setFlags(user: string, key: string, uidValidity: number, uid: number, dump: number, flags: readonly string[], keywords: readonly string[]): void {
    this.flags.set(FinalState.flagKey(user, key, uidValidity, uid), { dump, flags: [...flags], keywords: [...keywords] });
  }

  /** Flags to restore a message of dump `dump` with: a later dump's, or its own record's. */
  flagsFor(user: string, key: string, uidValidity: number, rec: Pick<MessageRecord, 'uid' | 'flags' | 'keywords'>, dump: number): { flags: readonly string[]; keywords: readonly string[] } {
    const o = this.flags.get(FinalState.flagKey(user, key, uidValidity, rec.uid));
    return o && o.dump > dump ? o : { flags: rec.flags, keywords: rec.keywords };
  }

  /** Number of flag overrides held (for tests). */
  get flagOverrides(): number {
    return this.flags.size;
  }
}

/** Records of one dump needed for the final state, in dump order. */
export type StateItem =
  | { readonly type: 'user'; readonly record: UserRecord }
  | { readonly type: 'mailbox'; readonly record: ChainMailboxRecord }
  | { readonly type: 'flags'; readonly record: Pick<FlagTableRecord, 'user' | 'mailbox' | 'entries'> }
  | { readonly type: 'message'; readonly record: Pick<MessageRecord, 'user' | 'mailbox' | 'uid' | 'flags' | 'keywords'> };

/**
 * Builds the final state from the records of each dump (index 0 = the full dump). Dump 0 only needs
 * its user and mailbox records (its messages carry their flags); give the others' flag tables and
 * message records too.
 */
export class FinalStateBuilder {
  readonly state = new FinalState();
  /** Per user + mailbox key: the last dump index that carried it whole. */
  private readonly wholeFrom = new Map<string, number>();
  private dump = -1;
  private current: { user: string; key: string; uidValidity: number; name: string } | null = null;

  beginDump(index: number): void {
    this.dump = index;
    this.current = null;
  }

  add(item: StateItem): void {
    const d = this.dump;
    switch (item.type) {
      case 'user':
        // The last dump holding a user defines that user's final mailboxes: start them afresh.
        this.state.users.set(item.record.user, { user: item.record, dump: d, mailboxes: new Map() });
        this.current = null;
        break;
      case 'mailbox': {
        const rec = item.record;
        const u = this.state.users.get(rec.user);
        if (!u) return;
        const key = mailboxKey(rec);
        const ukey = `${rec.user}\0${key}`;
        // Whole: the full dump, or a record that says reset (an incremental marks every mailbox its base
        // did not have, or had with another UIDVALIDITY, so a mailbox that reappears is marked too).
        if (d === 0 || rec.reset === true) this.wholeFrom.set(ukey, d);
        let uidSet: UidSequence | null = null;
        if (typeof rec.uidSet === 'string') {
          uidSet = UidSequence.parse(rec.uidSet);
          if (uidSet === null) throw new ArchiveChainError(`mailbox "${rec.name}" of user "${rec.user}": uidSet "${rec.uidSet.slice(0, 80)}" is not a UID set`, { user: rec.user, mailbox: rec.name });
        }
        u.mailboxes.set(key, { record: rec, uidSet, wholeFrom: this.wholeFrom.get(ukey) ?? 0 });
        this.current = { user: rec.user, key, uidValidity: rec.uidValidity, name: rec.name };
        break;
      }
      case 'flags': {
        const c = this.current;
        if (d === 0 || !c || c.user !== item.record.user || c.name !== item.record.mailbox) return;
        for (const e of item.record.entries) this.state.setFlags(c.user, c.key, c.uidValidity, e.uid, d, e.flags, e.keywords);
        break;
      }
      case 'message': {
        const c = this.current;
        if (d === 0 || !c || c.user !== item.record.user || c.name !== item.record.mailbox) return;
        this.state.setFlags(c.user, c.key, c.uidValidity, item.record.uid, d, item.record.flags, item.record.keywords);
        break;
      }
    }
  }
}

/** A UID of a final mailbox whose body is in no dump of the chain. */
export interface MissingMessage {
  readonly user: string;
  readonly mailbox: string;
  readonly uid: number;
}

export interface ChainRestoreSummary extends RestoreSummary {
  readonly chain: { readonly file: string; readonly runId: string; readonly kind: string; readonly created: string }[];
  /** UIDs of the final state no dump holds a body of (first 1000). */
  readonly missing: MissingMessage[];
  missingCount: number;
}

async function* entriesOf(file: string, wantBody: (ref: { user: string; mailbox: string; uid: number }) => boolean, signal?: AbortSignal): AsyncGenerator<ChainEntry> {
  const input: Readable = createReadStream(file);
  try {
    yield* readDump(input, { wantBody, ...(signal ? { signal } : {}) }) as AsyncIterable<ChainEntry>;
  } finally {
    input.destroy();
  }
}

/** Pre-pass: the final state of a checked chain. */
export async function computeFinalState(links: readonly ChainLink[], signal?: AbortSignal): Promise<FinalState> {
  const builder = new FinalStateBuilder();
  // The full dump's messages carry their own flags and every incremental lists all mailboxes, so the
  // full dump is read in the pre-pass only when it is the whole chain.
  for (let i = links.length > 1 ? 1 : 0; i < links.length; i++) {
    builder.beginDump(i);
    for await (const entry of entriesOf(links[i]!.file, () => false, signal)) {
      if (entry.type === 'user' || entry.type === 'mailbox' || entry.type === 'flags') builder.add(entry as StateItem);
      else if (entry.type === 'message' && i > 0) builder.add({ type: 'message', record: entry.record });
    }
  }
  return builder.state;
}

/**
 * Restores the state at the end of `links` (a chain; checked here). Messages go through
 * RestoreSession, so idempotency (GUID counts), batching and identity rules are those of restore.
 */
export async function restoreChain(links: readonly ChainLink[], openSink: SinkOpener, options: RestoreOptions): Promise<ChainRestoreSummary> {
  checkChain(links);
  if (options.toMailbox) throw new UsageError('--to-mailbox cannot be used with a chain of dumps', { hint: 'restore the chain into a user (--to-user), then move mail with an IMAP client' });
  const started = Date.now();
  const summary: ChainRestoreSummary = {
    ...emptySummary(),
    access: 'sequential',
    chain: links.map((l) => ({ file: l.file, runId: l.header.runId, kind: l.header.kind, created: l.header.created })),
    missing: [],
    missingCount: 0,
  };
  const final = await computeFinalState(links, options.signal);
  const wantUser = userMatcher(options.selection.users);
  const wantMailbox = mailboxMatcher(options.selection.mailboxes);
  const session = new RestoreSession(openSink, options, summary);
  /** Per user + mailbox key: UIDs restored, one ascending sequence per dump. */
  const restored = new Map<string, UidSequence[]>();
  const opened = new Set<string>();
  const isRestored = (ukey: string, uid: number): boolean => (restored.get(ukey) ?? []).some((s) => s.has(uid));
  // Users of the full dump that no incremental holds (those were made for other users, or could not open
  // this one's store): the state of a user is that of the last dump holding it, here the full dump's,
  // built as the full dump is read (the pre-pass does not read the full dump).
  const fullOnly = new FinalStateBuilder();
  fullOnly.beginDump(0);

  try {
    for (let i = 0; i < links.length; i++) {
      let user: FinalUser | undefined;
      let box: { fin: FinalMailbox; key: string; ukey: string; rec: ChainMailboxRecord; open: boolean; uids: UidSequenceBuilder } | null = null;
      const endBox = async (): Promise<void> => {
        if (!box) return;
        if (box.open) await session.finishMailbox();
        const seq = box.uids.build();
        if (seq.size > 0) {
          const list = restored.get(box.ukey) ?? [];
          list.push(seq);
          restored.set(box.ukey, list);
        }
        box = null;
      };
      const wanted = (ref: { user: string; mailbox: string; uid: number }): boolean => wantUser(ref.user);
      for await (const entry of entriesOf(links[i]!.file, wanted, options.signal)) {
        if (options.signal?.aborted) throw new InterruptedError('restore interrupted; what was committed stays, run the same restore again to finish', {});
        if (entry.type === 'user') {
          await endBox();
          user = wantUser(entry.record.user) ? final.users.get(entry.record.user) : undefined;
          if (!user && wantUser(entry.record.user) && i === 0) {
            fullOnly.add(entry as StateItem);
            user = fullOnly.state.users.get(entry.record.user)!;
            final.users.set(entry.record.user, user);
            if (links.length > 1) options.onWarning?.(`user "${entry.record.user}" is in no incremental of the chain: restored as ${links[0]!.file} has it`);
          }
        } else if (entry.type === 'mailbox') {
          await endBox();
          if (!user || entry.record.user !== user.user.user) continue;
          if (i === 0 && fullOnly.state.users.get(entry.record.user) === user) fullOnly.add(entry as StateItem);
          const rec = entry.record as ChainMailboxRecord;
          const key = mailboxKey(rec);
          const fin = user.mailboxes.get(key);
          // Gone by the end, another incarnation, carried whole by a later dump, or not selected: skip its messages.
          if (!fin || fin.record.uidValidity !== rec.uidValidity || fin.wholeFrom > i || !fin.record.selectable || !wantMailbox(fin.record.name)) continue;
          box = { fin, key, ukey: `${rec.user}\0${key}`, rec, open: false, uids: new UidSequenceBuilder() };
        } else if (entry.type === 'message') {
          const b = box as typeof box;
          if (!b || !user || entry.record.mailbox !== b.rec.name || entry.record.user !== b.rec.user) continue;
          const rec = entry.record;
          if (b.fin.uidSet !== null && !b.fin.uidSet.has(rec.uid)) continue;
          if (isRestored(b.ukey, rec.uid)) continue;
          if (!b.open) {
            // The final name and identity; this dump's UIDNEXT (the final one is set at the end, after the
            // later dumps' messages kept their UIDs).
            await session.openMailbox({ ...b.rec, name: b.fin.record.name, guid: b.fin.record.guid, specialUse: b.fin.record.specialUse });
            b.open = true;
            opened.add(b.ukey);
          }
          const f = final.flagsFor(rec.user, b.key, b.rec.uidValidity, rec, i);
          await session.message({ ...rec, mailbox: b.fin.record.name, flags: f.flags, keywords: f.keywords }, entry.openBody, entry.bodyBytes);
          b.uids.add(rec.uid);
        }
      }
      await endBox();
    }
    // Final mailboxes: create the empty ones, raise UIDNEXT, subscribe, and find UIDs no dump held.
    for (const [name, u] of final.users) {
      if (!wantUser(name)) continue;
      summary.users++;
      for (const [key, fin] of u.mailboxes) {
        if (!fin.record.selectable || !wantMailbox(fin.record.name)) continue;
        const ukey = `${name}\0${key}`;
        if (!opened.has(ukey)) {
          await session.openMailbox({ ...fin.record });
          await session.finishMailbox();
        }
        if (!options.dryRun) {
          const sink = await session.sinkFor(name);
          // A name the target cannot hold was left out by openMailbox; looked up, it could resolve to
          // another mailbox (Maildir++: "a.b" to the directory of "a/b").
          let storable = true;
          try {
            sink.checkMailboxName?.(fin.record.name);
          } catch {
            storable = false;
          }
          const now = storable ? await sink.getMailbox(fin.record.name) : null;
          if (now && sink.raiseUidNext && sink.capabilities.preservesUids && now.uidValidity === fin.record.uidValidity) await sink.raiseUidNext(fin.record.name, fin.record.uidNext);
        }
        if (fin.uidSet !== null) {
          for (const uid of fin.uidSet) {
            if (isRestored(ukey, uid)) continue;
            summary.missingCount++;
            if (summary.missing.length < 1000) summary.missing.push({ user: name, mailbox: fin.record.name, uid });
          }
        }
      }
      await session.finishUser(name, u.user.subscriptions);
    }
    summary.dumpComplete = true;
  } catch (e) {
    await session.salvage();
    throw failedRestore(e, summary, started);
  } finally {
    await session.close();
  }
  summary.seconds = (Date.now() - started) / 1000;
  return summary;
}
