/**
 * The few ways the driver talks over its one imapflow session: a guarded call that maps every
 * failure to a typed error, a mailbox lock (imapflow serialises commands and mailbox selection through
 * it), and a raw UID FETCH for items imapflow's fetch() does not ask for (X-GUID, SAVEDATE).
 */
import { ServerUnavailableError } from '../../core/errors.js';
import { encodeMutf7 } from '../mutf7.js';
import type { ImapSession } from './connection.js';
import { mapImapError, RETRY_HINT, type ImapErrorContext } from './error-mapping.js';
import { fetchItems, type ImapNode } from './fetch-parser.js';

export interface CallContext {
  readonly what: string;
  readonly mailbox?: string;
  readonly uid?: number;
}

function context(session: ImapSession, c: CallContext): ImapErrorContext {
  return { ...session.errorContext, ...c };
}

/** Throws ServerUnavailableError if the session already failed (no command would get an answer). */
export function assertUsable(session: ImapSession, c: CallContext): void {
  if (session.state.failure !== undefined || !session.client.usable) {
    const cause = session.state.failure;
    const mapped = mapImapError(cause ?? Object.assign(new Error('connection closed'), { code: 'NoConnection' }), context(session, c));
    throw mapped instanceof ServerUnavailableError ? mapped : new ServerUnavailableError(`cannot ${c.what} on ${session.address.display}: the connection is gone`, { user: session.errorContext.user, cause, hint: RETRY_HINT });
  }
}

/** Runs `fn`, mapping anything it throws. */
export async function call<T>(session: ImapSession, c: CallContext, fn: () => Promise<T>): Promise<T> {
  assertUsable(session, c);
  try {
    return await fn();
  } catch (err) {
    // An error caused by the connection dying is reported as that, not as the symptom.
    throw mapImapError(session.state.failure !== undefined ? session.state.failure : err, context(session, c));
  }
}

/** Selects `path` read-only (EXAMINE) under imapflow's mailbox lock and runs `fn`. */
export async function withMailbox<T>(session: ImapSession, path: string, c: CallContext, fn: () => Promise<T>): Promise<T> {
  return await call(session, c, async () => {
    const lock = await session.client.getMailboxLock(path, { readOnly: true });
    try {
      return await fn();
    } finally {
      lock.release();
    }
  });
}

/** The path as a wire string: UTF-8 when the server accepted UTF8=ACCEPT, else modified UTF-7. */
export function wirePath(session: ImapSession, path: string): string {
  return session.client.enabled.has('UTF8=ACCEPT') ? path : encodeMutf7(path);
}

/** The tagged answer to a raw command: its attributes (the response code's section among them). */
export type TaggedAttributes = { section?: { value?: unknown }[] }[] | undefined;

interface RawResponse {
  response: { attributes?: TaggedAttributes };
  next(): void;
}

/**
 * Sends `command` with `attributes` raw through imapflow (which writes literals, LITERAL+ and literal8
 * as its own commands do); untagged FETCH rows go to `onFetch`. Returns the tagged OK's attributes; a
 * NO or BAD rejects with imapflow's error (responseStatus, serverResponseCode). Call inside withMailbox
 * where the command needs a selected mailbox.
 */
export async function rawCommand(session: ImapSession, command: string, attributes: unknown[], onFetch?: (items: Map<string, ImapNode>) => void): Promise<TaggedAttributes> {
  const client = session.client as unknown as {
    exec(command: string, attributes: unknown[], options: { untagged?: Record<string, (u: { attributes: ImapNode[] }) => Promise<void>> }): Promise<RawResponse>;
  };
  const response = await client.exec(command, attributes, onFetch ? { untagged: { FETCH: async (u) => onFetch(fetchItems(u.attributes ?? [])) } } : {});
  // imapflow holds its command queue until the response is released.
  response.next();
  return response.response.attributes;
}
