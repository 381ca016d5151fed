/**
 * Putting mail into a test Dovecot through Dovecot itself: IMAP (imapflow, logged in as `user*master`)
 * for mailboxes, subscriptions, APPEND with flags/keywords/INTERNALDATE, STORE and UID EXPUNGE; LMTP
 * (lmtp-client.ts) for deliveries. Never CLOSE: it would expunge \Deleted messages.
 */
import { ImapFlow } from 'imapflow';
import type { DovecotInstance, DovecotUser } from './dovecot.js';

export { LmtpClient, deliverLmtp, encodeLmtpData } from './lmtp-client.js';
export { generateMessage, generateMessages, messageIdOf, poolAttachment, MESSAGE_SHAPES, type MessageShape, type TestMessage } from './messages.js';

/** Folder names that exercise nesting, mUTF-7, "&" and non-BMP-free Unicode. */
export const AWKWARD_MAILBOXES: readonly string[] = ['Archive/2025', 'Entwürfe/Sub', 'R&D', 'Ünïcødé ✓'];

/** Logs in as `user*master` (default) or as the user with their own password. */
export async function connectImap(dv: DovecotInstance, user: DovecotUser | string, options: { asMaster?: boolean } = {}): Promise<ImapFlow> {
  const name = typeof user === 'string' ? user : user.name;
  const asMaster = options.asMaster ?? true;
  if (!asMaster && typeof user === 'string') throw new Error('connectImap: pass the DovecotUser to log in with its own password');
  const client = new ImapFlow({
    host: dv.imapHost,
    port: dv.imapPort,
    secure: false,
    doSTARTTLS: false,
    auth: asMaster ? { user: `${name}*${dv.masterUser}`, pass: dv.masterPassword } : { user: name, pass: (user as DovecotUser).password },
    logger: false,
    disableAutoIdle: true,
    disableCompression: true,
  });
  try {
    await client.connect();
  } catch (e) {
    throw new Error(`IMAP login as ${name}${asMaster ? `*${dv.masterUser}` : ''} on 127.0.0.1:${dv.imapPort} failed: ${(e as Error).message}\n${await dv.readLog(2000)}`);
  }
  return client;
}

/** CREATE (imapflow then SUBSCRIBEs on its own) and SUBSCRIBE, or UNSUBSCRIBE with `subscribe: false`. */
export async function createMailboxes(client: ImapFlow, names: readonly string[], options: { subscribe?: boolean } = {}): Promise<void> {
  for (const name of names) {
    await client.mailboxCreate(name);
    if (options.subscribe ?? true) await client.mailboxSubscribe(name);
    else await client.mailboxUnsubscribe(name);
  }
}

export interface AppendOptions {
  /** System flags (`\Seen` ...) and keywords mixed, as IMAP takes them. */
  readonly flags?: readonly string[];
  /** INTERNALDATE; IMAP keeps whole seconds. */
  readonly internalDate?: Date;
}

/** APPENDs one message and returns its UID (APPENDUID). */
export async function appendMessage(client: ImapFlow, mailbox: string, raw: Buffer, options: AppendOptions = {}): Promise<number> {
  const r = await client.append(mailbox, raw, options.flags ? [...options.flags] : [], options.internalDate);
  if (!r || typeof r.uid !== 'number') throw new Error(`APPEND to "${mailbox}" did not return a UID (APPENDUID): ${JSON.stringify(r)}`);
  return r.uid;
}

/** UID STORE +FLAGS / -FLAGS (flags and keywords) on the given UIDs. */
export async function storeFlags(client: ImapFlow, mailbox: string, uids: readonly number[], change: { add?: readonly string[]; remove?: readonly string[] }): Promise<void> {
  const lock = await client.getMailboxLock(mailbox);
  try {
    const range = uids.join(',');
    if (change.add?.length) {
      if (!(await client.messageFlagsAdd(range, [...change.add], { uid: true }))) throw new Error(`UID STORE ${range} +FLAGS failed in "${mailbox}"`);
    }
    if (change.remove?.length) {
      if (!(await client.messageFlagsRemove(range, [...change.remove], { uid: true }))) throw new Error(`UID STORE ${range} -FLAGS failed in "${mailbox}"`);
    }
  } finally {
    lock.release();
  }
}

/** Sets \Deleted and runs UID EXPUNGE on exactly these UIDs (never CLOSE). */
export async function expungeUids(client: ImapFlow, mailbox: string, uids: readonly number[]): Promise<void> {
  const lock = await client.getMailboxLock(mailbox);
  try {
    if (!(await client.messageDelete(uids.join(','), { uid: true }))) throw new Error(`UID EXPUNGE ${uids.join(',')} failed in "${mailbox}"`);
  } finally {
    lock.release();
  }
}
