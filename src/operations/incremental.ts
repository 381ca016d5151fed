/**
 * Incremental backups: what `--since` means, and per mailbox what an incremental dump must carry
 * compared with the base cursors (cursors.ts). backup.ts asks this module, per mailbox, for a plan,
 * scans the mailbox's metadata once (no bodies) for its UID set and flag table, writes the mailbox
 * record, the flag table and then only the messages the plan wants.
 *
 * Per mailbox, against its base cursor (matched by mailbox GUID, by name where there is no GUID):
 * - no cursor (new mailbox, or none recorded) or a different UIDVALIDITY: the whole mailbox again,
 *   `reset: true` in its record;
 * - the base does not hold some older UIDs (it skipped them, and recorded its UID set without them):
 *   if one of them can be read now, the whole mailbox again, `reset: true` (incompleteBase); if none
 *   can, they are reported as skipped again and the rest goes as below;
 * - same UIDVALIDITY: bodies of UIDs >= the base's UIDNEXT; flag/keyword changes of older messages by
 *   modseq where the source has modseq and the base recorded HIGHESTMODSEQ, else the full flag table;
 * - a plain TIME (no cursor source at all): bodies of messages saved (or, without a save date, with an
 *   INTERNALDATE) at or after TIME, and the full flag table; expunges follow from the UID sets.
 * Mailboxes of the base that are no longer there were deleted: a dump has a record for every mailbox.
 */
import { open } from 'node:fs/promises';
import type { DateTime } from 'luxon';
import { UsageError, fromSystemError, InputNotFoundError } from '../core/errors.js';
import { FLAG_TABLE_MAX_ENTRIES, type FlagTableEntry } from '../archive/records.js';
import type { MailboxInfo, MailboxReader, MessageInfo } from '../storage/types.js';
import { FlagDigestBuilder, parseFlagDigest, type BlockDigests } from './flag-digest.js';
import { cursorsFromDump, parseStateFile, UidSequence, UidSequenceBuilder, userCursors, type CursorState, type MailboxCursor, type UserCursors } from './cursors.js';

/** What `--since` resolved to. */
export interface SinceSpec {
  /** Unix seconds: messages saved at or after this are new where no cursor decides. */
  readonly since: number;
  /** ISO 8601 UTC of `since`. */
  readonly sinceIso: string;
  /** How the value was read, for the header options and the summary. */
  readonly interpretation: string;
  /** Cursors of the base run, when the value named a dump or state file. */
  readonly base: CursorState | null;
  /** What the user should know about this base (an incremental dump as base), for a warning. */
  readonly caveat?: string;
}

const SPAN = /^(\d+)\s*(s|m|h|d|w)$/i;
const SPAN_UNITS = { s: 'seconds', m: 'minutes', h: 'hours', d: 'days', w: 'weeks' } as const;

