/**
 * Keywords a Maildir message has only in Dovecot's mailbox index. A Maildir file name holds keywords as
 * the letters a..z, each named in dovecot-keywords; a keyword Dovecot could not give a letter (all 26
 * taken, or the uidlist not locked when it was first set: maildir-keywords.c
 * maildir_keywords_lookup_or_create) lives only in `dovecot.index` and its log. Dovecot's sync keeps
 * those "index-only" keywords as they are and takes the others from the file name
 * (maildir-sync-index.c maildir_sync_mail_keywords), so what IMAP serves is the file name's keywords
 * plus the index-only ones; so is what a backup takes.
 *
 * An index of another UIDVALIDITY than the uidlist's describes other messages (Dovecot resets it) and
 * is not used. An index that cannot be read is reported as a warning: the messages are all there, but
 * keywords kept only in it are not known.
 */
import path from 'node:path';
import { readDovecotIndex } from '../dovecot-index/index.js';
import type { KeywordMap } from './keywords.js';

export interface IndexKeywords {
  /** Index-only keywords by UID (messages that have none are absent). */
  readonly byUid: ReadonlyMap<number, readonly string[]>;
  /** Set when the index exists but could not be read. */
  readonly warning?: string;
}

export const NO_INDEX_KEYWORDS: IndexKeywords = { byUid: new Map() };

/**
 * Index-only keywords of the mailbox whose index is in `indexDir` (null: INDEX=MEMORY, none), for the
 * uidlist's `uidValidity`, given the letters of its dovecot-keywords file.
 */
export async function readIndexKeywords(indexDir: string | null, uidValidity: number, letters: KeywordMap): Promise<IndexKeywords> {
  if (indexDir === null) return NO_INDEX_KEYWORDS;
  let snapshot: Awaited<ReturnType<typeof readDovecotIndex>>;
  try {
    snapshot = await readDovecotIndex(indexDir);
  } catch (e) {
    return {
      byUid: new Map(),
      warning: `its Dovecot index in ${path.join(indexDir, 'dovecot.index')} could not be read (${e instanceof Error ? e.message : String(e)}): keywords Dovecot keeps only there (those without a letter in dovecot-keywords, such as a 27th) are not in the backup. Open the mailbox in Dovecot (or run "doveadm force-resync") to have it check the index, then back up again`,
    };
  }
  if (snapshot === null || snapshot.uidValidity !== uidValidity) return NO_INDEX_KEYWORDS;
  let byUid: Map<number, readonly string[]> | null = null;
  for (const m of snapshot.messages) {
    if (m.keywords.length === 0) continue;
    let only: string[] | null = null;
    for (const k of m.keywords) if (letters.slotOf(k) === undefined) (only ??= []).push(k);
    if (only !== null) (byUid ??= new Map()).set(m.uid, only);
  }
  return byUid === null ? NO_INDEX_KEYWORDS : { byUid };
}
