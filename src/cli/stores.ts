/**
 * Wiring for the front ends: which users, which mail location for each, and the concrete driver
 * behind it. Resolution order for a user's location: the per-user location (passwd-file userdb_mail,
 * Dovecot userdb `mail`), else --location, else (on a Dovecot host) doveconf's mail_location.
 * With --imap every user is reached through that IMAP server instead (see imapTargetOf).
 */
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { ImapConnectionOptions } from '../storage/imap/index.js';
import { parseLocation, type MailLocation } from '../storage/location.js';
import { openMailStore, openMessageSource } from '../storage/open-store.js';
import type { MailStore, MessageSink, MessageSource } from '../storage/types.js';
import {
  listDovecotUsers,
  lookupDovecotUser,
  readDovecotAttachmentDir,
  readDovecotMailLocation,
  readPasswdFile,
  type UserEntry,
} from '../storage/user-directory.js';
import { fromSystemError, InputNotFoundError, ServerUnavailableError, StorageNotFoundError, UsageError } from '../core/errors.js';

export interface StoreFlags {
  location?: string | undefined;
  user?: string[] | undefined;
  'users-file'?: string | undefined;
  'all-users'?: boolean | undefined;
  'dovecot-config'?: string | undefined;
  'attachment-dir'?: string | undefined;
  'lock-timeout'?: number | undefined;
  'read-only'?: boolean | undefined;
  imap?: string | undefined;
  'master-user'?: string | undefined;
  'password-file'?: string | undefined;
  'password-env'?: string | undefined;
  'imap-insecure'?: boolean | undefined;
  'imap-ca'?: string | undefined;
}

/** An IMAP server every user is reached through (--imap), with the credentials to log in. */
export interface ImapTarget {
  readonly url: string;
  /** imap://host:port, without credentials. */
  readonly display: string;
  readonly masterUser: string | null;
  readonly password: string;
  readonly tls: ImapConnectionOptions['tls'];
}

export interface ResolvedUsers {
  users: UserEntry[];
  /** Where the global location came from, for messages. */
  globalLocation: string | null;
  attachmentDir: string | null;
  /** Looks up a user not in `users` (Dovecot host mode), or null. */
  lookup: ((name: string) => Promise<UserEntry>) | null;
  /** Set with --imap: every user is opened through this server. */
  imap?: ImapTarget;
}

/** The environment variable read for the IMAP password when neither --password-file nor --password-env is given. */
export const DEFAULT_PASSWORD_ENV = 'MAILVAULT_IMAP_PASSWORD';

/** Reads --imap, --master-user, the password and the TLS flags; null without --imap. */
export async function imapTargetOf(flags: StoreFlags): Promise<ImapTarget | null> {
  if (!flags.imap) {
    const stray = (['master-user', 'password-file', 'password-env', 'imap-insecure', 'imap-ca'] as const).find((f) => flags[f] !== undefined && flags[f] !== false);
    if (stray) throw new UsageError(`--${stray} is only meaningful with --imap`, { hint: 'add --imap imap://HOST:PORT' });
    return null;
  }
  // Loaded only for --imap: a run on files does not pay for the IMAP driver's modules at start-up.
  const { parseImapUrl, readPassword } = await import('../storage/imap/index.js');
  const address = parseImapUrl(flags.imap);
  const password = await readPassword(flags['password-file'] !== undefined ? { file: flags['password-file'] } : { env: flags['password-env'] ?? DEFAULT_PASSWORD_ENV });
  let ca: Buffer | undefined;
  if (flags['imap-ca']) {
    try {
      ca = await readFile(flags['imap-ca']);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new InputNotFoundError(`the CA file ${flags['imap-ca']} does not exist`, { path: flags['imap-ca'] });
      throw fromSystemError(err, 'read the CA file', { path: flags['imap-ca'] });
    }
    // A key, or a certificate in DER form, trusts nothing: Node would then call every server untrusted.
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) {
      throw new UsageError(`the CA file ${flags['imap-ca']} holds no certificate in PEM form (no "-----BEGIN CERTIFICATE-----" line)`, {
        path: flags['imap-ca'],
        hint: 'give the CA certificate (or the server certificate itself, if it is self-signed) in PEM form; convert DER with "openssl x509 -inform der -in FILE -out FILE.pem"',
      });
    }
  }
  const tls = flags['imap-insecure'] || ca ? { ...(flags['imap-insecure'] ? { rejectUnauthorized: false } : {}), ...(ca ? { ca } : {}) } : undefined;
  return { url: flags.imap, display: address.display, masterUser: flags['master-user'] ?? null, password, tls };
}

/** Connection attempts refused or timed out are retried (nothing was sent yet, so it is safe). */
const CONNECT_ATTEMPTS = 3;
const CONNECT_BACKOFF_MS = 1000;

/**
 * Opens `user`'s store on the IMAP server. A server that cannot be reached is tried CONNECT_ATTEMPTS
 * times with a growing pause (safe: nothing was sent); a refused login is final (AuthenticationError).
 */
export async function openImapUser(target: ImapTarget, user: string): Promise<MailStore> {
  const { openImapStore } = await import('../storage/imap/index.js');
  for (let attempt = 1; ; attempt++) {
    try {
      return await openImapStore({ url: target.url, user, masterUser: target.masterUser, password: target.password, ...(target.tls === undefined ? {} : { tls: target.tls }) });
    } catch (err) {
      if (!(err instanceof ServerUnavailableError) || attempt >= CONNECT_ATTEMPTS) throw err;
      await new Promise((r) => setTimeout(r, CONNECT_BACKOFF_MS * attempt));
    }
  }
}

