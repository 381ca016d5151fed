/**
 * What a restore, list or extract acts on: users, mailboxes (IMAP LIST-style patterns), UIDs (IMAP
 * sequence-set syntax), Message-IDs, header filters, and the entry ids of an edited `list` file
 * (`restore --use-list`). An empty criterion selects everything.
 */
import { readFile } from 'node:fs/promises';
import { InputNotFoundError, UsageError } from '../core/errors.js';

export interface Selection {
  readonly users?: readonly string[];
  /** Patterns: `*` matches any characters, `%` any but the hierarchy separator "/". Exact names match themselves. */
  readonly mailboxes?: readonly string[];
  readonly uids?: UidSet;
  readonly messageIds?: readonly string[];
  /** Case-insensitive substring of the From header. */
  readonly from?: string;
  /** Case-insensitive substring of the Subject header. */
  readonly subject?: string;
  /** INTERNALDATE >= since (Unix seconds). */
  readonly since?: number;
  /** INTERNALDATE < before (Unix seconds). */
  readonly before?: number;
  /** Entry ids from a list file; when set, only these entries (and the records above them) are restored. */
  readonly ids?: ReadonlySet<number>;
}

/** An IMAP sequence set over UIDs: ranges, `*` meaning "the largest". */
export class UidSet {
  private constructor(private readonly ranges: ReadonlyArray<readonly [number, number]>) {}

  static parse(text: string): UidSet {
    const ranges: [number, number][] = [];
    for (const part of text.split(',')) {
      const m = /^\s*(\d+|\*)(?::(\d+|\*))?\s*$/.exec(part);
      if (!m) throw new UsageError(`"${text}" is not a UID set`, { hint: 'write UIDs like 17, 1:100 or 5,9,200:*' });
      const a = m[1] === '*' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
      const b = m[2] === undefined ? a : m[2] === '*' ? Number.MAX_SAFE_INTEGER : Number(m[2]);
      if (a === 0 || b === 0) throw new UsageError(`"${text}": UID 0 does not exist`, { hint: 'UIDs start at 1' });
      ranges.push([Math.min(a, b), Math.max(a, b)]);
    }
    return new UidSet(ranges);
  }

  has(uid: number): boolean {
    return this.ranges.some(([a, b]) => uid >= a && uid <= b);
  }

  toString(): string {
    return this.ranges.map(([a, b]) => (a === b ? `${a}` : `${a}:${b === Number.MAX_SAFE_INTEGER ? '*' : b}`)).join(',');
  }
}

function patternToRegExp(pattern: string): RegExp {
  let re = '^';
  for (const c of pattern) {
    if (c === '*') re += '.*';
    else if (c === '%') re += '[^/]*';
    else re += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(re + '$', 'su');
}

/** Mailbox name matcher; INBOX matches case-insensitively as IMAP says. */
export function mailboxMatcher(patterns: readonly string[] | undefined): (name: string) => boolean {
  if (!patterns || patterns.length === 0) return () => true;
  const res = patterns.map((p) => patternToRegExp(p.toUpperCase() === 'INBOX' ? 'INBOX' : p));
  return (name) => res.some((re) => re.test(name));
}

export function userMatcher(users: readonly string[] | undefined): (name: string) => boolean {
  if (!users || users.length === 0) return () => true;
  const set = new Set(users);
  return (name) => set.has(name);
}

/** Normalise a Message-ID for comparison: no angle brackets, no surrounding space. */
export function normalizeMessageId(id: string): string {
  return id.trim().replace(/^<|>$/g, '').trim();
}

export interface MessageFacts {
  readonly uid: number;
  readonly internalDate: number;
  readonly messageId: string;
  readonly from: string;
  readonly subject: string;
}

/** Does a selection need the message's header facts (and so its record) to decide? */
export function needsHeaderFacts(sel: Selection): boolean {
  return Boolean(sel.messageIds?.length || sel.from || sel.subject);
}

export function messageMatches(sel: Selection, m: MessageFacts): boolean {
  if (sel.uids && !sel.uids.has(m.uid)) return false;
  if (sel.since !== undefined && m.internalDate < sel.since) return false;
  if (sel.before !== undefined && m.internalDate >= sel.before) return false;
  if (sel.messageIds?.length) {
    const want = new Set(sel.messageIds.map(normalizeMessageId));
    if (!want.has(normalizeMessageId(m.messageId))) return false;
  }
  if (sel.from && !m.from.toLowerCase().includes(sel.from.toLowerCase())) return false;
  if (sel.subject && !m.subject.toLowerCase().includes(sel.subject.toLowerCase())) return false;
  return true;
}

/**
 * Read the entry ids of a list file (the output of `mailvault list`, edited): one entry per line
 * starting with its id, everything after ";" is a comment, lines starting with ";" are comments.
 * Unknown or repeated ids are reported through `warn`.
 */
export async function readListFile(file: string, warn: (message: string) => void = () => {}): Promise<Set<number>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new InputNotFoundError(`list file not found: ${file}`, { path: file, hint: 'make one with: mailvault list DUMP > FILE, then edit it' });
  }
  return parseListFile(text, warn);
}

export function parseListFile(text: string, warn: (message: string) => void = () => {}): Set<number> {
  const ids = new Set<number>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    const body = line.split(';')[0]!.trim();
    if (body === '') return;
    const m = /^(\d+)(\s|$)/.exec(body);
    if (!m) {
      warn(`list file line ${i + 1}: does not start with an entry id, ignored: ${line.slice(0, 60)}`);
      return;
    }
    const id = Number(m[1]);
    if (ids.has(id)) warn(`list file line ${i + 1}: entry ${id} is listed twice`);
    ids.add(id);
  });
  return ids;
}
