/**
 * A save transaction over IMAP. IMAP has no invisible staging: an APPENDed message is at once seen by
 * every client (that is the point: quota, indexes, SIS and IDLE sessions see it). So:
 *
 * - save() spools the body to a temp file (bounded memory, checked against `size`); nothing reaches
 *   the server, and a rolled-back or failed transaction leaves nothing behind;
 * - commit() APPENDs the spooled messages in save order with their flags, keywords and INTERNALDATE
 *   and takes each UID from the UIDPLUS APPENDUID answer. A failure in the middle of commit leaves the
 *   messages APPENDed before it; a rerun of the restore finds them with countExisting and skips them.
 * - imapflow's APPEND takes the message as one Buffer, so commit() holds one message (never more) in
 *   memory at a time.
 * - NO [TRYCREATE] (mailbox deleted meanwhile): the mailbox is created and the APPEND retried once.
 * UIDs and GUIDs cannot be chosen: the server assigns them.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fromSystemError, IntegrityError, isMailvaultError, UsageError } from '../../core/errors.js';
import type { CommitResult, MailboxInfo, SaveMetadata, SavedMessage, SaveTransaction } from '../types.js';
import type { ImapSession } from './connection.js';
import { mapImapError } from './error-mapping.js';
import { assertUsable } from './session-calls.js';

interface Spooled {
  file: string;
  meta: SaveMetadata;
}

export interface ImapSaveHooks {
  /** CREATE the mailbox (after NO [TRYCREATE]). */
  createMailbox(): Promise<void>;
}

export class ImapSaveTransaction implements SaveTransaction {
  private readonly spooled: Spooled[] = [];
  private spoolDir: string | null = null;
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

  async save(meta: SaveMetadata, body: Readable): Promise<SavedMessage> {
    this.check();
    try {
      this.spoolDir ??= await mkdtemp(path.join(os.tmpdir(), 'mailvault-imap-'));
    } catch (err) {
      throw fromSystemError(err, 'create a spool directory for IMAP APPEND', { path: os.tmpdir(), mailbox: this.mailbox.name });
    }
    const file = path.join(this.spoolDir, `${this.spooled.length}.eml`);
    let count = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        count += chunk.length;
        cb(null, chunk);
      },
    });
    try {
      await pipeline(body, counter, createWriteStream(file, { mode: 0o600 }));
    } catch (err) {
      await rm(file, { force: true }).catch(() => undefined);
      if (isMailvaultError(err)) throw err;
      throw fromSystemError(err, 'spool a message for IMAP APPEND', { path: file, mailbox: this.mailbox.name });
    }
    if (count !== meta.size) {
      await rm(file, { force: true }).catch(() => undefined);
      throw new IntegrityError(`message body for mailbox "${this.mailbox.name}" has ${count} bytes, expected ${meta.size}`, { mailbox: this.mailbox.name });
    }
    this.spooled.push({ file, meta });
    return { uid: null, guid: null };
  }

  async commit(): Promise<CommitResult> {
    this.check();
    this.done = true;
    const uids: number[] = [];
    let uidValidity = this.mailbox.uidValidity;
    try {
      for (const [i, s] of this.spooled.entries()) {
        const what = `append message ${i + 1} of ${this.spooled.length} to`;
        assertUsable(this.session, { what, mailbox: this.mailbox.name });
        const bytes = await readFile(s.file).catch((err: unknown) => {
          throw fromSystemError(err, 'read a spooled message', { path: s.file, mailbox: this.mailbox.name });
        });
        const result = await this.appendOnce(bytes, s.meta, what, i);
        if (result.uid) uids.push(result.uid);
        if (result.uidValidity) uidValidity = Number(result.uidValidity);
        await rm(s.file, { force: true });
      }
    } finally {
      await this.removeSpool();
    }
    return { uids, uidValidity };
  }

  private async appendOnce(bytes: Buffer, meta: SaveMetadata, what: string, index: number, retried = false): Promise<{ uid?: number; uidValidity?: bigint }> {
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
      const mapped = mapImapError(this.session.state.failure ?? err, { ...this.session.errorContext, what, mailbox: this.mailbox.name });
      if (index > 0) {
        // Say what is already on the server: those are not rolled back.
        (mapped as { message: string }).message += `; ${index} message(s) of this transaction were appended before the failure and stay`;
      }
      throw mapped;
    }
  }

  async rollback(): Promise<void> {
    this.check();
    this.done = true;
    await this.removeSpool();
  }

  private async removeSpool(): Promise<void> {
    if (this.spoolDir) await rm(this.spoolDir, { recursive: true, force: true }).catch(() => undefined);
    this.spoolDir = null;
  }
}