function isoSeconds(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

/**
 * Parse `--since VALUE`: ISO 8601 (with an offset as given; without one, as UTC — said in the
 * interpretation), a span back from now (30m, 24h, 7d, 2w), or @FILE naming an earlier dump or a
 * state file (its cursors; the time is that run's start). A value that is unparsable or in the future
 * is a UsageError naming it.
 */
export async function resolveSince(value: string, nowGiven?: DateTime): Promise<SinceSpec> {
  const text = value.trim();
  const hint = 'use ISO 8601 (2026-11-28, 2026-11-28T14:00:00Z, 2026-11-28T15:00+01:00), a span back from now (24h, 7d) or @FILE (an earlier dump or --state-file)';
  if (text.startsWith('@')) {
    const file = text.slice(1);
    if (file === '') throw new UsageError(`--since "${value}": @ must be followed by a file name`, { hint });
    const { state: base, kind } = await baseOfFile(file);
    const since = Math.floor(Date.parse(base.created) / 1000);
    // An incremental dump does not say which messages its run skipped (exit 3): its cursors take them as
    // held, and no later run would carry them (state-file.md, "Messages a run skipped").
    const caveat =
      kind === 'incremental'
        ? `--since @${file} is an incremental dump: if that run skipped messages (exit status 3), its cursors take them as held and no later run carries them; give that run's --state-file instead`
        : undefined;
    return { since, sinceIso: isoSeconds(since), interpretation: `changes since run ${base.runId} (${file}, started ${base.created}); per-mailbox cursors decide, the time only where a mailbox has none`, base, ...(caveat !== undefined ? { caveat } : {}) };
  }
  // luxon is loaded only for a time value: @FILE (what scripts use run after run) does not pay for it
  // (measured on an unchanged 100k store: 0.41 -> 0.39 s, 5 MiB less peak RSS).
  const { DateTime, Duration } = await import('luxon');
  const now = nowGiven ?? DateTime.utc();
  const nowSeconds = Math.floor(now.toSeconds());
  let since: number;
  let interpretation: string;
  const span = SPAN.exec(text);
  if (span) {
    const unit = SPAN_UNITS[span[2]!.toLowerCase() as keyof typeof SPAN_UNITS];
    since = Math.floor(now.minus(Duration.fromObject({ [unit]: Number(span[1]) })).toSeconds());
    interpretation = `${span[1]} ${unit} before now: ${isoSeconds(since)} (UTC)`;
  } else {
    const hasOffset = /(?:[zZ]|[+-]\d\d(?::?\d\d)?)$/.test(text) && /T/.test(text);
    const dt = DateTime.fromISO(text, { zone: 'utc', setZone: true });
    if (!dt.isValid) throw new UsageError(`--since "${value}" is not a time`, { hint });
    since = Math.floor(dt.toSeconds());
    interpretation = hasOffset ? `${text} = ${isoSeconds(since)} (UTC)` : `${text} has no UTC offset: taken as UTC, ${isoSeconds(since)}`;
  }
  if (since > nowSeconds) {
    throw new UsageError(`--since "${value}" is in the future (${isoSeconds(since)}; now is ${isoSeconds(nowSeconds)})`, { hint: 'give a time in the past; a time without an offset is taken as UTC' });
  }
  return { since, sinceIso: isoSeconds(since), interpretation, base: null };
}

/** Cursors of @FILE: a state file (JSON, first byte "{") or a dump. */
export async function baseFromFile(file: string): Promise<CursorState> {
  return (await baseOfFile(file)).state;
}

/** baseFromFile, and the kind of dump it was ("state" for a state file). */
async function baseOfFile(file: string): Promise<{ state: CursorState; kind: string }> {
  let first: Buffer;
  try {
    const fh = await open(file, 'r');
    try {
      first = Buffer.alloc(1);
      await fh.read(first, 0, 1, 0);
    } finally {
      await fh.close();
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new InputNotFoundError(`--since @${file}: no such dump or state file`, { path: file, hint: 'give the dump (or --state-file) of the run this backup follows' });
    throw fromSystemError(e, 'read the base of the incremental', { path: file });
  }
  if (first[0] === 0x7b /* { */) {
    const fh = await open(file, 'r');
    try {
      return { state: parseStateFile(await fh.readFile('utf8'), file), kind: 'state' };
    } finally {
      await fh.close();
    }
  }
  const d = await cursorsFromDump(file);
  return { state: d.state, kind: d.kind };
}

/**
 * Which older messages go into the flag table: none (a full dump, a mailbox carried whole), those with
 * a modseq above the base's, or all of them; with `digests` (the base recorded flag digests, see
 * flag-digest.ts) only those in blocks of UIDs whose digest changed.
 */
export type FlagMode = { readonly mode: 'none' } | { readonly mode: 'modseq'; readonly changedSince: string } | { readonly mode: 'full'; readonly digests?: BlockDigests };

/** What an incremental carries of one mailbox. */
export interface MailboxPlan {
  /** The whole mailbox again (new mailbox, or UIDVALIDITY changed). */
  readonly reset: boolean;
  /** Why, for the summary. */
  readonly reason: 'full' | 'new' | 'uidvalidity' | 'incomplete' | 'cursor' | 'time';
  readonly base: MailboxCursor | null;
  /** Base name when the mailbox (same GUID) had another name. */
  readonly renamedFrom: string | null;
  /** Bodies of UIDs >= this (cursor), or null. */
  readonly minUid: number | null;
  /**
   * With minUid: the UIDs the base holds (its uidSet). A message below minUid that is not among them
   * was not carried by the base (skipped, or not readable when it ran): its body is carried now.
   */
  readonly baseUids: UidSequence | null;
  /** Bodies of messages saved at or after this (no cursor), or null. */
  readonly savedSince: number | null;
  readonly flags: FlagMode;
}

const FULL_PLAN: MailboxPlan = { reset: false, reason: 'full', base: null, renamedFrom: null, minUid: null, baseUids: null, savedSince: null, flags: { mode: 'none' } };

/** Plans one mailbox of an incremental. `cursors` null: no cursor source (plain TIME). */
export function planMailbox(info: Pick<MailboxInfo, 'name' | 'guid' | 'uidValidity'>, cursors: UserCursors | null, hasModseq: boolean, since: number): MailboxPlan {
  if (cursors === null) return { reset: false, reason: 'time', base: null, renamedFrom: null, minUid: null, baseUids: null, savedSince: since, flags: { mode: 'full' } };
  const base = cursors.find(info) ?? null;
  if (base === null) return { ...FULL_PLAN, reset: true, reason: 'new' };
  const renamedFrom = base.name !== info.name ? base.name : null;
  if (base.uidValidity !== info.uidValidity) return { ...FULL_PLAN, reset: true, reason: 'uidvalidity', base, renamedFrom };
  // Only a cursor of the same name: a mailbox copied with its uidlist (cp -a) shares its GUID with
  // the original, and would be compared with the other's digest (a renamed mailbox carries its whole
  // table once).
  const digests = base.flagDigest && base.name === info.name ? parseFlagDigest(base.flagDigest) : null;
  const flags: FlagMode = hasModseq && base.highestModseq !== null ? { mode: 'modseq', changedSince: base.highestModseq } : digests instanceof Map ? { mode: 'full', digests } : { mode: 'full' };
  const baseUids = base.uidSet === null ? null : UidSequence.parse(base.uidSet);
  return { reset: false, reason: 'cursor', base, renamedFrom, minUid: base.uidNext, baseUids, savedSince: null, flags };
}

/**
 * The plan once the metadata pass found older messages the base does not hold (scan.lacking: it skipped
 * them) and at least one of them can be read now: the whole mailbox again, `reset: true`, so that a
 * restore of the chain puts every UID in order (a store cannot take a UID below one it already has)
 * instead of adding the missing ones after the others.
 */
export function incompleteBase(plan: MailboxPlan, scan: MailboxScan): { plan: MailboxPlan; scan: MailboxScan } {
  return {
    plan: { ...plan, reset: true, reason: 'incomplete', minUid: null, baseUids: null, flags: { mode: 'none' } },
    scan: { ...scan, flagEntries: [], bodies: scan.uidSet.size, wanted: scan.uidSet, lacking: [] },
  };
}

/** A full dump's plan: every body, no flag table. */
export function fullPlan(): MailboxPlan {
  return FULL_PLAN;
}

/** Does the incremental carry this message's body? */
export function wantsBody(plan: MailboxPlan, message: Pick<MessageInfo, 'uid' | 'saveDate' | 'internalDate' | 'changedAt'>): boolean {
  if (plan.minUid !== null) return message.uid >= plan.minUid || (plan.baseUids !== null && !plan.baseUids.has(message.uid));
  if (plan.savedSince !== null) return (message.saveDate ?? Math.max(message.internalDate, message.changedAt ?? Number.NEGATIVE_INFINITY)) >= plan.savedSince;
  return true;
}

const DECIMAL = /^(?:0|[1-9][0-9]*)$/;

/**
 * modseq > than, for decimal text (modseqs exceed 2^53). Canonical decimals (what drivers and the state
 * file hold) compare by length, then as text: no BigInt per message (15 ms of a 50k-message
 * incremental, profiled). Anything else is compared as numbers; unknown or unreadable: carry it.
 */
export function modseqAbove(modseq: string | null, than: string): boolean {
  if (modseq === null) return true;
  if (DECIMAL.test(modseq) && DECIMAL.test(than)) return modseq.length !== than.length ? modseq.length > than.length : modseq > than;
  try {
    return BigInt(modseq) > BigInt(than);
  } catch {
    return true;
  }
}

/** Does the flag table carry this message (it is not carried whole and its flags may have changed)? */
export function wantsFlagEntry(plan: MailboxPlan, message: Pick<MessageInfo, 'uid' | 'saveDate' | 'internalDate' | 'changedAt' | 'modseq'>): boolean {
  if (plan.flags.mode === 'none' || wantsBody(plan, message)) return false;
  if (plan.flags.mode === 'full') return true;
  return modseqAbove(message.modseq, plan.flags.changedSince);
}

/** One line of a flag table: a message whose body is in an earlier dump, with its flags now. */
export type FlagEntry = FlagTableEntry;

/** Entries per flag-table member: keeps every record far below the 1 MiB record limit even with many keywords. */
export const FLAG_TABLE_CHUNK = FLAG_TABLE_MAX_ENTRIES;

/** What the metadata pass over a mailbox found. */
export interface MailboxScan {
  /** UIDs present when the mailbox was read. */
  readonly uidSet: UidSequence;
  /** Flag-table entries, in UID order. */
  readonly flagEntries: FlagEntry[];
  /** Messages whose bodies the plan wants. */
  readonly bodies: number;
  /** UIDs of the UID set whose bodies the plan wants. */
  readonly wanted: UidSequence;
  /**
   * Of those, the UIDs below the plan's minUid: older messages the base does not hold (it skipped
   * them). The body pass, which starts at minUid, does not reach them (backup.ts decides).
   */
  readonly lacking: readonly number[];
  /** Messages whose metadata could not be read (the body pass reports them). */
  readonly unreadable: number;
  /** The flags of every message scanned, for the state file (with `trackFlags`), else null. */
  readonly digest: FlagDigestBuilder | null;
}

/**
 * One pass over a mailbox's metadata (no bodies): its UID set and flag table. Messages with UID >=
 * `uidNextLimit` (arrived after the mailbox was opened) are left for the next run, as the mailbox
 * record's UIDNEXT says.
 */
export async function scanMailbox(reader: MailboxReader, plan: MailboxPlan, uidNextLimit: number, trackFlags = false): Promise<MailboxScan> {
  const uids = new UidSequenceBuilder();
  const flagEntries: FlagEntry[] = [];
  let bodies = 0;
  let unreadable = 0;
  const wanted = new UidSequenceBuilder();
  const lacking: number[] = [];
  // With the base's flag digests, a block's entries wait until the block is complete: they go into
  // the table only if its digest is not the one the base recorded.
  const baseDigests = plan.flags.mode === 'full' ? (plan.flags.digests ?? null) : null;
  const pending: FlagEntry[] = [];
  const digest = trackFlags || baseDigests !== null
    ? new FlagDigestBuilder(baseDigests === null ? null : (block, d) => {
        if (baseDigests.get(block) !== d) for (const e of pending) flagEntries.push(e);
        pending.length = 0;
      })
    : null;
  const entries = baseDigests === null ? flagEntries : pending;
  const add = (m: MessageInfo): void => {
    if (m.uid >= uidNextLimit) return;
    uids.add(m.uid);
    digest?.add(m.uid, m.flags, m.keywords);
    if (wantsBody(plan, m)) {
      bodies++;
      wanted.add(m.uid);
      if (plan.minUid !== null && m.uid < plan.minUid) lacking.push(m.uid);
    }
    else if (wantsFlagEntry(plan, m)) entries.push({ uid: m.uid, flags: m.flags, keywords: m.keywords }); // readonly: shared, not copied
  };
  const done = (): MailboxScan => {
    digest?.finish();
    return { uidSet: uids.build(), flagEntries, bodies, wanted: wanted.build(), lacking, unreadable, digest: trackFlags ? digest : null };
  };
  if (plan.savedSince === null && reader.listFlags !== undefined) {
    // Synchronous where the driver has it all in memory: no await per message (50k-message mailboxes).
    for (const m of reader.listFlags()) add(m);
    return done();
  }
  // A cursor-based plan (and a full backup's plan) decides by UID and flags only: no dates (no stat
  // per Maildir message), no size or GUID (no dbox file opened per message).
  const it = reader.messages(plan.savedSince === null ? { dates: false, flagsOnly: true } : {})[Symbol.asyncIterator]();
  for (;;) {
    let step: IteratorResult<MessageInfo>;
    try {
      step = await it.next();
    } catch {
      unreadable++;
      continue;
    }
    if (step.done) break;
    add(step.value);
  }
  return done();
}

/** Splits a flag table into members of at most FLAG_TABLE_CHUNK entries. */
export function flagTableChunks(entries: readonly FlagEntry[], chunk = FLAG_TABLE_CHUNK): FlagEntry[][] {
  const out: FlagEntry[][] = [];
  for (let i = 0; i < entries.length; i += chunk) out.push(entries.slice(i, i + chunk));
  return out;
}

/** Per mailbox, what the incremental did (for the summary). */
export interface MailboxChange {
  readonly user: string;
  readonly mailbox: string;
  /**
   * 'incomplete': the base lacks messages it skipped when it ran, so the mailbox is carried whole again.
   * 'kept': the mailbox could not be opened (reported as skipped); its record is the base's, so that a
   * restore of the chain keeps its earlier mail, and the next run reads it.
   * 'unselected': left out by --mailbox; carried as the base has it, for the same reason.
   */
  readonly status: 'new' | 'reset' | 'incomplete' | 'changed' | 'unchanged' | 'kept' | 'unselected' | 'deleted' | 'time';
  readonly renamedFrom: string | null;
  readonly newMessages: number;
  readonly flagEntries: number;
  /** UIDs of the base no longer present (null when the base recorded no UID set). */
  readonly expunged: number | null;
  /** Unchanged by its change token: the mailbox was not read at all. */
  readonly notRead?: boolean;
}

/** Describes one mailbox of an incremental for the summary. */
export function describeChange(user: string, info: Pick<MailboxInfo, 'name'>, plan: MailboxPlan, scan: MailboxScan): MailboxChange {
  let expunged: number | null = null;
  if (plan.base?.uidSet != null && !plan.reset) {
    const before = UidSequence.parse(plan.base.uidSet);
    if (before) {
      expunged = 0;
      for (const _ of before.minus(scan.uidSet)) expunged++;
    }
  }
  const status: MailboxChange['status'] = plan.reason === 'new' ? 'new' : plan.reason === 'uidvalidity' ? 'reset' : plan.reason === 'incomplete' ? 'incomplete' : plan.reason === 'time' ? 'time'
    : scan.bodies > 0 || scan.flagEntries.length > 0 || (expunged ?? 0) > 0 || plan.renamedFrom !== null ? 'changed' : 'unchanged';
  return { user, mailbox: info.name, status, renamedFrom: plan.renamedFrom, newMessages: scan.bodies, flagEntries: scan.flagEntries.length, expunged };
}

/** Mailboxes of the base that no mailbox now matches: deleted since. */
export function deletedSince(cursors: UserCursors | null, matched: ReadonlySet<MailboxCursor>): MailboxCursor[] {
  if (cursors === null) return [];
  return cursors.cursors.filter((c) => !matched.has(c));
}

/** The per-user planner backup.ts uses. */
export class IncrementalPlanner {
  constructor(
    readonly spec: SinceSpec,
    readonly hasCursorSource: boolean,
  ) {}

  forUser(user: string): {
    cursors: UserCursors | null;
    matched: Set<MailboxCursor>;
    plan(info: MailboxInfo, hasModseq: boolean): MailboxPlan;
    unchanged(mailbox: { readonly name: string; readonly changeToken?: string | null }): MailboxCursor | null;
    /**
     * The base cursor of a mailbox this run does not read (cannot open, or left out by --mailbox), whatever
     * its token: found as plan() finds it (by GUID where the mailbox's is known: a renamed mailbox keeps
     * its cursor, a mailbox deleted and created again under its name has none), with its UID set recorded.
     */
    kept(mailbox: Pick<MailboxInfo, 'name' | 'guid'>): MailboxCursor | null;
    /** The name the base knew the mailbox with this GUID by, if it had one. */
    baseNameOf(guid: string): string | null;
    deleted(): MailboxCursor[];
  } {
    const cursors = this.hasCursorSource ? (userCursors(this.spec.base, user) ?? null) : null;
    const matched = new Set<MailboxCursor>();
    const since = this.spec.since;
    return {
      cursors,
      matched,
      plan(info, hasModseq) {
        const p = planMailbox(info, cursors, hasModseq, since);
        if (p.base) matched.add(p.base);
        return p;
      },
      unchanged(mailbox) {
        const c = cursors?.unchanged(mailbox.name, mailbox.changeToken) ?? null;
        if (c !== null) matched.add(c);
        return c;
      },
      kept(mailbox) {
        const c = cursors?.find(mailbox) ?? null;
        if (c === null || c.uidSet === null) return null;
        matched.add(c);
        return c;
      },
      baseNameOf: (guid) => cursors?.withGuid(guid)?.name ?? null,
      deleted: () => deletedSince(cursors, matched),
    };
  }
}
