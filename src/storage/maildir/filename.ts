/**
 * Maildir file names as Dovecot writes and reads them (maildir-filename.c, maildir-filename-flags.c):
 *
 *   filename = base [ ":2," flags [ "," other-flag-set ] ]
 *   base     = <secs> ".M" <usecs> "P" <pid> "." <host> [ ",S=" dec ] [ ",W=" dec ]
 *
 * The base is everything up to the FIRST ":"; the info is everything after the LAST ":".
 * Flag letters D F R S T are system flags, a..z keyword slots (dovecot-keywords), anything else is
 * kept untouched by Dovecot and ignored here.
 */
import os from 'node:os';
import { UnexpectedError } from '../../core/errors.js';
import type { SystemFlag } from '../types.js';

const LETTER_TO_FLAG: Readonly<Record<string, SystemFlag>> = {
  D: '\\Draft',
  F: '\\Flagged',
  R: '\\Answered',
  S: '\\Seen',
  T: '\\Deleted',
};
const FLAG_TO_LETTER: Readonly<Record<SystemFlag, string>> = {
  '\\Draft': 'D',
  '\\Flagged': 'F',
  '\\Answered': 'R',
  '\\Seen': 'S',
  '\\Deleted': 'T',
};
/** Canonical order of SYSTEM_FLAGS (types.ts). */
const FLAG_ORDER: readonly SystemFlag[] = ['\\Answered', '\\Deleted', '\\Draft', '\\Flagged', '\\Seen'];

/**
 * True if a name in new/ or cur/ may be a message file: not hidden (".") or info-only (":"), and no CR
 * or LF (a uidlist line could not name it).
 */
export function isMessageFileName(name: string): boolean {
  const c = name.charCodeAt(0);
  return c !== 0x2e /* . */ && c !== 0x3a /* : */ && !name.includes('\n') && !name.includes('\r');
}

/** Everything up to the first ":" (Dovecot matches files to uidlist records by this). */
export function baseName(filename: string): string {
  const colon = filename.indexOf(':');
  return colon < 0 ? filename : filename.slice(0, colon);
}

/** The value of `,S=` or `,W=` in a file name, or null (maildir_filename_get_size). */
export function filenameSize(filename: string, type: 'S' | 'W'): number | null {
  const needle = `,${type}=`;
  const at = filename.indexOf(needle);
  if (at < 0) return null;
  let i = at + needle.length;
  let digits = '';
  while (i < filename.length && filename[i]! >= '0' && filename[i]! <= '9') digits += filename[i++];
  if (digits === '') return null;
  const next = filename[i];
  if (next !== undefined && next !== ':' && next !== ',') return null;
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : null;
}

export interface ParsedInfo {
  readonly flags: SystemFlag[];
  /** Keyword slot indexes (letter - 'a'), ascending, no duplicates. */
  readonly keywordSlots: number[];
}

/** System flags and keyword slots from the `:2,` info of a file name. */
export function parseInfo(filename: string): ParsedInfo {
  const colon = filename.lastIndexOf(':');
  const flags = new Set<SystemFlag>();
  const slots = new Set<number>();
  if (colon >= 0 && filename.startsWith('2,', colon + 1)) {
    for (let i = colon + 3; i < filename.length; i++) {
      const c = filename[i]!;
      if (c === ',') break;
      const flag = LETTER_TO_FLAG[c];
      if (flag) flags.add(flag);
      else if (c >= 'a' && c <= 'z') slots.add(c.charCodeAt(0) - 97);
    }
  }
  return { flags: FLAG_ORDER.filter((f) => flags.has(f)), keywordSlots: [...slots].sort((a, b) => a - b) };
}

/** The `:2,` info for flags and keyword slots, letters in ASCII order; "" when there are none. */
export function formatInfo(flags: readonly SystemFlag[], keywordSlots: readonly number[]): string {
  const letters = new Set<string>();
  for (const f of flags) {
    const l = FLAG_TO_LETTER[f];
    if (l) letters.add(l);
  }
  for (const s of keywordSlots) {
    if (!Number.isInteger(s) || s < 0 || s > 25) throw new UnexpectedError(`keyword slot ${s} is outside a..z`);
    letters.add(String.fromCharCode(97 + s));
  }
  if (letters.size === 0) return '';
  return ':2,' + [...letters].sort().join('');
}

/** Host name made safe for a file name: "/" ":" "," escaped as \057 \072 \054 (the Maildir convention). */
export function filenameHost(hostname: string): string {
  return hostname.replaceAll('/', '\\057').replaceAll(':', '\\072').replaceAll(',', '\\054').replace(/[\r\n\t]/g, '_');
}

let lastSecs = 0;
let lastUsecs = 0;

/**
 * A new unique base `<secs>.M<usecs>P<pid>.<host>` like maildir_filename_generate(): the (secs, usecs)
 * pair only increases within this process, so two calls never collide.
 */
export function generateBase(hostname: string = os.hostname(), now: number = Date.now()): string {
  let secs = Math.floor(now / 1000);
  let usecs = (now % 1000) * 1000;
  if (secs < lastSecs || (secs === lastSecs && usecs <= lastUsecs)) {
    secs = lastSecs;
    usecs = lastUsecs + 1;
    if (usecs === 1_000_000) {
      secs++;
      usecs = 0;
    }
  }
  lastSecs = secs;
  lastUsecs = usecs;
  return `${secs}.M${usecs}P${process.pid}.${filenameHost(hostname)}`;
}
