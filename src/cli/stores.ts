/**
 * Wiring for the front ends: which users, which mail location for each, and the concrete driver
 * behind it. Resolution order for a user's location: the per-user location (passwd-file userdb_mail,
 * Dovecot userdb `mail`), else --location, else (on a Dovecot host) doveconf's mail_location.
 */
import { hostname } from 'node:os';
import { parseLocation, type MailLocation } from '../storage/location.js';
import { openMailStore, openMessageSource } from '../storage/open-store.js';
import type { MessageSink, MessageSource } from '../storage/types.js';
import {
  listDovecotUsers,
  lookupDovecotUser,
  readDovecotAttachmentDir,
  readDovecotMailLocation,
  readPasswdFile,
  type UserEntry,
} from '../storage/user-directory.js';
import { StorageNotFoundError, UsageError } from '../core/errors.js';

export interface StoreFlags {
  location?: string | undefined;
  user?: string[] | undefined;
  'users-file'?: string | undefined;
  'all-users'?: boolean | undefined;
  'dovecot-config'?: string | undefined;
  'attachment-dir'?: string | undefined;
  'lock-timeout'?: number | undefined;
}

export interface ResolvedUsers {
  users: UserEntry[];
  /** Where the global location came from, for messages. */
  globalLocation: string | null;
  attachmentDir: string | null;
  /** Looks up a user not in `users` (Dovecot host mode), or null. */
  lookup: ((name: string) => Promise<UserEntry>) | null;
}

export async function resolveUsers(flags: StoreFlags, options: { requireUsers: boolean }): Promise<ResolvedUsers> {
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
    const entry = await entryFor(resolved, name);
    return openMessageSource(locationFor(entry, resolved.globalLocation), name, {
      attachmentDir: resolved.attachmentDir,
      ...(flags['lock-timeout'] !== undefined ? { lockTimeoutMs: flags['lock-timeout'] * 1000 } : {}),
    });
  };
}

async function entryFor(resolved: ResolvedUsers, name: string): Promise<UserEntry> {
  const known = resolved.users.find((u) => u.name === name);
  if (known) return known;
  if (resolved.lookup) return resolved.lookup(name);
  return { name, home: null, mailLocation: null, uid: null, gid: null };
}

export function sinkOpener(resolved: ResolvedUsers, flags: StoreFlags): (user: string) => Promise<MessageSink> {
  return async (name) => {
    const entry = await entryFor(resolved, name);
    return openMailStore(locationFor(entry, resolved.globalLocation), name, {
      create: true,
      ...(flags['lock-timeout'] !== undefined ? { lockTimeoutMs: flags['lock-timeout'] * 1000 } : {}),
    });
  };
}

export function sourceDescription(resolved: ResolvedUsers): { driver: string; location: string; host: string } {
  const first = resolved.users[0];
  const loc = first?.mailLocation ?? resolved.globalLocation ?? '';
  return { driver: loc.split(':')[0] ?? '', location: loc, host: hostname() };
}
