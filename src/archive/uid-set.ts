/**
 * A mailbox record's `uidSet` (formats/dump-v1.md section 13, "Mailbox uidSet"): IMAP sequence-set
 * text over UIDs without `*`, ranges ascending and not touching, a range `a:b` with a < b, "" for no
 * UID. The writer refuses any other text, and the readers reject it; both then check that the
 * mailbox's messages and flag-table entries are among these UIDs (UidSetCursor).
 */

const MAX_UID = 0xffffffff;
const ITEM = /^([1-9][0-9]{0,9})(?::([1-9][0-9]{0,9}))?$/;

/**
 * The ranges of `text` as flat bounds [first0, last0, first1, last1, ...], or null if the text is not
 * a uidSet as the format defines it.
 */
export function parseUidSetBounds(text: string): number[] | null {
  const bounds: number[] = [];
  if (text === '') return bounds;
  let last = 0;
  for (const item of text.split(',')) {
    const m = ITEM.exec(item);
    if (m === null) return null;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b > MAX_UID || (m[2] !== undefined && b <= a) || (last > 0 && a <= last + 1)) return null;
    bounds.push(a, b);
    last = b;
  }
  return bounds;
}

/** True if `text` is a uidSet as the format defines it. */
export function isUidSet(text: string): boolean {
  return parseUidSetBounds(text) !== null;
}

/**
 * Membership in a uidSet for UIDs asked in ascending order (a mailbox's messages, or its flag-table
 * entries): O(1) per question, however many ranges.
 */
export class UidSetCursor {
  constructor(
    private readonly bounds: readonly number[],
    private i = 0,
  ) {}

  /** A copy at the same place: asked instead of this one, it leaves this one where it was. */
  fork(): UidSetCursor {
    return new UidSetCursor(this.bounds, this.i);
  }

  /** Parses `text` (which must be a valid uidSet: validated before). */
  static of(text: string): UidSetCursor {
    return new UidSetCursor(parseUidSetBounds(text) ?? []);
  }

  /** True if `uid` is in the set; `uid` must be at least every UID asked before. */
  has(uid: number): boolean {
    const b = this.bounds;
    while (this.i < b.length && b[this.i + 1]! < uid) this.i += 2;
    return this.i < b.length && b[this.i]! <= uid;
  }
}
