/**
 * Turns what imapflow throws into mailvault's typed errors (src/core/errors.ts). imapflow marks a
 * server's answer with `responseStatus` (NO/BAD), `serverResponseCode` (the bracketed RFC 5530 code,
 * e.g. OVERQUOTA) and `responseText`; socket, TLS and DNS failures keep Node's `code` (ECONNREFUSED,
 * ...); its own connection failures use codes like NoConnection and CONNECT_TIMEOUT.
 */
import {
  AuthenticationError,
  isMailvaultError,
  PermissionDeniedError,
  QuotaExceededError,
  ServerRejectedError,
  ServerUnavailableError,
  StorageNotFoundError,
  UnexpectedError,
  UsageError,
  type MailvaultError,
} from '../../core/errors.js';

/** The fields of an imapflow error we read (all optional: anything may be thrown). */
interface ImapflowErrorFields {
  message?: string;
  code?: string;
  responseStatus?: string;
  serverResponseCode?: string;
  responseText?: string;
  response?: unknown;
  authenticationFailed?: boolean;
  name?: string;
}

export interface ImapErrorContext {
  /** What was being done, as a verb phrase: "append a message to", "list the mailboxes of". */
  readonly what: string;
  /** imap://host:port the store talks to. */
  readonly server: string;
  readonly user: string;
  readonly masterUser?: string | null;
  readonly mailbox?: string;
  readonly uid?: number;
}

/** The hint every availability error carries: a rerun is safe because restores are idempotent. */
export const RETRY_HINT = 'check the server; run the same command again: nothing is duplicated';

