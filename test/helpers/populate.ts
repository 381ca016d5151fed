/**
 * Putting mail into a test Dovecot through Dovecot itself: IMAP (imapflow, logged in as `user*master`)
 * for mailboxes, subscriptions, APPEND with flags/keywords/INTERNALDATE, STORE and UID EXPUNGE; LMTP
 * (lmtp-client.ts) for deliveries. Never CLOSE: it would expunge \Deleted messages.
 */
import { ImapFlow } from 'imapflow';
import type { DovecotInstance, DovecotUser } from './dovecot.js';
import { deliverLmtp } from './lmtp-client.js';
import { generateMessage, generateMessages } from './messages.js';

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

/** Flag sets the realistic populations cycle through (system flags, keywords, both, none). */
export const FLAG_SETS: ReadonlyArray<readonly string[]> = [
  ['\\Seen'],
  ['\\Answered', '\\Flagged', 'Project-X'],
  [],
  ['\\Draft', '$Forwarded', 'NonJunk'],
  ['\\Deleted', '\\Seen'],
  ['$Label1', 'Project-X', 'zeta', 'Alpha'],
];

/**
 * Fills one user through Dovecot itself: nested and non-ASCII folders (subscribed), an unsubscribed and an
 * empty folder, APPENDs of every message shape with chosen INTERNALDATEs and flags, a STORE and an EXPUNGE
 * per folder (leaving UID gaps), one big message, then LMTP deliveries into INBOX.
 */
export async function populateRealistic(dv: DovecotInstance, user: DovecotUser, seed: number, options: { lmtp?: number } = {}): Promise<void> {
  const client = await connectImap(dv, user);
  try {
    await createMailboxes(client, AWKWARD_MAILBOXES);
    await createMailboxes(client, ['Unsubscribed', 'Empty'], { subscribe: false });
    let i = 0;
    for (const box of ['INBOX', ...AWKWARD_MAILBOXES, 'Unsubscribed']) {
      const uids: number[] = [];
      for (let k = 0; k < 4; k++, i++) {
        const m = generateMessage(seed, i);
        const date = new Date(Date.UTC(2019, 5, 1) + i * 86_400_000 + i * 3_607_000);
        uids.push(await appendMessage(client, box, m.raw, { flags: FLAG_SETS[i % FLAG_SETS.length]!, internalDate: date }));
      }
      await storeFlags(client, box, [uids[0]!], { add: ['\\Flagged', 'Later'], remove: ['\\Seen'] });
      await expungeUids(client, box, [uids[1]!]);
    }
    await appendMessage(client, 'INBOX', generateMessage(seed, 999, 'big').raw, { flags: ['\\Seen'], internalDate: new Date('2021-03-04T05:06:07Z') });
  } finally {
    await client.logout();
  }
  await deliverLmtp(dv.lmtpSocket, user.name, [...generateMessages(seed + 1, options.lmtp ?? 9)].map((m) => m.raw));
}
