/**
 * `dovecot-keywords`: the map from filename letters a..z to keyword names (maildir-keywords.c).
 * One line per keyword, "<index> <name>\n", index 0..25 = letter 'a' + index. Lines that do not parse,
 * indexes >= 26, empty names and repeated names are ignored, as Dovecot does. Name lookups are
 * case-insensitive. A letter without an entry reads as `unknown-<index>` (Dovecot invents that name).
 *
 * Dovecot rewrites the file only while it holds the uidlist lock: dovecot-keywords.lock (O_EXCL), the
 * whole content written into it, its mtime bumped above the old file's, then renamed over the file.
 */
import fs from 'node:fs';
import { fromSystemError } from '../../core/errors.js';
import { keywordKey } from '../flags.js';

export const MAX_KEYWORDS = 26;

export class KeywordMap {
  /** names[i] is the keyword of letter 'a' + i, or undefined. */
  readonly names: (string | undefined)[] = [];
  private readonly byLower = new Map<string, number>();
  private dirty = false;

  static parse(text: string): KeywordMap {
    const map = new KeywordMap();
    for (const line of text.split('\n')) {
      const sp = line.indexOf(' ');
      if (sp < 0) continue;
      const idxText = line.slice(0, sp);
      const name = line.slice(sp + 1);
      if (!/^[0-9]+$/.test(idxText) || name === '') continue;
      const idx = Number(idxText);
      if (idx >= MAX_KEYWORDS || map.byLower.has(keywordKey(name))) continue;
      map.set(idx, name);
    }
    map.dirty = false;
    return map;
  }

  private set(idx: number, name: string): void {
    const old = this.names[idx];
    if (old !== undefined) this.byLower.delete(keywordKey(old));
    this.names[idx] = name;
    this.byLower.set(keywordKey(name), idx);
    this.dirty = true;
  }

  /** The keyword for slot `idx` (`unknown-<idx>` when the file has no entry). */
  nameOf(idx: number): string {
    return this.names[idx] ?? `unknown-${idx}`;
  }

  /** The slot of `name` (case-insensitive), or undefined. */
  slotOf(name: string): number | undefined {
    return this.byLower.get(keywordKey(name));
  }

  /** Names that would need a new slot. */
  missing(names: Iterable<string>): string[] {
    const out = new Map<string, string>();
    for (const n of names) if (this.slotOf(n) === undefined && !out.has(keywordKey(n))) out.set(keywordKey(n), n);
    return [...out.values()];
  }

  /** Free slots left. */
  freeSlots(): number {
    let used = 0;
    for (let i = 0; i < MAX_KEYWORDS; i++) if (this.names[i] !== undefined) used++;
    return MAX_KEYWORDS - used;
  }

  /** The slot for `name`, allocating the first free one; null when all 26 are taken. */
  slotOrAllocate(name: string): number | null {
    const have = this.slotOf(name);
    if (have !== undefined) return have;
    for (let i = 0; i < MAX_KEYWORDS; i++) {
      if (this.names[i] === undefined) {
        this.set(i, name);
        return i;
      }
    }
    return null;
  }

  get changed(): boolean {
    return this.dirty;
  }

  serialize(): string {
    let s = '';
    this.names.forEach((n, i) => {
      if (n !== undefined) s += `${i} ${n}\n`;
    });
    return s;
  }
}

/** Read `path`; an empty map if it does not exist. Also returns the file's mtime (ms) or null. */
export async function readKeywords(path: string): Promise<{ map: KeywordMap; mtimeMs: number | null }> {
  try {
    const [text, st] = await Promise.all([fs.promises.readFile(path, 'utf8'), fs.promises.stat(path)]);
    return { map: KeywordMap.parse(text), mtimeMs: st.mtimeMs };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { map: new KeywordMap(), mtimeMs: null };
    throw fromSystemError(e, 'read the keywords file', { path });
  }
}

/** A keyword can be written into dovecot-keywords (no LF/CR/NUL, no spaces, not empty). */
export function isStorableKeyword(name: string): boolean {
  return name !== '' && !/[\s\0]/.test(name) && !name.startsWith('\\');
}