const NETWORK_CODES = new Set([
  'NoConnection',
  'EConnectionClosed',
  'StateLogout',
  'ClosedAfterConnectText',
  'ClosedAfterConnectTLS',
  'CONNECT_TIMEOUT',
  'GREETING_TIMEOUT',
  'UPGRADE_TIMEOUT',
  'ETIMEOUT',
  'ETHROTTLE',
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** Node's TLS verification failures: a trust problem to fix, not a server to wait for. */
const TLS_TRUST_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Response codes meaning "try again later" (RFC 5530). */
const TEMPORARY_RESPONSE_CODES = new Set(['UNAVAILABLE', 'SERVERBUG', 'INUSE']);

function fields(err: unknown): ImapflowErrorFields {
  return typeof err === 'object' && err !== null ? (err as ImapflowErrorFields) : { message: String(err) };
}

/** The bracketed response code of a raw tagged response (what exec() rejects with). */
function responseCodeOf(response: unknown): string | undefined {
  const attrs = (response as { attributes?: { section?: { value?: unknown }[] }[] } | undefined)?.attributes;
  const value = Array.isArray(attrs) ? attrs[0]?.section?.[0]?.value : undefined;
  return typeof value === 'string' ? value : undefined;
}

/** The human text of a raw tagged response. */
function responseTextOf(response: unknown): string | undefined {
  const attrs = (response as { attributes?: { type?: string; value?: unknown }[] } | undefined)?.attributes;
  if (!Array.isArray(attrs)) return undefined;
  const t = attrs.filter((a) => a?.type === 'TEXT' && typeof a.value === 'string').map((a) => a.value as string);
  return t.length > 0 ? t.join(' ') : undefined;
}

function serverText(f: ImapflowErrorFields): string {
  const text = f.responseText ?? (typeof f.response === 'string' ? f.response : responseTextOf(f.response)) ?? f.message ?? '';
  return text.replace(/\s+/g, ' ').trim();
}

function who(ctx: ImapErrorContext): string {
  return ctx.masterUser ? `user "${ctx.user}" through master user "${ctx.masterUser}"` : `user "${ctx.user}"`;
}

/** True if `err` (from imapflow or Node) means the connection failed or went away. */
export function isConnectionFailure(err: unknown): boolean {
  const f = fields(err);
  if (f.code !== undefined && NETWORK_CODES.has(f.code)) return true;
  return f.responseStatus === 'BYE';
}

/** Maps any error from an IMAP exchange to a MailvaultError (MailvaultErrors pass unchanged). */
export function mapImapError(err: unknown, ctx: ImapErrorContext): MailvaultError {
  if (isMailvaultError(err)) return err;
  const f = fields(err);
  const on = `${ctx.what}${ctx.mailbox === undefined ? '' : ` mailbox "${ctx.mailbox}"`}${ctx.uid === undefined ? '' : ` (UID ${ctx.uid})`} on ${ctx.server} as ${who(ctx)}`;
  const context = { user: ctx.user, ...(ctx.mailbox === undefined ? {} : { mailbox: ctx.mailbox }), ...(ctx.uid === undefined ? {} : { uid: ctx.uid }), cause: err };
  const code = (f.serverResponseCode ?? responseCodeOf(f.response) ?? '').toUpperCase();
  const text = serverText(f);

  const loginRefused = f.authenticationFailed || f.name === 'AuthenticationFailure';
  // A login refused for now, not for its credentials: RFC 5530 LIMIT (Dovecot: "Maximum number of
  // connections from user+IP exceeded", mail_max_userip_connections), UNAVAILABLE, INUSE.
  if (loginRefused && (code === 'LIMIT' || TEMPORARY_RESPONSE_CODES.has(code))) {
    return new ServerUnavailableError(`cannot log in to ${ctx.server} as ${who(ctx)}: the server refused the login for now (${code}${text ? `: ${text}` : ''})`, {
      ...context,
      hint:
        code === 'LIMIT'
          ? `the user has as many sessions as the server allows (Dovecot: mail_max_userip_connections): wait until some end, or raise the limit; then run the same command again: nothing is duplicated`
          : RETRY_HINT,
    });
  }
  if (loginRefused || code === 'AUTHENTICATIONFAILED' || code === 'AUTHORIZATIONFAILED') {
    return new AuthenticationError(`cannot log in to ${ctx.server} as ${who(ctx)}: the server refused the login${text ? ` (${text})` : ''}`, {
      ...context,
      hint: ctx.masterUser
        ? `check the master user's name and password (the password file), that "${ctx.user}" exists, and that the server allows master logins (Dovecot: a passdb with master = yes)`
        : `check the user name and the password (the password file)`,
    });
  }
  if (code === 'OVERQUOTA') {
    return new QuotaExceededError(`cannot ${on}: quota exceeded${text ? ` (server: ${text})` : ''}`, {
      ...context,
      hint: `free space in the mailbox of "${ctx.user}" or raise the quota, then run the same command again: messages already restored are not duplicated`,
    });
  }
  if (code === 'NONEXISTENT') {
    return new StorageNotFoundError(`cannot ${on}: the mailbox does not exist${text ? ` (server: ${text})` : ''}`, { ...context, hint: 'check the mailbox name' });
  }
  // OpenSSL's "wrong version number": the other end answered TLS with plain text (imaps:// to port 143).
  if (/wrong version number/i.test(f.message ?? '') || f.code === 'ERR_SSL_WRONG_VERSION_NUMBER') {
    return new UsageError(`cannot ${on}: the server does not speak TLS on this port (its answer is not TLS)`, {
      ...context,
      hint: 'use imaps:// with the server\'s implicit-TLS port (993 by default), or imap:// for its STARTTLS port (143)',
    });
  }
  if (f.code !== undefined && TLS_TRUST_CODES.has(f.code)) {
    return new PermissionDeniedError(`cannot ${on}: the server's TLS certificate is not trusted (${f.message ?? f.code})`, {
      ...context,
      hint: 'give the CA that signed the server certificate with --imap-ca FILE (PEM); --imap-insecure skips the check, for test servers only',
    });
  }
  if (isConnectionFailure(err) || TEMPORARY_RESPONSE_CODES.has(code)) {
    const why = f.code === 'ECONNREFUSED' ? 'connection refused' : f.code === 'CONNECT_TIMEOUT' || f.code === 'GREETING_TIMEOUT' || f.code === 'ETIMEDOUT' ? 'timed out' : text || f.code || 'connection lost';
    return new ServerUnavailableError(`cannot ${on}: server unavailable (${why})`, { ...context, hint: RETRY_HINT });
  }
  if (f.responseStatus === 'NO' || f.responseStatus === 'BAD') {
    return new ServerRejectedError(`cannot ${on}: the server answered ${f.responseStatus}${code ? ` [${code}]` : ''}: ${text || '(no text)'}`, context);
  }
  return new UnexpectedError(`cannot ${on}: ${f.message ?? String(err)}`, context);
}
