/**
 * A user's canonical state as Dovecot serves it: every mailbox from LIST (\NoSelect included), with
 * UIDVALIDITY, UIDNEXT, subscription and mailbox GUID, and per message UID, GUID, flags, keywords,
 * INTERNALDATE, RFC822.SIZE and the sha256 of the bytes IMAP serves (BODY.PEEK[], CRLF line ends).
 * A plain JSON object: `t.deepEqual(await fingerprintUser(dv, a), await fingerprintUser(dv, b))`.
 *
 * GUIDs come from `doveadm fetch 'uid guid'`, the mailbox GUID from `doveadm mailbox status guid`
 * (asking for guid makes Dovecot sync the mailbox, see dovecot-storage.md 1.10). The mailbox is
 * opened with EXAMINE, so nothing moves from new/ to cur/ and \Recent is not dropped.
 */
import { createHash } from 'node:crypto';
import type { ImapFlow } from 'imapflow';
import type { DovecotInstance } from './dovecot.js';
import type { ExecutionContext } from 'ava';
import { connectImap } from './populate.js';

export interface MessageFingerprint {
  readonly uid: number;
  readonly guid: string;
  /** System flags without \Recent, sorted. */
  readonly flags: string[];
  /** Keywords, sorted. */
  readonly keywords: string[];
  /** INTERNALDATE, Unix seconds. */
  readonly internalDate: number;
  /** RFC822.SIZE (CRLF-counted). */
  readonly size: number;
  /** sha256 (hex) of BODY[] as served. */
  readonly sha256: string;
}

export interface MailboxFingerprint {
  /** UTF-8, "/" separated. */
  readonly name: string;
  readonly selectable: boolean;
  readonly subscribed: boolean;
  readonly uidValidity: number | null;
  readonly uidNext: number | null;
  readonly guid: string | null;
  readonly messages: MessageFingerprint[];
}

export interface UserFingerprint {
  readonly user: string;
  readonly mailboxes: MailboxFingerprint[];
}

const SYSTEM = new Set(['\\seen', '\\answered', '\\flagged', '\\deleted', '\\draft']);

function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Splits an IMAP flag set into sorted system flags (no \Recent) and sorted keywords. */
export function splitFlags(flags: Iterable<string>): { flags: string[]; keywords: string[] } {
  const sys: string[] = [];
  const kw: string[] = [];
  for (const f of flags) {
    if (f.toLowerCase() === '\\recent') continue;
    if (SYSTEM.has(f.toLowerCase())) sys.push(f);
    else kw.push(f);
  }
  return { flags: sys.sort(byCodePoint), keywords: kw.sort(byCodePoint) };
}

/** Parses doveadm `-f tab` output into rows keyed by the header names. */
export function parseDoveadmTab(stdout: string): Array<Record<string, string>> {
  const lines = stdout.split('\n').filter((l) => l !== '');
  if (lines.length === 0) return [];
  const head = lines[0]!.split('\t');
  return lines.slice(1).map((l) => {
    const cells = l.split('\t');
    return Object.fromEntries(head.map((h, i) => [h, cells[i] ?? '']));
  });
}

/** uid -> message GUID of one mailbox, from doveadm. */
export async function messageGuids(dv: DovecotInstance, user: string, mailbox: string): Promise<Map<number, string>> {
  const out = await dv.doveadmOk(['-f', 'tab', 'fetch', '-u', user, 'uid guid', 'mailbox', mailbox, 'all']);
  return new Map(parseDoveadmTab(out).map((r) => [Number(r.uid), r.guid!]));
}

/** Mailbox GUID (and a sync of the mailbox), from doveadm. */
export async function mailboxGuid(dv: DovecotInstance, user: string, mailbox: string): Promise<string> {
  const out = await dv.doveadmOk(['-f', 'tab', 'mailbox', 'status', '-u', user, 'guid', mailbox]);
  const row = parseDoveadmTab(out)[0];
  if (!row?.guid) throw new Error(`doveadm mailbox status guid "${mailbox}" for ${user} printed no GUID: ${out}`);
  return row.guid;
}

/** The stored bytes of one message (`doveadm fetch text`): LF line ends as Dovecot saved them. */
export async function storedMessage(dv: DovecotInstance, user: string, mailbox: string, uid: number): Promise<Buffer> {
  // `-f pager` prints "text:\n" and then the value verbatim; with one record there is no trailing "\f\n".
  const r = await dv.doveadm(['-f', 'pager', 'fetch', '-u', user, 'text', 'mailbox', mailbox, 'uid', String(uid)]);
  if (r.code !== 0) throw new Error(`doveadm fetch text ${mailbox} uid ${uid} for ${user} failed: ${r.stderr}`);
  const prefix = Buffer.from('text:\n');
  if (!r.stdoutBytes.subarray(0, prefix.length).equals(prefix)) throw new Error(`doveadm fetch text ${mailbox} uid ${uid} for ${user}: no such message, or unexpected output ${JSON.stringify(r.stdout.slice(0, 80))}`);
  return r.stdoutBytes.subarray(prefix.length);
}

