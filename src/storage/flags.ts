/** Canonical forms of IMAP flags and keywords, shared by every driver and the operations layer. */
import { SYSTEM_FLAGS, type SystemFlag } from './types.js';

const SYSTEM_BY_LOWER = new Map(SYSTEM_FLAGS.map((f) => [f.toLowerCase(), f]));

/**
 * The form under which Dovecot tells keywords apart: ASCII letters folded to lower case, every other
 * character as it is (its keyword tables hash and compare with strcase_hash and strcasecmp in the C
 * locale, so "Ä" and "ä" are two keywords and "Foo" and "foo" one).
 */
export function keywordKey(name: string): string {
  return /[A-Z]/.test(name) ? name.replace(/[A-Z]+/g, (c) => c.toLowerCase()) : name;
}

/** True if `flag` is one of the five system flags (case-insensitive, as IMAP says). */
export function isSystemFlag(flag: string): boolean {
  return SYSTEM_BY_LOWER.has(flag.toLowerCase());
}

/** System flags in canonical spelling and order, without duplicates; \Recent and unknown ones dropped. */
export function normalizeFlags(flags: Iterable<string>): SystemFlag[] {
  const set = new Set<SystemFlag>();
  for (const f of flags) {
    const canon = SYSTEM_BY_LOWER.get(f.toLowerCase());
    if (canon) set.add(canon);
  }
  return SYSTEM_FLAGS.filter((f) => set.has(f));
}

/** Keywords sorted by code point, without duplicates (IMAP keywords are case-insensitive on lookup in
 * Dovecot, so variants in ASCII case are collapsed to the first seen: keywordKey). */
export function normalizeKeywords(keywords: Iterable<string>): string[] {
  const seen = new Map<string, string>();
  for (const k of keywords) {
    if (k === '' || k.startsWith('\\')) continue;
    const key = keywordKey(k);
    if (!seen.has(key)) seen.set(key, k);
  }
  return [...seen.values()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Split a mixed IMAP flag list into system flags and keywords. */
export function splitFlags(all: Iterable<string>): { flags: SystemFlag[]; keywords: string[] } {
  const list = [...all].filter((f) => f.toLowerCase() !== '\\recent');
  return { flags: normalizeFlags(list.filter(isSystemFlag)), keywords: normalizeKeywords(list.filter((f) => !f.startsWith('\\'))) };
}
