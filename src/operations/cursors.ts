/**
 * Change cursors: what an earlier dump saw of each mailbox (GUID, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ
 * and the set of UIDs present), so that the next run can tell new messages, flag changes, expunges,
 * renames and UIDVALIDITY resets apart. Cursors come from a state file (`--state-file`, written at the
 * end of every backup that has the flag) or from an earlier dump's mailbox records.
 *
 * UID sets are IMAP sequence-set text ("1:5,7,9:120") without `*`: ascending, non-overlapping ranges,
 * which keeps a mailbox of a million messages with few expunges to a few bytes.
 */
import { createReadStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { ArchiveCorruptError, InputNotFoundError, UsageError, fromSystemError, isMailvaultError } from '../core/errors.js';
import type { MailboxInfo } from '../storage/types.js';
import { parseUidSetBounds } from '../archive/uid-set.js';
import { parseFlagDigest } from './flag-digest.js';

/** An ascending set of UIDs kept as ranges. Immutable. */
export class UidSequence {
  /** Flat [start0, end0, start1, end1, ...], ascending, ranges neither overlapping nor touching. */
  private constructor(private readonly bounds: readonly number[]) {}

  static readonly EMPTY = new UidSequence([]);

  /** Parse uidSet text (archive/uid-set.ts: ascending ranges of 1 … 2^32-1, not touching, no `*`); null if it is not one. */
  static parse(text: string): UidSequence | null {
    const bounds = parseUidSetBounds(text);
    return bounds === null ? null : bounds.length === 0 ? UidSequence.EMPTY : new UidSequence(bounds);
  }

  /** From UIDs in any order (duplicates allowed). */
  static of(uids: Iterable<number>): UidSequence {
    const sorted = [...uids].sort((x, y) => x - y);
    const builder = new UidSequenceBuilder();
    for (const uid of sorted) builder.add(uid);
    return builder.build();
  }

  /** @internal */
  static fromBounds(bounds: number[]): UidSequence {
    return new UidSequence(bounds);
  }

  /** Number of UIDs. */
  get size(): number {
    let n = 0;
    for (let i = 0; i < this.bounds.length; i += 2) n += this.bounds[i + 1]! - this.bounds[i]! + 1;
    return n;
  }

  /** Highest UID, or 0 when empty. */
  get max(): number {
    return this.bounds.length === 0 ? 0 : this.bounds[this.bounds.length - 1]!;
  }

  has(uid: number): boolean {
    // Binary search over the ranges.
    let lo = 0;
    let hi = this.bounds.length / 2 - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const a = this.bounds[mid * 2]!;
      const b = this.bounds[mid * 2 + 1]!;
      if (uid < a) hi = mid - 1;
      else if (uid > b) lo = mid + 1;
      else return true;
    }
    return false;
  }

  *[Symbol.iterator](): IterableIterator<number> {
    for (let i = 0; i < this.bounds.length; i += 2) for (let u = this.bounds[i]!; u <= this.bounds[i + 1]!; u++) yield u;
  }

  /** UIDs of this set that `other` lacks (e.g. base minus now = expunged). */
  *minus(other: UidSequence): IterableIterator<number> {
    for (const uid of this) if (!other.has(uid)) yield uid;
  }

  toString(): string {
    const parts: string[] = [];
    for (let i = 0; i < this.bounds.length; i += 2) {
      const a = this.bounds[i]!;
      const b = this.bounds[i + 1]!;
      parts.push(a === b ? `${a}` : `${a}:${b}`);
    }
    return parts.join(',');
  }
}

/** Builds a UidSequence from ascending UIDs (one message at a time, O(1) memory per range). */
export class UidSequenceBuilder {
  private readonly bounds: number[] = [];

  /** Adds a UID >= every UID added before (an equal one is ignored). Throws on a descending UID. */
  add(uid: number): void {
    if (!this.addRange(uid, uid)) throw new RangeError(`UID ${uid} added after a larger one`);
  }

  /** Adds [a, b] above everything added; false if it is not above. */
  addRange(a: number, b: number): boolean {
    const n = this.bounds.length;
    if (n > 0) {
      const last = this.bounds[n - 1]!;
      if (a <= last) {
        if (a === last && b === last) return true;
        return false;
      }
      if (a === last + 1) {
        this.bounds[n - 1] = b;
        return true;
      }
    }
    this.bounds.push(a, b);
    return true;
  }

