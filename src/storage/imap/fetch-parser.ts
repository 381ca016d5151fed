/**
 * Parsing of raw untagged FETCH responses (as imapflow's parser delivers them) into MessageInfo.
 * The driver sends its own UID FETCH so that it can ask for items imapflow's fetch() does not know:
 * Dovecot's X-GUID and SAVEDATE (RFC 8514).
 */
import { splitFlags } from '../flags.js';
import type { MessageInfo } from '../types.js';

/** A node of imapflow's parsed response (ATOM, STRING, LITERAL, lists as arrays, NIL as null). */
export type ImapNode = { type?: string; value?: unknown } | ImapNode[] | null;

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** "13-Sep-2020 12:26:40 +0200" (IMAP date-time) -> Unix seconds; null if malformed. */
export function parseImapDateTime(text: string): number | null {
  const m = /^\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})\s*$/.exec(text);
  if (!m) return null;
  const month = MONTHS.indexOf(m[2]!.toLowerCase());
  if (month < 0) return null;
  const utc = Date.UTC(Number(m[3]), month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6])) / 1000;
  const offset = (Number(m[8]) * 60 + Number(m[9])) * 60 * (m[7] === '-' ? -1 : 1);
  return utc - offset;
}

function text(node: ImapNode | undefined): string | null {
  if (node === null || node === undefined || Array.isArray(node)) return null;
  const v = node.value;
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return null;
}

/** Key/value pairs of an untagged FETCH: `* 12 FETCH (UID 5 FLAGS (...) ...)`. */
export function fetchItems(attributes: readonly ImapNode[]): Map<string, ImapNode> {
  const items = new Map<string, ImapNode>();
  const list = attributes.find((a) => Array.isArray(a));
  if (!Array.isArray(list)) return items;
  for (let i = 0; i + 1 < list.length; i += 2) {
    const key = text(list[i]);
    if (key !== null) items.set(key.toUpperCase(), list[i + 1] ?? null);
  }
  return items;
}

export class FetchParseError extends Error {}

/**
 * MessageInfo from the items of one FETCH row. Requires UID, FLAGS, INTERNALDATE and RFC822.SIZE;
 * MODSEQ, X-GUID and SAVEDATE are read where present.
 */
export function parseMessageInfo(items: Map<string, ImapNode>): MessageInfo {
  const uid = Number(text(items.get('UID')));
  if (!Number.isSafeInteger(uid) || uid <= 0) throw new FetchParseError(`FETCH row without a valid UID`);
  const flagsNode = items.get('FLAGS');
  if (!Array.isArray(flagsNode)) throw new FetchParseError(`FETCH row for UID ${uid} without FLAGS`);
  const all = flagsNode.map((f) => text(f)).filter((f): f is string => f !== null);
  const { flags, keywords } = splitFlags(all);
  const dateText = text(items.get('INTERNALDATE'));
  const internalDate = dateText === null ? null : parseImapDateTime(dateText);
  if (internalDate === null) throw new FetchParseError(`FETCH row for UID ${uid} without a valid INTERNALDATE ("${dateText}")`);
  const size = Number(text(items.get('RFC822.SIZE')));
  if (!Number.isSafeInteger(size) || size < 0) throw new FetchParseError(`FETCH row for UID ${uid} without a valid RFC822.SIZE`);
  const modseqNode = items.get('MODSEQ');
  const modseq = Array.isArray(modseqNode) ? text(modseqNode[0]) : null;
  const guid = text(items.get('X-GUID'));
  const saveDateText = text(items.get('SAVEDATE'));
  const saveDate = saveDateText === null ? null : parseImapDateTime(saveDateText);
  return { uid, guid: guid && guid !== '' ? guid : null, flags, keywords, internalDate, saveDate, size, modseq: modseq && /^\d+$/.test(modseq) ? modseq : null };
}

/** Compresses ascending UIDs into an IMAP sequence set ("1:3,7,9:10"). */
export function uidSet(uids: readonly number[]): string {
  const parts: string[] = [];
  let start = -1;
  let prev = -1;
  for (const u of uids) {
    if (start < 0) {
      start = prev = u;
    } else if (u === prev + 1) {
      prev = u;
    } else {
      parts.push(start === prev ? `${start}` : `${start}:${prev}`);
      start = prev = u;
    }
  }
  if (start >= 0) parts.push(start === prev ? `${start}` : `${start}:${prev}`);
  return parts.join(',');
}
