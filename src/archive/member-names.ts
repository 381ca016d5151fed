/**
 * Member names of a dump (spec: formats/dump-v1.md, "Member names"): building them from user, mailbox
 * and UID, and parsing them back. A parsed name is only ever compared with records, never used as a path.
 */
import { ArchiveCorruptError, UsageError } from '../core/errors.js';

export const HEADER_MEMBER = 'mailvault/header.json';
export const TOC_MEMBER = 'mailvault/toc.jsonl';
export const TRAILER_MEMBER = 'mailvault/trailer.json';

type SegmentKind = 'user' | 'mailbox';

function mustEncode(byte: number, kind: SegmentKind, index: number): boolean {
  if (byte < 0x20 || byte === 0x7f) return true;
  if (byte === 0x25 /* % */ || byte === 0x2f /* / */ || byte === 0x5c /* \ */) return true;
  if (byte === 0x2e /* . */) return kind === 'mailbox' || index === 0;
  return false;
}

/** Percent-encode one name segment. Throws UsageError for an empty segment. */
export function encodeSegment(segment: string, kind: SegmentKind, whole: string): string {
  if (segment.length === 0) {
    throw new UsageError(`cannot write ${kind} "${whole}" to a dump: its name has an empty part`, {
      hint: kind === 'mailbox' ? 'a mailbox name cannot contain "//" or start or end with "/"' : 'a user name cannot be empty',
    });
  }
  const bytes = Buffer.from(segment, 'utf8');
  let out = '';
  let plainStart = -1;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    if (mustEncode(byte, kind, i)) {
      if (plainStart >= 0) {
        out += bytes.subarray(plainStart, i).toString('utf8');
        plainStart = -1;
      }
      out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    } else if (plainStart < 0) {
      plainStart = i;
    }
  }
  if (plainStart >= 0) out += bytes.subarray(plainStart).toString('utf8');
  return out;
}

function encodeUser(user: string): string {
  return encodeSegment(user, 'user', user);
}

function encodeMailbox(mailbox: string): string {
  return mailbox
    .split('/')
    .map((segment) => encodeSegment(segment, 'mailbox', mailbox))
    .join('/');
}

export function userMember(user: string): string {
  return `users/${encodeUser(user)}/user.json`;
}

export function mailboxDir(user: string, mailbox: string): string {
  return `users/${encodeUser(user)}/mailboxes/${encodeMailbox(mailbox)}`;
}

export function mailboxMember(user: string, mailbox: string): string {
  return `${mailboxDir(user, mailbox)}/mailbox.json`;
}

/** `body`: the whole message (`.eml`); `stub`: its inline bytes when stored as parts (version 2); `record`: `.json`. */
export function messageMembers(user: string, mailbox: string, uid: number): { body: string; stub: string; record: string } {
  return messageMembersIn(mailboxDir(user, mailbox), uid);
}

/** messageMembers for a mailbox whose mailboxDir() the caller already has (the writer keeps the current one). */
export function messageMembersIn(dir: string, uid: number): { body: string; stub: string; record: string } {
  return { body: `${dir}/${uid}.eml`, stub: `${dir}/${uid}.stub`, record: `${dir}/${uid}.json` };
}

/** Version 3: the n-th flag table of a mailbox. A mailbox segment never holds a raw ".", so this cannot be a mailbox. */
export function flagTableMember(user: string, mailbox: string, seq: number): string {
  return `${mailboxDir(user, mailbox)}/flags.${seq}.json`;
}

export function blobMember(sha256: string): string {
  return `blobs/${sha256.slice(0, 2)}/${sha256}`;
}

/** A member name, parsed. */
export type ParsedMember =
  | { kind: 'header' | 'toc' | 'trailer' }
  | { kind: 'user'; user: string }
  | { kind: 'mailbox'; user: string; mailbox: string }
  | { kind: 'flags'; user: string; mailbox: string; seq: number }
  | { kind: 'body' | 'stub' | 'record'; user: string; mailbox: string; uid: number }
  | { kind: 'blob'; sha256: string };