  build(): UidSequence {
    return UidSequence.fromBounds([...this.bounds]);
  }
}

/** What one dump saw of one mailbox. */
export interface MailboxCursor {
  readonly name: string;
  readonly guid: string | null;
  readonly uidValidity: number;
  readonly uidNext: number;
  readonly highestModseq: string | null;
  /** Sequence-set text of the UIDs present, or null where the base did not record it (a dump of mailvault 0.2 or older). */
  readonly uidSet: string | null;
  /**
   * The driver's change token for the mailbox as that run read it (storage MailboxEntry.changeToken),
   * or null/absent. Kept in state files only: a mailbox whose token is unchanged is not read again.
   */
  readonly changeToken?: string | null;
  /**
   * Digests of the flags the dump chain holds, per block of UIDs (flag-digest.ts), or null/absent.
   * Kept in state files only: the next incremental of a source without modseq carries the flags of
   * blocks whose digest changed instead of every message's.
   */
  readonly flagDigest?: string | null;
}

/** The cursors of one run: the dump an incremental follows. */
export interface CursorState {
  /** The run (dump header runId) these cursors describe. */
  readonly runId: string;
  /** The run's header `created` (ISO 8601 UTC): messages saved after it are new for sure. */
  readonly created: string;
  /** Per user, the mailboxes read by that run. */
  readonly users: Readonly<Record<string, readonly MailboxCursor[]>>;
}

export const STATE_FILE_FORMAT = 'mailvault-state';
export const STATE_FILE_VERSION = 1;

/** The state file as written (formats/state-file.md). */
export interface StateFile extends CursorState {
  readonly format: typeof STATE_FILE_FORMAT;
  readonly version: number;
}

/** Looks up a user's base cursor for a mailbox: by GUID where both sides have one, else by name. */
export class UserCursors {
  private readonly byGuid = new Map<string, MailboxCursor>();
  private readonly byName = new Map<string, MailboxCursor>();

  constructor(readonly cursors: readonly MailboxCursor[]) {
    for (const c of cursors) {
      if (c.guid) this.byGuid.set(c.guid, c);
      this.byName.set(c.name, c);
    }
  }

  /**
   * The base cursor of a mailbox that has not changed since: same name and the same change token (a
   * token covers the mailbox's identity, so a renamed or re-created mailbox never matches), with the
   * UID set recorded. undefined when there is none.
   */
  unchanged(name: string, changeToken: string | null | undefined): MailboxCursor | undefined {
    if (changeToken === null || changeToken === undefined) return undefined;
    const c = this.byName.get(name);
    return c !== undefined && c.changeToken === changeToken && c.uidSet !== null ? c : undefined;
  }

  /** The base cursor with this GUID, if any. */
  withGuid(guid: string): MailboxCursor | undefined {
    return this.byGuid.get(guid);
  }

  find(mailbox: Pick<MailboxInfo, 'name' | 'guid'>): MailboxCursor | undefined {
    if (mailbox.guid) {
      const hit = this.byGuid.get(mailbox.guid);
      if (hit) return hit;
      // A name match with a different GUID is another mailbox (deleted and created again): no cursor.
      const named = this.byName.get(mailbox.name);
      return named && named.guid === null ? named : undefined;
    }
    return this.byName.get(mailbox.name);
  }
}

export function userCursors(state: CursorState | null, user: string): UserCursors | null {
  if (state === null) return null;
  return new UserCursors(state.users[user] ?? []);
}

const badState = (file: string, why: string): UsageError =>
  new UsageError(`state file ${file}: ${why}`, { path: file, hint: 'the file was not written by mailvault backup --state-file, or was damaged; remove it to start again with a full backup' });