export async function resolveUsers(flags: StoreFlags, options: { requireUsers: boolean }): Promise<ResolvedUsers> {
  const imap = await imapTargetOf(flags);
  if (imap) {
    if (flags['all-users']) throw new UsageError('--all-users cannot be used with --imap: IMAP has no list of users', { hint: 'give --user NAME for each user (repeatable)' });
    const users = (flags.user ?? []).map((name): UserEntry => ({ name, home: null, mailLocation: null, uid: null, gid: null }));
    if (options.requireUsers && users.length === 0) throw new UsageError('no users selected', { hint: 'give --user NAME (repeatable)' });
    return { users, globalLocation: null, attachmentDir: null, lookup: null, imap };
  }
  const explicit = flags.user ?? [];
  const dovecotHost = { config: flags['dovecot-config'] ?? null };
  let directory: UserEntry[] | null = null;
  if (flags['users-file']) directory = await readPasswdFile(flags['users-file']);

  let globalLocation = flags.location ?? null;
  let attachmentDir = flags['attachment-dir'] ?? null;
  const onDovecotHost = !globalLocation && !directory;
  if (onDovecotHost && (explicit.length > 0 || flags['all-users'] || !options.requireUsers)) {
    globalLocation = await readDovecotMailLocation(dovecotHost);
    if (!attachmentDir) attachmentDir = await readDovecotAttachmentDir(dovecotHost).catch(() => null);
  }

  let users: UserEntry[];
  if (flags['all-users']) {
    if (explicit.length > 0) throw new UsageError('give either --user or --all-users, not both');
    if (directory) users = directory;
    else if (onDovecotHost) users = await Promise.all((await listDovecotUsers(dovecotHost)).map((u) => lookupDovecotUser(u, dovecotHost)));
    else throw new UsageError('--all-users needs --users-file, or a Dovecot host to ask (no --location)', { hint: 'give --users-file /etc/dovecot/users' });
  } else {
    users = [];
    for (const name of explicit) {
      const fromFile = directory?.find((u) => u.name === name);
      if (directory && !fromFile) throw new StorageNotFoundError(`user "${name}" is not in ${flags['users-file']}`, { user: name });
      if (fromFile) users.push(fromFile);
      else if (onDovecotHost) users.push(await lookupDovecotUser(name, dovecotHost));
      else users.push({ name, home: null, mailLocation: null, uid: null, gid: null });
    }
  }
  if (options.requireUsers && users.length === 0) {
    throw new UsageError('no users selected', { hint: 'give --user NAME (repeatable), --users-file FILE with --all-users, or --all-users on a Dovecot host' });
  }
  const usersFile = flags['users-file'];
  const lookup = directory
    ? async (name: string): Promise<UserEntry> => {
        const found = directory!.find((u) => u.name === name);
        if (!found) throw new StorageNotFoundError(`user "${name}" is not in ${usersFile}`, { user: name, hint: 'add the user to the users file, or give --location' });
        return found;
      }
    : onDovecotHost
      ? (name: string) => lookupDovecotUser(name, dovecotHost)
      : null;
  return { users, globalLocation, attachmentDir, lookup };
}

export function locationFor(user: UserEntry, globalLocation: string | null): MailLocation {
  const raw = user.mailLocation ?? globalLocation;
  if (!raw) throw new UsageError(`no mail location for user "${user.name}"`, { user: user.name, hint: 'give --location, e.g. --location maildir:/srv/mail/%u/Maildir' });
  return parseLocation(raw, { user: user.name, home: user.home });
}

export function sourceOpener(resolved: ResolvedUsers, flags: StoreFlags): (user: string) => Promise<MessageSource> {
  return async (name) => {
    if (resolved.imap) return openImapUser(resolved.imap, name);
    const entry = await entryFor(resolved, name);
    return openMessageSource(locationFor(entry, resolved.globalLocation), name, {
      attachmentDir: resolved.attachmentDir,
      ...(flags['lock-timeout'] !== undefined ? { lockTimeoutMs: flags['lock-timeout'] * 1000 } : {}),
      ...(flags['read-only'] === true ? { readOnly: true } : {}),
    });
  };
}

async function entryFor(resolved: ResolvedUsers, name: string): Promise<UserEntry> {
  const known = resolved.users.find((u) => u.name === name);
  if (known) return known;
  if (resolved.lookup) return resolved.lookup(name);
  return { name, home: null, mailLocation: null, uid: null, gid: null };
}

export function sinkOpener(resolved: ResolvedUsers, flags: StoreFlags, options: { readonly dryRun?: boolean } = {}): (user: string) => Promise<MessageSink> {
  return async (name) => {
    if (resolved.imap) return openImapUser(resolved.imap, name);
    const entry = await entryFor(resolved, name);
    return openMailStore(locationFor(entry, resolved.globalLocation), name, {
      // A dry run creates nothing, not even the mail root.
      ...(options.dryRun === true ? { absentOk: true } : { create: true }),
      ...(flags['lock-timeout'] !== undefined ? { lockTimeoutMs: flags['lock-timeout'] * 1000 } : {}),
    });
  };
}

export function sourceDescription(resolved: ResolvedUsers): { driver: string; location: string; host: string } {
  if (resolved.imap) return { driver: 'imap', location: resolved.imap.display, host: hostname() };
  const first = resolved.users[0];
  const loc = first?.mailLocation ?? resolved.globalLocation ?? '';
  return { driver: loc.split(':')[0] ?? '', location: loc, host: hostname() };
}