const UID = /^([1-9][0-9]{0,9})\.(eml|stub|json)$/;
const FLAGS = /^flags\.([1-9][0-9]{0,9})\.json$/;
const BLOB = /^blobs\/([0-9a-f]{2})\/([0-9a-f]{64})$/;

/** Decode one segment; null if it is not in canonical encoded form. */
function decodeSegment(segment: string, kind: SegmentKind): string | null {
  if (segment.length === 0) return null;
  const bytes: number[] = [];
  const raw = Buffer.from(segment, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    const byte = raw[i]!;
    if (byte === 0x25) {
      const hex = raw.subarray(i + 1, i + 3).toString('latin1');
      if (!/^[0-9A-F]{2}$/.test(hex)) return null;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(byte);
    }
  }
  const decoded = Buffer.from(bytes).toString('utf8');
  if (!Buffer.from(decoded, 'utf8').equals(Buffer.from(bytes))) return null;
  // A mailbox name is split at every "/", so no mailbox segment holds one: "G%2Fx" would be a second
  // spelling of mailbox "G/x" (stored as "G/x/").
  if (kind === 'mailbox' && decoded.includes('/')) return null;
  // Canonical: re-encoding gives the same text (so "..", "." and raw "/" or "%" cannot appear).
  return encodeSegment(decoded, kind, decoded) === segment ? decoded : null;
}

/**
 * Parse a member name against the grammar. Throws ArchiveCorruptError (naming the member and `offset`)
 * for anything else: absolute paths, "..", unknown top-level or mailvault/ names, non-canonical encoding.
 */
export function parseMemberName(name: string, offset: number): ParsedMember {
  const fail = (why: string): ArchiveCorruptError =>
    new ArchiveCorruptError(`archive corrupt: member "${name}" at offset ${offset}: ${why}`, {
      member: name,
      offset,
      hint: 'this is not a member a mailvault dump holds: the dump was damaged or is not a mailvault dump; check it with "mailvault verify"',
    });
  if (name.startsWith('/')) throw fail('absolute member names are not allowed');
  const parts = name.split('/');
  if (parts.some((p) => p === '..' || p === '.' || p === '')) throw fail('"." , ".." and empty path components are not allowed');
  if (name === HEADER_MEMBER) return { kind: 'header' };
  if (name === TOC_MEMBER) return { kind: 'toc' };
  if (name === TRAILER_MEMBER) return { kind: 'trailer' };
  if (parts[0] === 'blobs') {
    const m = BLOB.exec(name);
    if (!m || m[1] !== m[2]!.slice(0, 2)) throw fail('a blob member must be named blobs/<first 2 hex>/<sha256>');
    return { kind: 'blob', sha256: m[2]! };
  }
  if (parts[0] !== 'users') throw fail('unknown member (expected mailvault/..., users/... or blobs/...)');
  if (parts.length < 3) throw fail('unknown member under users/');
  const user = decodeSegment(parts[1]!, 'user');
  if (user === null) throw fail('the user name is not percent-encoded as the format requires');
  if (parts.length === 3 && parts[2] === 'user.json') return { kind: 'user', user };
  if (parts[2] !== 'mailboxes' || parts.length < 5) throw fail('unknown member under users/');
  const last = parts[parts.length - 1]!;
  const segments = parts.slice(3, -1);
  const decoded: string[] = [];
  for (const segment of segments) {
    const d = decodeSegment(segment, 'mailbox');
    if (d === null) throw fail('a mailbox name segment is not percent-encoded as the format requires');
    decoded.push(d);
  }
  const mailbox = decoded.join('/');
  if (last === 'mailbox.json') return { kind: 'mailbox', user, mailbox };
  const f = FLAGS.exec(last);
  if (f) return { kind: 'flags', user, mailbox, seq: Number(f[1]) };
  const m = UID.exec(last);
  if (!m) throw fail('unknown member in a mailbox (expected mailbox.json, flags.<n>.json, <uid>.eml, <uid>.stub or <uid>.json)');
  const uid = Number(m[1]);
  if (uid > 0xffffffff) throw fail('UID out of range');
  return { kind: m[2] === 'eml' ? 'body' : m[2] === 'stub' ? 'stub' : 'record', user, mailbox, uid };
}