function checkCursor(o: unknown, file: string): MailboxCursor {
  const c = o as Record<string, unknown>;
  const ok =
    c !== null && typeof c === 'object' &&
    typeof c['name'] === 'string' &&
    (c['guid'] === null || typeof c['guid'] === 'string') &&
    Number.isInteger(c['uidValidity']) &&
    Number.isInteger(c['uidNext']) &&
    (c['highestModseq'] === null || (typeof c['highestModseq'] === 'string' && /^[0-9]+$/.test(c['highestModseq']))) &&
    (c['uidSet'] === null || (typeof c['uidSet'] === 'string' && UidSequence.parse(c['uidSet']) !== null)) &&
    (c['changeToken'] === undefined || c['changeToken'] === null || typeof c['changeToken'] === 'string') &&
    (c['flagDigest'] === undefined || c['flagDigest'] === null || typeof c['flagDigest'] === 'string');
  if (!ok) throw badState(file, `a mailbox entry is malformed: ${JSON.stringify(o).slice(0, 200)}`);
  if (typeof c['flagDigest'] === 'string') {
    const parsed = parseFlagDigest(c['flagDigest']);
    if (typeof parsed === 'string') throw badState(file, `the flag digest of mailbox "${c['name'] as string}" is malformed: ${parsed}`);
  }
  return {
    name: c['name'] as string,
    guid: c['guid'] as string | null,
    uidValidity: c['uidValidity'] as number,
    uidNext: c['uidNext'] as number,
    highestModseq: c['highestModseq'] as string | null,
    uidSet: c['uidSet'] as string | null,
    ...(typeof c['changeToken'] === 'string' ? { changeToken: c['changeToken'] } : {}),
    ...(typeof c['flagDigest'] === 'string' ? { flagDigest: c['flagDigest'] } : {}),
  };
}

/** Parses state-file text. */
export function parseStateFile(text: string, file: string): StateFile {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (e) {
    throw badState(file, `not JSON (${(e as Error).message})`);
  }
  const s = o as Record<string, unknown>;
  if (s === null || typeof s !== 'object' || s['format'] !== STATE_FILE_FORMAT) throw badState(file, `"format" is not "${STATE_FILE_FORMAT}"`);
  if (s['version'] !== STATE_FILE_VERSION) throw badState(file, `version ${JSON.stringify(s['version'])} is not ${STATE_FILE_VERSION}: written by another mailvault release`);
  if (typeof s['runId'] !== 'string' || typeof s['created'] !== 'string' || !Number.isFinite(Date.parse(s['created']))) throw badState(file, 'runId or created is missing');
  const users = s['users'];
  if (users === null || typeof users !== 'object' || Array.isArray(users)) throw badState(file, '"users" is not an object');
  const out: Record<string, MailboxCursor[]> = {};
  for (const [user, list] of Object.entries(users as Record<string, unknown>)) {
    if (!Array.isArray(list)) throw badState(file, `the mailboxes of user "${user}" are not a list`);
    out[user] = list.map((c) => checkCursor(c, file));
  }
  return { format: STATE_FILE_FORMAT, version: STATE_FILE_VERSION, runId: s['runId'], created: s['created'], users: out };
}

/** Reads a state file; null when it does not exist (the first run). */
export async function readStateFile(file: string): Promise<StateFile | null> {
  let text: string;
  try {
    const fh = await open(file, 'r');
    try {
      text = await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fromSystemError(e, 'read the state file', { path: file });
  }
  return parseStateFile(text, file);
}

/** Writes the state file atomically: FILE.tmp-<pid>, fsync, rename over FILE. */
export async function writeStateFile(file: string, state: CursorState): Promise<void> {
  const body: StateFile = { format: STATE_FILE_FORMAT, version: STATE_FILE_VERSION, runId: state.runId, created: state.created, users: state.users };
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
  try {
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(body) + '\n');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => {});
    throw fromSystemError(e, 'write the state file', { path: file });
  }
}

/**
 * `state` plus the cursors of the users of `base` it has none for, where `keep(user)`: users a run
 * did not back up (not selected, or their store could not be opened) keep, in a chain, the state of
 * the last dump that has them (formats/dump-v1.md 5.10, rule 2), so their base cursors stay true and
 * the next run does not carry them whole.
 */
export function withUsersNotBackedUp(state: CursorState, base: CursorState | null, keep: (user: string) => boolean): CursorState {
  if (base === null) return state;
  const users = { ...state.users };
  for (const [user, cursors] of Object.entries(base.users)) if (!(user in users) && keep(user)) users[user] = cursors;
  return { ...state, users };
}

