/**
 * Keywords in records (formats/dump-v1.md 5.5): two keywords equal but for the case of ASCII letters
 * (A-Z, a-z; nothing else folds: "Ärger" and "ärger" are two) are one keyword, as IMAP and Dovecot
 * compare them. A writer keeps the first of such a group and a reader that meets two keeps the first
 * listed. (The storage side has the same rule in storage/flags.ts keywordKey; archive and storage do
 * not import each other.)
 */

/** The keyword with ASCII letters lowercased: equal keys, one keyword. */
function asciiFolded(keyword: string): string {
  return /[A-Z]/.test(keyword) ? keyword.replace(/[A-Z]+/g, (s) => s.toLowerCase()) : keyword;
}

/** `keywords` without the later members of each group equal but for ASCII case; the same array when there are none. */
export function firstOfEachKeyword<T extends readonly string[]>(keywords: T): T | string[] {
  if (keywords.length < 2) return keywords;
  const seen = new Set<string>();
  let dropped = false;
  const kept = keywords.filter((k) => {
    const key = asciiFolded(k);
    if (seen.has(key)) {
      dropped = true;
      return false;
    }
    seen.add(key);
    return true;
  });
  return dropped ? kept : keywords;
}
