/**
 * Shape checks for decoded JSON records: every field a v1 reader relies on must be present with its type.
 * Unknown keys are kept out of the returned record (forward-compatible additions are ignored).
 */
import { firstOfEachKeyword } from './keywords.js';
import { ArchiveCorruptError, ArchiveVersionError } from '../core/errors.js';
import { isUidSet } from './uid-set.js';
import {
  FORMAT_NAME,
  FORMAT_VERSION_HASHED_CONTENT,
  FORMAT_VERSION_INCREMENTAL,
  FORMAT_VERSION_MAX_READ,
  HASHED_CONTENT_DIGEST,
  PLAIN_DIGEST,
  FORMAT_VERSION_PARTS,
  type FlagTableRecord,
  type HeaderRecord,
  type MailboxRecord,
  type MessageRecord,
  type TrailerRecord,
  type UserRecord,
} from './records.js';

type Obj = Record<string, unknown>;
type Check = (v: unknown) => boolean;

const str: Check = (v) => typeof v === 'string';
const strOrNull: Check = (v) => v === null || typeof v === 'string';
const bool: Check = (v) => typeof v === 'boolean';
const count: Check = (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const uid32: Check = (v) => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 0xffffffff;
const u32: Check = (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
const hex64: Check = (v) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
const strArray: Check = (v) => Array.isArray(v) && v.every((x) => typeof x === 'string');
const obj: Check = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const strMap: Check = (v) => obj(v) && Object.values(v as Obj).every((x) => typeof x === 'string');

function pick(o: Obj, spec: Record<string, Check>, member: string, offset: number): Obj {
  const out: Obj = {};
  for (const [key, check] of Object.entries(spec)) {
    if (!(key in o) || !check(o[key])) {
      throw new ArchiveCorruptError(`archive corrupt: record "${member}" at offset ${offset}: field "${key}" is missing or of the wrong type`, {
        member,
        offset,
        hint: 'the dump was damaged or written by a broken writer: check it with "mailvault verify"',
      });
    }
    out[key] = o[key];
  }
  return out;
}

function expectType(o: Obj, type: string, member: string, offset: number): void {
  if (o['type'] !== type) {
    throw new ArchiveCorruptError(`archive corrupt: record "${member}" at offset ${offset}: type is ${JSON.stringify(o['type'])}, expected "${type}"`, {
      member,
      offset,
      hint: 'the dump was damaged: check it with "mailvault verify"',
    });
  }
}

/** Format name and version: checked before anything else in the header (a newer version may change the rest). */
export function checkFormatVersion(o: Obj, member: string, offset: number): number {
  if (o['format'] !== FORMAT_NAME) {
    throw new ArchiveCorruptError(`archive corrupt: "${member}" at offset ${offset}: format is ${JSON.stringify(o['format'])}, not "${FORMAT_NAME}": this is not a mailvault dump`, {
      member,
      offset,
    });
  }
  const version = o['version'];
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) {
    throw new ArchiveCorruptError(`archive corrupt: "${member}" at offset ${offset}: version ${JSON.stringify(version)} is not a positive integer`, { member, offset });
  }
  if (version > FORMAT_VERSION_MAX_READ) {
    throw new ArchiveVersionError(
      `dump written by a newer mailvault (format ${version}); this one reads up to ${FORMAT_VERSION_MAX_READ}: upgrade mailvault`,
      { member, offset, hint: 'install a newer mailvault to read this dump' },
    );
  }
  return version;
}

export function validateHeader(o: Obj, member: string, offset: number): HeaderRecord {
  expectType(o, 'header', member, offset);
  checkFormatVersion(o, member, offset);
  const r = pick(o, { type: str, format: str, version: count, creator: str, created: str, runId: str, kind: (v) => v === 'full' || v === 'incremental', base: (v) => v === null || obj(v), source: obj, options: obj }, member, offset);
  if (r['base'] !== null) r['base'] = pick(r['base'] as Obj, { runId: str, created: str }, member, offset);
  r['source'] = pick(r['source'] as Obj, { driver: str, location: str, host: str }, member, offset);
  // Section 5.2 and 13: a full dump has no base; an incremental names the run it follows (runId
  // "none" for one by plain time) and exists from version 3 on. mailvault never wrote otherwise.
  const why =
    r['kind'] === 'full' && r['base'] !== null ? 'a full dump with a base'
    : r['kind'] === 'incremental' && r['base'] === null ? 'an incremental without a base (the run it follows)'
    : r['kind'] === 'incremental' && (r['version'] as number) < FORMAT_VERSION_INCREMENTAL ? `an incremental of format version ${r['version'] as number} (incrementals exist from version ${FORMAT_VERSION_INCREMENTAL})`
    : null;
  if (why !== null) {
    throw new ArchiveCorruptError(`archive corrupt: record "${member}" at offset ${offset}: the header describes ${why}`, {
      member,
      offset,
      hint: 'the dump was damaged or written by a broken writer: check it with "mailvault verify"',
    });
  }
  return r as unknown as HeaderRecord;
}

export function validateUser(o: Obj, member: string, offset: number): UserRecord {
  expectType(o, 'user', member, offset);
  return pick(o, { type: str, user: str, subscriptions: strArray }, member, offset) as unknown as UserRecord;
}

export function validateMailbox(o: Obj, member: string, offset: number): MailboxRecord {
  expectType(o, 'mailbox', member, offset);
  const r = pick(o, {
    type: str, user: str, name: str, guid: strOrNull, uidValidity: u32, uidNext: count, highestModseq: strOrNull,
    messageCount: count, specialUse: strArray, subscribed: bool, selectable: bool, metadata: strMap, acl: strMap,
  }, member, offset);
  // Additions (formats/dump-v1.md 5.4): kept when present; a reader before them ignores them.
  if ('uidSet' in o) {
    const v = pick(o, { uidSet: str }, member, offset)['uidSet'] as string;
    if (!isUidSet(v)) {
      const shown = v.length > 80 ? `${v.slice(0, 80)}...` : v;
      throw new ArchiveCorruptError(
        `archive corrupt: record "${member}" at offset ${offset}: field "uidSet" ${JSON.stringify(shown)} is not a UID set in the dump's form (ascending ranges "a" or "a:b" with a < b, separated by commas, none touching or overlapping the one before, UIDs 1 to 4294967295)`,
        { member, offset, hint: 'the dump was damaged or written by a broken writer: check it with "mailvault verify"' },
      );
    }
    r['uidSet'] = v;
  }
  if ('reset' in o) r['reset'] = pick(o, { reset: bool }, member, offset)['reset'];
  return r as unknown as MailboxRecord;
}

const flagEntry: Check = (v) => obj(v) && uid32((v as Obj)['uid']) && strArray((v as Obj)['flags']) && strArray((v as Obj)['keywords']);

/** Version 3: a flag table; UIDs ascend within it. */
export function validateFlagTable(o: Obj, member: string, offset: number): FlagTableRecord {
  expectType(o, 'flags', member, offset);
  const r = pick(o, { type: str, user: str, mailbox: str, seq: uid32, entries: (v) => Array.isArray(v) && v.every(flagEntry) }, member, offset);
  const entries = (r['entries'] as Obj[]).map((e) => ({ uid: e['uid'] as number, flags: e['flags'] as string[], keywords: firstOfEachKeyword(e['keywords'] as string[]) }));
  for (let i = 1; i < entries.length; i++) {
    if (entries[i]!.uid <= entries[i - 1]!.uid) {
      throw new ArchiveCorruptError(`archive corrupt: record "${member}" at offset ${offset}: UID ${entries[i]!.uid} follows UID ${entries[i - 1]!.uid}; flag-table UIDs must ascend`, { member, offset, hint: 'the dump was damaged: check it with "mailvault verify"' });
    }
  }
  r['entries'] = entries;
  return r as unknown as FlagTableRecord;
}

/**
 * A message record. From format version 2 on, `stub` and `parts` are kept when present (checked in
 * detail by parts.ts validateParts); in version 1 they are unknown keys and dropped.
 */
export function validateMessage(o: Obj, member: string, offset: number, version: number): MessageRecord {
  expectType(o, 'message', member, offset);
  const r = pick(o, {
    type: str, user: str, mailbox: str, uid: uid32, guid: strOrNull, flags: strArray, keywords: strArray, internalDate: str,
    saveDate: strOrNull, modseq: strOrNull, size: count, sha256: hex64, summary: obj, extra: strMap,
  }, member, offset);
  r['summary'] = pick(r['summary'] as Obj, { from: str, subject: str, messageId: str, date: str }, member, offset);
  r['keywords'] = firstOfEachKeyword(r['keywords'] as string[]);
  if (version >= FORMAT_VERSION_PARTS) {
    if ('stub' in o) r['stub'] = o['stub'];
    if ('parts' in o) r['parts'] = o['parts'];
  }
  return r as unknown as MessageRecord;
}

export function validateTrailer(o: Obj, member: string, offset: number): TrailerRecord {
  expectType(o, 'trailer', member, offset);
  checkFormatVersion(o, member, offset);
  const r = pick(o, { type: str, format: str, version: count, runId: str, completed: str, counts: obj, toc: obj, digest: obj, complete: (v) => v === true }, member, offset);
  r['counts'] = pick(r['counts'] as Obj, { users: count, mailboxes: count, messages: count, blobs: count, messageBytes: count }, member, offset);
  r['toc'] = pick(r['toc'] as Obj, { offset: count, dataOffset: count, size: count, sha256: hex64 }, member, offset);
  // The algorithm follows from the version (section 5.6): a reader hashes the stream as the header's version says.
  const algorithm = (r['version'] as number) >= FORMAT_VERSION_HASHED_CONTENT ? HASHED_CONTENT_DIGEST : PLAIN_DIGEST;
  r['digest'] = pick(r['digest'] as Obj, { algorithm: str, value: hex64 }, member, offset);
  const named = (r['digest'] as Obj)['algorithm'];
  if (named !== algorithm) {
    throw new ArchiveCorruptError(`archive corrupt: record "${member}" at offset ${offset}: digest algorithm "${String(named)}", but format version ${String(r['version'])} uses "${algorithm}"`, {
      member,
      offset,
      hint: 'the dump was damaged or written by a broken writer: check it with "mailvault verify"',
    });
  }
  return r as unknown as TrailerRecord;
}