/** Collects cursors while a backup runs (one per mailbox record written). */
export class CursorRecorder {
  private readonly users: Record<string, MailboxCursor[]> = {};

  constructor(
    readonly runId: string,
    readonly created: string,
  ) {}

  add(user: string, cursor: MailboxCursor): void {
    (this.users[user] ??= []).push(cursor);
  }

  /** A user that was backed up with no mailbox still gets an (empty) entry. */
  touchUser(user: string): void {
    this.users[user] ??= [];
  }

  state(): CursorState {
    return { runId: this.runId, created: this.created, users: this.users };
  }
}

/**
 * The cursors of an earlier dump FILE (the `@FILE` of `--since`): one pass over it without keeping
 * bodies. The dump must be complete (have its trailer); its mailbox records' `uidSet` (when written
 * by a mailvault that records it) tell expunges. Returns the cursors and the trailer's completion time.
 */
export async function cursorsFromDump(file: string): Promise<{ state: CursorState; completed: string; kind: string }> {
  let runId: string | null = null;
  let created = '';
  let kind = '';
  let completed: string | null = null;
  const users: Record<string, MailboxCursor[]> = {};
  const input = createReadStream(file);
  const opened = new Promise<void>((resolve, reject) => {
    input.once('open', () => resolve());
    input.once('error', reject);
  });
  try {
    await opened;
  } catch (e) {
    input.destroy();
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new InputNotFoundError(`--since @${file}: no such dump or state file`, { path: file, hint: 'give the dump (or state file) of the run this backup follows' });
    throw fromSystemError(e, 'read the base dump', { path: file });
  }
  try {
    // The dump reader is loaded only here: a backup with --since @STATE_FILE (or none) never reads a dump.
    const { readDump } = await import('../archive/reader.js');
    // Mailboxes this dump carries whole (a full dump, or reset): the UIDs of their messages, so that
    // UIDs of the set it does not hold (skipped when it ran) are left out of the cursor and the next
    // run carries them. (Of a mailbox carried in part, the UIDs held by earlier dumps are unknown here.)
    const whole = new Map<string, { cursors: MailboxCursor[]; at: number; held: number[] }>();
    for await (const entry of readDump(input, { wantBody: () => false })) {
      if (entry.type === 'header') {
        runId = entry.record.runId;
        created = entry.record.created;
        kind = entry.record.kind;
      } else if (entry.type === 'user') {
        users[entry.record.user] ??= [];
      } else if (entry.type === 'mailbox') {
        const r = entry.record as typeof entry.record & { uidSet?: unknown; reset?: unknown };
        const list = (users[r.user] ??= []);
        if (typeof r.uidSet === 'string' && (kind === 'full' || r.reset === true)) whole.set(`${r.user}\0${r.name}`, { cursors: list, at: list.length, held: [] });
        list.push({
          name: r.name,
          guid: r.guid,
          uidValidity: r.uidValidity,
          uidNext: r.uidNext,
          highestModseq: r.highestModseq,
          uidSet: typeof r.uidSet === 'string' ? r.uidSet : null,
        });
      } else if (entry.type === 'message') {
        whole.get(`${entry.record.user}\0${entry.record.mailbox}`)?.held.push(entry.record.uid);
      } else if (entry.type === 'trailer') {
        completed = entry.record.completed;
      }
    }
    for (const { cursors, at, held } of whole.values()) {
      const c = cursors[at]!;
      const set = c.uidSet === null ? null : UidSequence.parse(c.uidSet);
      if (set === null) continue;
      const missing = UidSequence.of(set.minus(UidSequence.of(held)));
      if (missing.size > 0) cursors[at] = { ...c, uidSet: UidSequence.of(set.minus(missing)).toString() };
    }
  } catch (e) {
    input.destroy();
    if (isMailvaultError(e)) {
      e.message = `base dump ${file}: ${e.message}`;
      throw e;
    }
    throw fromSystemError(e, 'read the base dump', { path: file });
  }
  if (runId === null || completed === null) {
    throw new ArchiveCorruptError(`base dump ${file} is incomplete (no trailer): it cannot be the base of an incremental`, { path: file, hint: 'use the last complete dump, or make a full backup' });
  }
  return { state: { runId, created, users }, completed, kind };
}
