/**
 * A save transaction over IMAP. IMAP has no invisible staging: an APPENDed message is at once seen by
 * every client (that is the point: quota, indexes, SIS and IDLE sessions see it). So:
 *
 * - save() spools the body to the transaction's spool file (bounded memory, checked against `size`);
 *   nothing reaches the server. The spool file is unlinked as soon as it is open, so it holds no name
 *   on disk: a rolled-back, failed or killed (SIGKILL) restore leaves no copy of anyone's mail in the
 *   temp directory;
 * - commit() APPENDs the spooled messages in save order with their flags, keywords and INTERNALDATE
 *   and takes each UID from the UIDPLUS APPENDUID answer. Where the server has MULTIAPPEND (RFC 3502;
 *   Dovecot has), up to 64 messages of up to 1 MiB each, 8 MiB in all, go in one command, which the
 *   server saves as one transaction, all or none; a batch it refuses is sent again one message at a
 *   time (after a BAD, the rest of the transaction too). A failure in the middle of commit leaves the
 *   messages APPENDed before it; a rerun of the restore finds them with countExisting and skips them.
 * - APPEND takes each message as one Buffer, so commit() holds one batch (at most 8 MiB) or one
 *   larger message in memory at a time.
 * - NO [TRYCREATE] (mailbox deleted meanwhile): the mailbox is created and the APPEND retried once.
 * UIDs and GUIDs cannot be chosen: the server assigns them.
 */
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fromSystemError, IntegrityError, isMailvaultError, UsageError } from '../../core/errors.js';
import type { CommitResult, MailboxInfo, SaveBody, SaveMetadata, SavedMessage, SaveTransaction } from '../types.js';
import type { ImapSession } from './connection.js';
import { mapImapError } from './error-mapping.js';
import { assertUsable, rawCommand, wirePath, type TaggedAttributes } from './session-calls.js';

interface Spooled {
  /** Where the body starts in the spool file. */
  offset: number;
  /** With the keywords IMAP can carry (imapKeyword); the others are in `dropped`. */
  meta: SaveMetadata;
  dropped: string[];
}

/**
 * Whether `keyword` can be sent as an IMAP keyword: an atom (RFC 3501 flag-keyword), so ASCII with no
 * space, control character or atom-special. A dump may hold others (a Maildir's dovecot-keywords takes
 * any text without white space); Dovecot refuses a new keyword with 8-bit characters, and refuses the
 * whole APPEND with it, so these are left out and reported (CommitResult.keywordsNotStored).
 */
export function imapKeyword(keyword: string): boolean {
  return /^[\x21\x23-\x24\x26-\x27\x2b-\x5b\x5e-\x7a\x7c-\x7e]+$/.test(keyword);
}

/**
 * A temp file with no name: created in a private directory, then the file and the directory are
 * removed at once, and the open handle is all that is left. The kernel frees it when the handle is
 * closed, also when the process is killed.
 */
