/**
 * Opening an authenticated IMAP session with imapflow: URL parsing, TLS choice, master-user login,
 * and the mapping of connection failures to typed errors.
 *
 * Master-user login: SASL PLAIN with an authorization identity (authzid = the mailbox owner,
 * authcid = the master user; RFC 4616), which imapflow sends when `auth.authzid` is set and the
 * server offers AUTH=PLAIN. Dovecot accepts it with a master passdb. Where the server does not offer
 * AUTH=PLAIN, the driver falls back to LOGIN "user*master" (Dovecot's auth_master_user_separator,
 * which must then be "*").
 */
import type { ImapFlow, ImapFlowOptions } from 'imapflow';
import { UsageError } from '../../core/errors.js';
import { mapImapError, type ImapErrorContext } from './error-mapping.js';

export interface ImapConnectionOptions {
  /** imap://host:port (plain, or STARTTLS when offered and tls !== false) or imaps://host:port (TLS). */
  url: string;
  /** The mailbox owner to act as. */
  user: string;
  /** Log in as `user` through this master user (SASL PLAIN authzid, or "user*master"). */
  masterUser?: string | null;
  /** The master user's password if masterUser is set, else the user's. */
  password: string;
  tls?: { rejectUnauthorized?: boolean; ca?: Buffer } | false;
  connectTimeoutMs?: number;
}

export interface ServerAddress {
  readonly host: string;
  readonly port: number;
  readonly secure: boolean;
  /** "imap://host:port" without credentials, for messages. */
  readonly display: string;
}

/** Parses imap://host[:port] or imaps://host[:port] (IPv6 in brackets). */
export function parseImapUrl(url: string): ServerAddress {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`"${url}" is not an IMAP URL`, { hint: 'write imap://host:port or imaps://host:port' });
  }
  const scheme = u.protocol.replace(/:$/, '').toLowerCase();
  if (scheme !== 'imap' && scheme !== 'imaps') {
    throw new UsageError(`"${url}" is not an IMAP URL (scheme "${scheme}")`, { hint: 'write imap://host:port or imaps://host:port' });
  }
  if (u.username || u.password) {
    throw new UsageError(`the IMAP URL must not hold credentials`, { hint: 'give the user with --imap-user and the password with --password-file or an environment variable' });
  }
  if ((u.pathname && u.pathname !== '/') || u.search || u.hash) {
    throw new UsageError(`the IMAP URL "${url}" has a path or query; only imap://host:port is understood`);
  }
  const secure = scheme === 'imaps';
  const port = u.port ? Number(u.port) : secure ? 993 : 143;
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw new UsageError(`the IMAP URL "${url}" has no host`);
  return { host, port, secure, display: `${scheme}://${u.host || host}${u.port ? '' : `:${port}`}` };
}

/** An authenticated imapflow client; `failure` holds the error that ended it, if one did. */
export interface ImapSession {
  readonly client: ImapFlow;
  readonly address: ServerAddress;
  readonly errorContext: Omit<ImapErrorContext, 'what'>;
  /** Set when the connection errors or closes while in use. */
  readonly state: { failure: unknown };
}

function clientOptions(o: ImapConnectionOptions, address: ServerAddress, auth: ImapFlowOptions['auth']): ImapFlowOptions {
  if (o.tls === false && address.secure) throw new UsageError(`imaps:// always uses TLS; "tls: false" contradicts it`, { hint: 'use imap://host:port for a plain connection' });
  const timeout = o.connectTimeoutMs ?? 30_000;
  return {
    host: address.host,
    port: address.port,
    secure: address.secure,
    ...(o.tls === false ? { doSTARTTLS: false } : {}),
    ...(o.tls ? { tls: { ...(o.tls.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: o.tls.rejectUnauthorized }), ...(o.tls.ca ? { ca: o.tls.ca } : {}) } } : {}),
    auth,
    logger: false,
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    // mailvault moves message bytes; a compressed session costs CPU on both ends for little gain on a LAN
    disableCompression: true,
    disableAutoIdle: true,
    clientInfo: { name: 'mailvault' },
  } as ImapFlowOptions;
}

async function tryConnect(options: ImapFlowOptions): Promise<{ client: ImapFlow; state: { failure: unknown } }> {
  const session: { failure: unknown } = { failure: undefined };
  // Loaded on first use: imapflow and its logger cost ~0.1 s of start-up that local backups do not need.
  const { ImapFlow: Client } = await import('imapflow');
  const client = new Client(options);
  // Without a listener an 'error' event would crash the process; the next command reports it.
  client.on('error', (err: unknown) => {
    session.failure ??= err;
  });
  client.on('close', () => {
    // The server's own words where it said goodbye (untagged BYE): Dovecot ends a session with "IMAP
    // session state is inconsistent, please relogin." after rebuilding an index under it (a save that
    // a killed server left half done), with "Server shutting down." when it stops.
    const bye = (client as unknown as { byeReason?: unknown }).byeReason;
    const message = typeof bye === 'string' && bye !== '' && bye !== 'Server closed connection' ? `the server closed the connection: "${bye}"` : 'connection closed';
    session.failure ??= Object.assign(new Error(message), { code: 'EConnectionClosed' });
  });
  await client.connect();
  return { client, state: session };
}

/** Connects and logs in; throws AuthenticationError, ServerUnavailableError, UsageError. */
export async function openSession(o: ImapConnectionOptions): Promise<ImapSession> {
  const address = parseImapUrl(o.url);
  const errorContext = { server: address.display, user: o.user, masterUser: o.masterUser ?? null };
  const master = o.masterUser ?? null;
  let opened: { client: ImapFlow; state: { failure: unknown } };
  try {
    if (master) {
      try {
        opened = await tryConnect(clientOptions(o, address, { user: master, pass: o.password, authzid: o.user, loginMethod: 'AUTH=PLAIN' }));
      } catch (err) {
        // Only a server without AUTH=PLAIN gets the "user*master" form; a refused login is final.
        if (!/Unsupported authentication mechanism/i.test((err as Error)?.message ?? '')) throw err;
        opened = await tryConnect(clientOptions(o, address, { user: `${o.user}*${master}`, pass: o.password, loginMethod: 'LOGIN' }));
      }
    } else {
      opened = await tryConnect(clientOptions(o, address, { user: o.user, pass: o.password }));
    }
  } catch (err) {
    throw mapImapError(err, { ...errorContext, what: 'log in' });
  }
  return { client: opened.client, address, errorContext, state: opened.state };
}
