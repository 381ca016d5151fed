/**
 * The JSON text of a message record and of its TOC line, assembled from values serialized once: per
 * mailbox (user, mailbox) or per message (flags, keywords, summary, shared by both texts). The result
 * is byte for byte what JSON.stringify gives for the objects DumpWriter.messageRecord and
 * toc.messageTocEntry build (test/unit/archive/message-json.test.ts compares them): the key order here
 * must follow theirs. Why: with small mail, building those objects (copies of every array and of the
 * summary) and stringifying them twice was one of the larger per-message costs of a backup.
 */
import { firstOfEachKeyword } from './keywords.js';
import type { MessageInput } from './records.js';
import type { MemberSpan } from './toc.js';

/** Characters JSON.stringify escapes in a string ("well-formed" stringify: lone surrogates too; a pair takes the slow path). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * JSON.stringify(s) for a string. Most strings need no escaping, and quoting them directly saves
 * JSON.stringify's fixed cost (a few hundred ns a call, about ten calls a message).
 */
export function jsonString(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

/** JSON of flags and keywords, which come from a small vocabulary (system flags need escaping: "\\Seen"). */
const wordJson = new Map<string, string>();
const MAX_WORDS = 10_000;

function cachedJsonString(s: string): string {
  let json = wordJson.get(s);
  if (json === undefined) {
    json = JSON.stringify(s);
    if (wordJson.size >= MAX_WORDS) wordJson.clear();
    wordJson.set(s, json);
  }
  return json;
}

/** JSON.stringify(value) of a string array (anything else, and undefined elements, go the slow way). */
function stringArrayJson(value: readonly string[]): string | undefined {
  if (!Array.isArray(value)) return JSON.stringify(value) as string | undefined;
  if (value.length === 0) return '[]';
  let out = '[';
  for (let i = 0; i < value.length; i++) {
    const v: unknown = value[i];
    if (typeof v !== 'string') return JSON.stringify(value);
    out += i === 0 ? cachedJsonString(v) : `,${cachedJsonString(v)}`;
  }
  return `${out}]`;
}

/** JSON.stringify(value) for a field typed string | null (undefined for undefined, as JSON.stringify). */
function nullableJson(value: string | null): string | undefined {
  if (value === null) return 'null';
  return typeof value === 'string' ? jsonString(value) : (JSON.stringify(value) as string | undefined);
}

/** JSON texts of a message's record fields that do not depend on where it is written. */
export interface MessageJsonParts {
  readonly user: string;
  readonly mailbox: string;
  readonly uid: number;
  readonly guid: string;
  readonly flags: string;
  readonly keywords: string;
  readonly internalDate: string;
  readonly saveDate: string;
  readonly modseq: string;
  readonly size: number;
  readonly summary: string;
  readonly extra: string;
}

/**
 * The parts of `input`, given the JSON of its user and mailbox and the summary (already cut to the
 * record's limits) and extra (keys sorted) as the record holds them. Null when a field is not a JSON
 * value (undefined): JSON.stringify would then leave its key out, which only the object path reproduces.
 */
export function messageJsonParts(
  input: MessageInput,
  userJson: string,
  mailboxJson: string,
  summary: { from: string; subject: string; messageId: string; date: string },
  extra: Readonly<Record<string, string>>,
): MessageJsonParts | null {
  const guid = nullableJson(input.guid);
  const flags = stringArrayJson(input.flags);
  const keywords = stringArrayJson(firstOfEachKeyword(input.keywords));
  const internalDate = nullableJson(input.internalDate);
  const saveDate = nullableJson(input.saveDate);
  const modseq = nullableJson(input.modseq);
  const { from, subject, messageId, date } = summary;
  const summaryJson =
    typeof from === 'string' && typeof subject === 'string' && typeof messageId === 'string' && typeof date === 'string'
      ? `{"from":${jsonString(from)},"subject":${jsonString(subject)},"messageId":${jsonString(messageId)},"date":${jsonString(date)}}`
      : JSON.stringify({ from, subject, messageId, date });
  let extraJson = '{}';
  for (const _key in extra) {
    extraJson = JSON.stringify(extra);
    break;
  }
  if (guid === undefined || flags === undefined || keywords === undefined || internalDate === undefined || saveDate === undefined || modseq === undefined) return null;
  return { user: userJson, mailbox: mailboxJson, uid: input.uid, guid, flags, keywords, internalDate, saveDate, modseq, size: input.size, summary: summaryJson, extra: extraJson };
}

/** JSON.stringify of DumpWriter.messageRecord(input, sha256). `uid` and `size` are checked integers. */
export function messageRecordJson(p: MessageJsonParts, sha256: string): string {
  return `{"type":"message","user":${p.user},"mailbox":${p.mailbox},"uid":${p.uid},"guid":${p.guid},"flags":${p.flags},"keywords":${p.keywords},"internalDate":${p.internalDate},"saveDate":${p.saveDate},"modseq":${p.modseq},"size":${p.size},"sha256":"${sha256}","summary":${p.summary},"extra":${p.extra}}`;
}

/** tocLine(messageTocEntry(id, body, record, message)) for the message whose parts are `p`. */
export function messageTocLineJson(id: number, body: MemberSpan, record: MemberSpan, p: MessageJsonParts): string {
  return `{"id":${id},"member":${jsonString(body.member)},"type":"message","offset":${body.offset},"dataOffset":${body.dataOffset},"size":${body.size},"sha256":"${body.sha256}","recordOffset":${record.offset},"recordDataOffset":${record.dataOffset},"recordSize":${record.size},"recordSha256":"${record.sha256}","user":${p.user},"mailbox":${p.mailbox},"uid":${p.uid},"flags":${p.flags},"keywords":${p.keywords},"internalDate":${p.internalDate},"summary":${p.summary}}\n`;
}