async function fingerprintMailbox(client: ImapFlow, dv: DovecotInstance, user: string, name: string, subscribed: boolean): Promise<MailboxFingerprint> {
  const guid = await mailboxGuid(dv, user, name);
  const guids = await messageGuids(dv, user, name);
  const box = await client.mailboxOpen(name, { readOnly: true });
  const messages: MessageFingerprint[] = [];
  try {
    if (box.exists > 0) {
      for await (const m of client.fetch('1:*', { uid: true, flags: true, internalDate: true, size: true, source: true }, { uid: true })) {
        const { flags, keywords } = splitFlags(m.flags ?? []);
        const date = m.internalDate instanceof Date ? m.internalDate : new Date(m.internalDate ?? NaN);
        const g = guids.get(m.uid);
        if (g === undefined) throw new Error(`${user}/${name}: UID ${m.uid} is served over IMAP but doveadm fetch lists no GUID for it`);
        messages.push({
          uid: m.uid,
          guid: g,
          flags,
          keywords,
          internalDate: Math.floor(date.getTime() / 1000),
          size: m.size ?? -1,
          sha256: createHash('sha256').update(m.source ?? Buffer.alloc(0)).digest('hex'),
        });
      }
    }
  } finally {
    await client.mailboxClose().catch(() => undefined); // UNSELECT/CLOSE of a read-only (EXAMINE) mailbox expunges nothing
  }
  messages.sort((a, b) => a.uid - b.uid);
  return { name, selectable: true, subscribed, uidValidity: Number(box.uidValidity), uidNext: box.uidNext, guid, messages };
}

/** The whole user, as Dovecot serves it (logs in as user*master). */
export async function fingerprintUser(dv: DovecotInstance, user: string): Promise<UserFingerprint> {
  const client = await connectImap(dv, user);
  try {
    const list = await client.list();
    // Subscriptions from doveadm: imapflow's list() infers subscription state on the client side.
    const subscribed = new Set((await dv.doveadmOk(['mailbox', 'list', '-s', '-u', user])).split('\n').filter((l) => l !== ''));
    const mailboxes: MailboxFingerprint[] = [];
    for (const entry of list) {
      const flags = new Set([...entry.flags].map((f) => f.toLowerCase()));
      if (flags.has('\\nonexistent')) continue;
      if (flags.has('\\noselect')) {
        mailboxes.push({ name: entry.path, selectable: false, subscribed: subscribed.has(entry.path), uidValidity: null, uidNext: null, guid: null, messages: [] });
        continue;
      }
      mailboxes.push(await fingerprintMailbox(client, dv, user, entry.path, subscribed.has(entry.path)));
    }
    mailboxes.sort((a, b) => byCodePoint(a.name, b.name));
    return { user, mailboxes };
  } finally {
    await client.logout().catch(() => undefined);
  }
}

/** A short readable difference (first few) between two fingerprints, for failure messages. */
export function describeDifference(got: unknown, want: unknown, at = '', out: string[] = [], limit = 20): string[] {
  if (out.length >= limit) return out;
  if (typeof got !== 'object' || typeof want !== 'object' || got === null || want === null) {
    if (got !== want) out.push(`${at || '.'}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    return out;
  }
  const keys = new Set([...Object.keys(got), ...Object.keys(want)]);
  for (const k of keys) describeDifference((got as Record<string, unknown>)[k], (want as Record<string, unknown>)[k], `${at}.${k}`, out, limit);
  return out;
}

/** Lone LFs become CRLF (what IMAP serves for a message Dovecot stored with LF line ends). */
export function toCrlf(raw: Buffer): Buffer {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x0a && (i === 0 || raw[i - 1] !== 0x0d)) {
      out.push(raw.subarray(start, i), Buffer.from('\r\n'));
      start = i + 1;
    }
  }
  out.push(raw.subarray(start));
  return Buffer.concat(out);
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Two users' fingerprints must be equal apart from the user name; logs a readable difference first.
 * `only` can narrow both sides (e.g. to selectable mailboxes when comparing across storage formats).
 */
export function assertSameUser(t: ExecutionContext, got: UserFingerprint, want: UserFingerprint, what: string, only: (m: MailboxFingerprint) => boolean = () => true): void {
  const g = { user: '', mailboxes: got.mailboxes.filter(only) };
  const w = { user: '', mailboxes: want.mailboxes.filter(only) };
  const diff = describeDifference(g, w);
  if (diff.length) t.log(`${what}: got vs want:\n  ${diff.join('\n  ')}`);
  t.deepEqual(g, w, what);
}