async function openAnonymousSpool(mailbox: string): Promise<FileHandle> {
  let dir: string;
  try {
    dir = await mkdtemp(path.join(os.tmpdir(), 'mailvault-imap-'));
  } catch (err) {
    throw fromSystemError(err, 'create a spool directory for IMAP APPEND', { path: os.tmpdir(), mailbox });
  }
  const file = path.join(dir, 'spool');
  try {
    return await open(file, 'wx+', 0o600);
  } catch (err) {
    throw fromSystemError(err, 'create a spool file for IMAP APPEND', { path: file, mailbox });
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * MULTIAPPEND batches: one command, and on the server one save transaction, for many messages. An
 * APPEND of one message is a transaction of its own for Dovecot (uidlist lock, index and log update,
 * fsync each time).
 */
const MULTIAPPEND_MESSAGES = 64;
const MULTIAPPEND_BYTES = 8 * 1024 * 1024;
const MULTIAPPEND_MESSAGE_BYTES = 1024 * 1024;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** An INTERNALDATE (Unix seconds) as IMAP date-time, in UTC, as imapflow's append writes it. */
export function imapDateTime(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  const day = String(d.getUTCDate()).padStart(2, ' ');
  const year = String(d.getUTCFullYear()).padStart(4, '0');
  return `${day}-${MONTHS[d.getUTCMonth()]}-${year} ${d.toISOString().substring(11, 19)} +0000`;
}

/** The UIDs of an APPENDUID uid-set ("4", "4:7", "4,6:8"), in order; null if it is not one. */
export function expandUidSet(text: string): number[] | null {
  const uids: number[] = [];
  for (const part of text.split(',')) {
    const m = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(part);
    if (m === null) return null;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    // A range names a set (4:7 is 7:4); the server lists the messages' UIDs in ascending order.
    const lo = Math.min(a, b);
    const hi = Math.max(a, b);
    if (lo < 1 || hi > 0xffffffff || hi - lo > 1_000_000) return null;
    for (let u = lo; u <= hi; u++) uids.push(u);
  }
  return uids;
}

/** Dovecot's default mail_max_keyword_length (bytes). */
const DOVECOT_MAX_KEYWORD_BYTES = 50;

export interface ImapSaveHooks {
  /** CREATE the mailbox (after NO [TRYCREATE]). */
  createMailbox(): Promise<void>;
}

export class ImapSaveTransaction implements SaveTransaction {
  private readonly spooled: Spooled[] = [];
  /** The unnamed spool file (openAnonymousSpool), opened by the first save(). */
  private spool: FileHandle | null = null;
  /** Bytes used in the spool: a save that fails leaves its bytes past this, to be overwritten. */
  private spoolEnd = 0;
  private done = false;

  constructor(
    private readonly session: ImapSession,
    readonly mailbox: MailboxInfo,
    private readonly serverPath: string,
    private readonly hooks: ImapSaveHooks,
  ) {}

  private check(): void {
    if (this.done) throw new UsageError(`the save transaction on mailbox "${this.mailbox.name}" was already committed or rolled back`, { mailbox: this.mailbox.name });
  }

  async save(meta: SaveMetadata, body: SaveBody): Promise<SavedMessage> {
    this.check();
    this.spool ??= await openAnonymousSpool(this.mailbox.name);
    const spool = this.spool;
    const offset = this.spoolEnd;
    let count = 0;
    try {
      for await (const chunk of body instanceof Uint8Array ? [body] : (body as AsyncIterable<Buffer>)) {
        // Read to the end whatever its length, but write no byte past `size`: a wrong size must not
        // fill the disk before it is found.
        if (count + chunk.length <= meta.size) {
          let done = 0;
          while (done < chunk.length) {
            const { bytesWritten } = await spool.write(chunk, done, chunk.length - done, offset + count + done);
            done += bytesWritten;
          }
        }
        count += chunk.length;
      }
    } catch (err) {
      if (isMailvaultError(err)) throw err;
      throw fromSystemError(err, 'spool a message for IMAP APPEND', { path: os.tmpdir(), mailbox: this.mailbox.name });
    }
    if (count !== meta.size) {
      throw new IntegrityError(`message body for mailbox "${this.mailbox.name}" has ${count} bytes, expected ${meta.size}`, { mailbox: this.mailbox.name });
    }
    this.spoolEnd = offset + count;
    const dropped = meta.keywords.filter((k) => !imapKeyword(k));
    this.spooled.push({ offset, meta: dropped.length === 0 ? meta : { ...meta, keywords: meta.keywords.filter(imapKeyword) }, dropped });
    return { uid: null, guid: null };
  }

  async commit(): Promise<CommitResult> {
    this.check();
    this.done = true;
    const uids: number[] = [];
    const keywordsNotStored: { index: number; uid: number; keywords: string[] }[] = [];
    const why = new Set<string>();
    let uidValidity = this.mailbox.uidValidity;
    try {
      let multi = this.session.client.capabilities.has('MULTIAPPEND');
      /** Messages before this index go one by one: they were in a batch the server refused. */
      let singleUntil = 0;
      const DROPPED_WHY = 'IMAP keywords are ASCII atoms (no space, control character or any of ( ) { % * " \\ ]), and Dovecot refuses a new keyword with 8-bit characters';
      for (let i = 0; i < this.spooled.length; i++) {
        const s = this.spooled[i]!;
        // Several messages in one MULTIAPPEND where the server takes it; a batch it refuses is sent
        // again one message at a time below (which handles TRYCREATE and refused keywords).
        const batch = multi && i >= singleUntil ? this.batchFrom(i) : 1;
        if (batch > 1) {
          const appended = await this.appendBatch(i, batch);
          if (appended.stored) {
            uids.push(...appended.uids);
            if (appended.uidValidity !== undefined) uidValidity = Number(appended.uidValidity);
            for (let k = 0; k < batch; k++) {
              const { dropped, meta } = this.spooled[i + k]!;
              if (dropped.length === 0) continue;
              keywordsNotStored.push({ index: i + k, uid: appended.uids[k] ?? meta.uid ?? 0, keywords: [...dropped] });
              why.add(DROPPED_WHY);
            }
            i += batch - 1;
            continue;
          }
          singleUntil = i + batch;
          // BAD: the server does not take the command as sent; no more batches in this transaction.
          if (appended.bad) multi = false;
        }
        const what = `append message ${i + 1} of ${this.spooled.length} to`;
        assertUsable(this.session, { what, mailbox: this.mailbox.name });
        const bytes = await this.readSpooled(s, i);
        const result = await this.appendOnce(bytes, s.meta, what, i);
        if (result.uid) uids.push(result.uid);
        if (result.uidValidity) uidValidity = Number(result.uidValidity);
        const left = [...s.dropped, ...(result.refused ?? [])];
        // The server's UID (APPENDUID), else the UID the message had (0: none known).
        if (left.length > 0) keywordsNotStored.push({ index: i, uid: result.uid ?? s.meta.uid ?? 0, keywords: left });
        if (s.dropped.length > 0) why.add(DROPPED_WHY);
        if (result.refusal !== undefined) why.add(`the server refused an APPEND for its keywords (${result.refusal}; Dovecot limits a keyword to mail_max_keyword_length bytes, 50 by default), and stored the message without them`);
      }
    } finally {
      await this.removeSpool();
    }
    if (keywordsNotStored.length === 0) return { uids, uidValidity };
    return { uids, uidValidity, keywordsNotStored, keywordsNotStoredWhy: `${[...why].join('; ')}: the server cannot store these` };
  }

  /**
   * How many messages from `start` go in one MULTIAPPEND: up to MULTIAPPEND_MESSAGES and
   * MULTIAPPEND_BYTES, each at most MULTIAPPEND_MESSAGE_BYTES (a larger one goes alone), and none with
   * a keyword over Dovecot's default length limit (the server would refuse the whole batch; such a
   * message takes the one-message path, which retries without it).
   */
  private batchFrom(start: number): number {
    let bytes = 0;
    let n = 0;
    for (let i = start; i < this.spooled.length && n < MULTIAPPEND_MESSAGES; i++) {
      const { meta } = this.spooled[i]!;
      if (meta.size > MULTIAPPEND_MESSAGE_BYTES || bytes + meta.size > MULTIAPPEND_BYTES) break;
      if (meta.keywords.some((k) => Buffer.byteLength(k) > DOVECOT_MAX_KEYWORD_BYTES)) break;
      // A date IMAP cannot write (a year outside 1000-9999): the one-message path, as before.
      const year = new Date(meta.internalDate * 1000).getUTCFullYear();
      if (!(year >= 1000 && year <= 9999)) break;
      bytes += meta.size;
      n++;
    }
    return n;
  }

  /**
   * APPEND `count` spooled messages from `start` in one command (MULTIAPPEND, RFC 3502), in order.
   * The server stores all of them or none. Returns their UIDs (UIDPLUS: APPENDUID with a UID set in
   * message order; empty without it), or `stored: false` when the server answered NO or BAD (RFC 3502:
   * nothing was stored; the caller sends them one by one). A lost connection or an answer that cannot
   * be read throws, as a single APPEND does; the error counts only the messages before the batch as
   * kept, although the server may have stored the batch before the connection went (as a single
   * APPEND whose OK was lost): a rerun finds what was stored and adds nothing twice.
   */
  private async appendBatch(start: number, count: number): Promise<{ stored: true; uids: number[]; uidValidity?: bigint } | { stored: false; bad: boolean }> {
    const what = `append messages ${start + 1}-${start + count} of ${this.spooled.length} to`;
    assertUsable(this.session, { what, mailbox: this.mailbox.name });
    const binary = this.session.client.capabilities.has('BINARY');
    // The path as imapflow's append sends it: INBOX in any case is INBOX; the namespace prefix is in it.
    const target = this.serverPath.toUpperCase() === 'INBOX' ? 'INBOX' : this.serverPath;
    const attributes: unknown[] = [{ type: 'ATOM', value: wirePath(this.session, target) }];
    for (let i = start; i < start + count; i++) {
      const { meta } = this.spooled[i]!;
      const bytes = await this.readSpooled(this.spooled[i]!, start);
      // System flags (SystemFlag: never \Recent) and keywords, atoms all (imapKeyword, save()).
      attributes.push([...meta.flags, ...meta.keywords].map((f) => ({ type: 'ATOM', value: f })));
      attributes.push({ type: 'STRING', value: imapDateTime(meta.internalDate) });
      // A message with NUL bytes goes as a literal8 where the server has BINARY (as imapflow's append).
      attributes.push({ type: 'LITERAL', value: bytes, isLiteral8: binary && bytes.indexOf(0) >= 0 });
    }
    let answer: TaggedAttributes;
    try {
      answer = await rawCommand(this.session, 'APPEND', attributes);
    } catch (err) {
      const status = String((err as { responseStatus?: string }).responseStatus ?? '').toUpperCase();
      if ((status === 'NO' || status === 'BAD') && this.session.state.failure === undefined && this.session.client.usable) return { stored: false, bad: status === 'BAD' };
      const mapped = mapImapError(this.session.state.failure ?? err, { ...this.session.errorContext, what, mailbox: this.mailbox.name });
      if (start > 0) (mapped as { message: string }).message += `; ${start} message(s) of this transaction were appended before the failure and stay`;
      Object.assign(mapped, { keptBeforeFailure: start });
      throw mapped;
    }
    const section = answer?.[0]?.section;
    const code = typeof section?.[0]?.value === 'string' ? section[0].value.toUpperCase() : '';
    if (code !== 'APPENDUID') return { stored: true, uids: [] };
    const uidValidity = /^\d{1,10}$/.test(String(section?.[1]?.value ?? '')) ? BigInt(String(section![1]!.value)) : undefined;
    const uids = expandUidSet(String(section?.[2]?.value ?? ''));
    // A UID set that does not name one UID per message is not used (the UIDs are then unknown, as
    // without UIDPLUS), rather than paired with the wrong messages.
    if (uids === null || uids.length !== count) return { stored: true, uids: [], ...(uidValidity !== undefined ? { uidValidity } : {}) };
    return { stored: true, uids, ...(uidValidity !== undefined ? { uidValidity } : {}) };
  }

  /**
   * APPEND one message. NO [TRYCREATE]: the mailbox is created and the APPEND tried once more. NO
   * [CANNOT] for a message with keywords (Dovecot: "Keyword length too long", a keyword over
   * mail_max_keyword_length): a NO stores nothing, so the APPEND is tried again without its keywords
   * over 50 bytes (Dovecot's default limit), then without any; those left out come back in `refused`,
   * the server's words in `refusal`. Another refusal fails as before.
   */
  private async appendOnce(bytes: Buffer, meta: SaveMetadata, what: string, index: number, retried = false): Promise<{ uid?: number; uidValidity?: bigint; refused?: string[]; refusal?: string }> {
    const flags = [...meta.flags, ...meta.keywords];
    try {
      const res = await this.session.client.append(this.serverPath, bytes, flags, new Date(meta.internalDate * 1000));
      if (!res) throw Object.assign(new Error('APPEND was not sent (not logged in)'), { code: 'NoConnection' });
      return res;
    } catch (err) {
      const code = String((err as { serverResponseCode?: string }).serverResponseCode ?? '').toUpperCase();
      if (code === 'TRYCREATE' && !retried && this.session.state.failure === undefined) {
        await this.hooks.createMailbox();
        return await this.appendOnce(bytes, meta, what, index, true);
      }
      if (code === 'CANNOT' && meta.keywords.length > 0 && this.session.state.failure === undefined) {
        const long = meta.keywords.filter((k) => Buffer.byteLength(k) > DOVECOT_MAX_KEYWORD_BYTES);
        const refused = long.length > 0 ? long : [...meta.keywords];
        const res = await this.appendOnce(bytes, { ...meta, keywords: meta.keywords.filter((k) => !refused.includes(k)) }, what, index, retried);
        const text = String((err as { responseText?: string }).responseText ?? '').replace(/\s*\([0-9.]+ \+ [0-9.]+ secs\)\.?$/, '');
        return { ...res, refused: [...refused, ...(res.refused ?? [])], refusal: res.refusal ?? `NO [CANNOT] ${text}`.trim() };
      }
      const mapped = mapImapError(this.session.state.failure ?? err, { ...this.session.errorContext, what, mailbox: this.mailbox.name });
      if (index > 0) {
        // Say what is already on the server: those are not rolled back.
        (mapped as { message: string }).message += `; ${index} message(s) of this transaction were appended before the failure and stay`;
      }
      // For the caller's counts (SaveTransaction.commit).
      Object.assign(mapped, { keptBeforeFailure: index });
      throw mapped;
    }
  }

  async rollback(): Promise<void> {
    this.check();
    this.done = true;
    await this.removeSpool();
  }

  /** The spooled body of `s`; a failure to read it counts the first `kept` messages as appended (keptBeforeFailure). */
  private async readSpooled(s: Spooled, kept: number): Promise<Buffer> {
    const spool = this.spool;
    if (spool === null) throw new UsageError('the IMAP save transaction has no spool file', { mailbox: this.mailbox.name });
    const bytes = Buffer.allocUnsafe(s.meta.size);
    let done = 0;
    try {
      while (done < bytes.length) {
        const { bytesRead } = await spool.read(bytes, done, bytes.length - done, s.offset + done);
        if (bytesRead === 0) throw Object.assign(new Error(`the spool file ended after ${s.offset + done} bytes`), { code: 'EIO' });
        done += bytesRead;
      }
    } catch (err) {
      throw Object.assign(fromSystemError(err, 'read a spooled message back', { path: os.tmpdir(), mailbox: this.mailbox.name }), { keptBeforeFailure: kept });
    }
    return bytes;
  }

  private async removeSpool(): Promise<void> {
    const spool = this.spool;
    this.spool = null;
    this.spoolEnd = 0;
    await spool?.close().catch(() => undefined);
  }
}
