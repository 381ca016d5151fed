/**
 * Where users come from: explicit names, a Dovecot passwd-file (`--users-file`), or the Dovecot
 * host itself (`doveadm user '*'`, `doveconf -h mail_location`). Each user resolves to a name, a home
 * directory (for %h and ~) and an optional per-user mail location (passwd-file `userdb_mail=` or
 * doveadm's `mail` field), which overrides the global one.
 */
import { readFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { InputNotFoundError, StorageNotFoundError, UsageError, fromSystemError } from '../core/errors.js';

const execFileP = promisify(execFile);

export interface UserEntry {
  readonly name: string;
  readonly home: string | null;
  /** Per-user mail location, overriding the global one. */
  readonly mailLocation: string | null;
  readonly uid: number | null;
  readonly gid: number | null;
}

/**
 * Parse a Dovecot passwd-file: `user:password:uid:gid:gecos:home:shell:extra fields`. Extra fields are
 * space-separated `key=value`; `userdb_mail=` (or `mail=`) gives the user's mail location. Blank lines
 * and lines starting with # are ignored.
 */
export function parsePasswdFile(text: string, file = 'passwd-file'): UserEntry[] {
  const users: UserEntry[] = [];
  text.split('\n').forEach((rawLine, i) => {
    const line = rawLine.replace(/\r$/, '');
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    const f = line.split(':');
    const name = f[0]!.trim();
    if (!name) throw new UsageError(`${file}:${i + 1}: empty user name`, { path: file });
    const num = (s: string | undefined): number | null => (s && /^\d+$/.test(s) ? Number(s) : null);
    const extra = f.slice(7).join(':');
    let mailLocation: string | null = null;
    for (const tok of extra.split(/\s+/)) {
      const m = /^(?:userdb_)?mail=(.*)$/.exec(tok);
      if (m) mailLocation = m[1]!;
    }
    users.push({ name, home: f[5] ? f[5] : null, mailLocation, uid: num(f[2]), gid: num(f[3]) });
  });
  return users;
}

export async function readPasswdFile(file: string): Promise<UserEntry[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const err = fromSystemError(e, 'read the users file', { path: file });
    if (err instanceof StorageNotFoundError) throw new InputNotFoundError(`users file not found: ${file}`, { path: file, hint: 'give a Dovecot passwd-file with --users-file' });
    throw err;
  }
  return parsePasswdFile(text, file);
}

export interface DovecotHostOptions {
  /** doveconf/doveadm config file (-c). */
  readonly config?: string | null;
}

function configArgs(o: DovecotHostOptions): string[] {
  return o.config ? ['-c', o.config] : [];
}

async function run(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, { maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new InputNotFoundError(`${cmd} not found: this is not a Dovecot host`, { hint: 'give --location and --user or --users-file' });
    throw new UsageError(`${cmd} ${args.join(' ')} failed: ${(err.stderr ?? err.message).trim()}`, { cause: e });
  }
}

/** The global mail_location of the Dovecot on this host. */
export async function readDovecotMailLocation(o: DovecotHostOptions = {}): Promise<string> {
  const out = (await run('doveconf', [...configArgs(o), '-h', 'mail_location'])).trim();
  if (!out) throw new UsageError('doveconf reports an empty mail_location', { hint: 'give --location' });
  return out;
}

/** The mail_attachment_dir of the Dovecot on this host, or null. */
export async function readDovecotAttachmentDir(o: DovecotHostOptions = {}): Promise<string | null> {
  const out = (await run('doveconf', [...configArgs(o), '-h', 'mail_attachment_dir'])).trim();
  return out || null;
}

/** Look a user up through Dovecot's userdb. */
export async function lookupDovecotUser(name: string, o: DovecotHostOptions = {}): Promise<UserEntry> {
  const out = await run('doveadm', [...configArgs(o), '-f', 'flow', 'user', '-f', 'home', '-f', 'mail', '-f', 'uid', '-f', 'gid', name]).catch((e: unknown) => {
    throw new StorageNotFoundError(`user "${name}" is not known to Dovecot's userdb`, { user: name, cause: e });
  });
  const fields = new Map<string, string>();
  for (const m of out.matchAll(/(\w+)=(\S*)/g)) fields.set(m[1]!, m[2]!);
  const num = (s: string | undefined): number | null => (s && /^\d+$/.test(s) ? Number(s) : null);
  return { name, home: fields.get('home') || null, mailLocation: fields.get('mail') || null, uid: num(fields.get('uid')), gid: num(fields.get('gid')) };
}

/** All users of Dovecot's userdb (needs a userdb that can iterate). */
export async function listDovecotUsers(o: DovecotHostOptions = {}): Promise<string[]> {
  const out = await run('doveadm', [...configArgs(o), 'user', '*']);
  return out.split('\n').map((s) => s.trim()).filter(Boolean);
}
