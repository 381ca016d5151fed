/**
 * Dovecot `mail_location` parsing and variable expansion (Dovecot 2.3 syntax):
 *
 *   <driver>:<path>[:KEY=VALUE | :FLAG]...
 *
 * e.g. `maildir:~/Maildir:LAYOUT=fs:UTF-8`, `sdbox:/srv/mail/%d/%n`, `mdbox:~/mdbox:INDEX=/idx/%u`.
 * A literal ":" inside a value is written "::" (as Dovecot does). Variables: %u (user), %n (user part
 * before "@"), %d (domain after "@"), %h (home), %% and the long forms %{user} %{username}
 * %{domain} %{home}; modifiers L (lowercase) and U (uppercase) as in `%Lu`. A leading "~/" or a lone
 * "~" means the home directory.
 *
 * Options, as Dovecot 2.3 parses them (lib-storage/mailbox-list.c, mailbox_list_settings_parse_full): keys
 * are case-sensitive and an unknown key is an error. mailvault implements UTF-8, LAYOUT= (maildir++ or fs
 * for Maildir, fs for dbox), INBOX=, INDEX=, CONTROL=, ALT= and, for dbox, DIRNAME=; it accepts
 * ALTNOCHECK, INDEXCACHE=, LISTINDEX= and VOLATILEDIR=, which steer only files it does not use; it
 * refuses every other option Dovecot knows (UnsupportedLocationError), rather than read or write a store
 * laid out differently from what it assumes.
 */
import path from 'node:path';
import { UnsupportedLocationError, UsageError } from '../core/errors.js';

export type LocationDriver = 'maildir' | 'sdbox' | 'mdbox';

const SUPPORTED: Record<string, LocationDriver> = { maildir: 'maildir', sdbox: 'sdbox', dbox: 'sdbox', mdbox: 'mdbox' };
const KNOWN_UNSUPPORTED = new Set(['mbox', 'imapc', 'pop3c', 'cydir', 'raw', 'shared', 'virtual', 'fail', 'obox']);

/**
 * Options Dovecot 2.3 knows besides those parseLocation implements (mailbox_list_settings_parse_full).
 * Dovecot fails on any other key ("Unknown setting"), and so does mailvault.
 *
 * These only steer files mailvault neither reads nor writes, so they change nothing for it. Their values
 * are not expanded: they may use variables mailvault does not know (VOLATILEDIR=/tmp/%2.256Nu).
 */
const IGNORED_KEYS: Readonly<Record<string, string>> = {
  ALTNOCHECK: 'skips Dovecot\'s check of the dbox-alt-root link',
  INDEXCACHE: 'where dovecot.index.cache lives; mailvault does not read the cache',
  LISTINDEX: 'the mailbox list index, a cache mailvault does not read',
  VOLATILEDIR: 'lock files for vsize and list index updates, which mailvault does not take',
};

/** Options mailvault does not implement: with them it would read or write the wrong files. */
const UNSUPPORTED_KEYS: Readonly<Record<string, string>> = {
  MAILBOXDIR: 'mailboxes live under another directory',
  FULLDIRNAME: 'every mailbox, and its index and control directory, has another directory name',
  SUBSCRIPTIONS: 'the subscriptions file has another name',
  INDEXPVT: 'flags such as \\Seen are kept in a private index',
  BROKENCHAR: 'mailbox names are escaped on disk',
  ITERINDEX: 'mailboxes are listed from the index directory',
  'NO-NOSELECT': 'hierarchy levels without a mailbox are removed',
  'NO-FS-VALIDATION': 'mailbox names are not checked against the filesystem',
};
const UNSUPPORTED_MAILDIR_DIRNAME = 'every mailbox, INBOX included, lives in a subdirectory of that name';

const IMAP_INSTEAD = 'back this user up (or restore) through Dovecot instead: --imap with a master user';

function unsupportedKey(raw: string, key: string, effect: string): UnsupportedLocationError {
  return new UnsupportedLocationError(`mail_location "${raw}": mailvault does not implement ${key}= (with it, ${effect}), so it would read or write the wrong files`, {
    hint: IMAP_INSTEAD,
  });
}

function unsupportedLayout(raw: string, driver: LocationDriver, value: string): UnsupportedLocationError {
  const supported = driver === 'maildir' ? 'LAYOUT=maildir++ (the default) and LAYOUT=fs' : 'LAYOUT=fs (the default for dbox)';
  return new UnsupportedLocationError(`mail_location "${raw}": LAYOUT=${value} is not supported for ${driver}; mailvault reads ${supported}`, { hint: IMAP_INSTEAD });
}

function unknownKey(raw: string, key: string): UnsupportedLocationError {
  const known = ['UTF-8', 'LAYOUT', 'INBOX', 'INDEX', 'CONTROL', 'ALT', 'DIRNAME', ...Object.keys(IGNORED_KEYS), ...Object.keys(UNSUPPORTED_KEYS)];
  const meant = known.find((k) => k.toUpperCase() === key.toUpperCase() || k.replace('-', '') === key.toUpperCase());
  return new UnsupportedLocationError(`mail_location "${raw}": unknown option "${key}" (Dovecot rejects it too: "Unknown setting")`, {
    hint: meant !== undefined ? `option names are case-sensitive: write "${meant}"` : `known options: ${known.join(', ')}`,
  });
}

export interface MailLocation {
  /** The location string as given. */
  readonly raw: string;
  readonly driver: LocationDriver;
  /** Mail root (after expansion, absolute). */
  readonly root: string;
  /** Maildir: `maildir++` (default) or `fs`. dbox: `fs` (the only layout mailvault reads for it). */
  readonly layout: 'maildir++' | 'fs';
  /** Names on disk are raw UTF-8 instead of modified UTF-7 (the `UTF-8` flag). */
  readonly utf8: boolean;
  /** INBOX path, if set with INBOX=. */
  readonly inbox: string | null;
  /** Index directory root, if set with INDEX= (MEMORY means in memory only). */
  readonly index: string | null;
  /** Control directory root (uidlist, keywords, subscriptions), if set with CONTROL=. */
  readonly control: string | null;
  /** Alternate storage root (dbox ALT=). */
  readonly alt: string | null;
  /** dbox: the per-mailbox directory name (DIRNAME=, default "dbox-Mails"). Maildir refuses DIRNAME=. */
  readonly dirname: string | null;
}

export interface ExpandContext {
  readonly user: string;
  readonly home?: string | null;
}

/** Expand Dovecot %-variables and "~" in one value. */
export function expandLocationValue(value: string, ctx: ExpandContext): string {
  const at = ctx.user.indexOf('@');
  const vars: Record<string, string | null | undefined> = {
    u: ctx.user,
    user: ctx.user,
    n: at >= 0 ? ctx.user.slice(0, at) : ctx.user,
    username: at >= 0 ? ctx.user.slice(0, at) : ctx.user,
    d: at >= 0 ? ctx.user.slice(at + 1) : '',
    domain: at >= 0 ? ctx.user.slice(at + 1) : '',
    h: ctx.home,
    home: ctx.home,
  };
  const lookup = (name: string): string => {
    const v = vars[name];
    if (v === undefined) throw new UnsupportedLocationError(`mail_location variable %${name.length > 1 ? `{${name}}` : name} is not supported`, { hint: 'use %u, %n, %d, %h or their %{...} long forms' });
    if (v === null) throw new UsageError(`mail_location uses the home directory (%h or ~) but no home is known for user "${ctx.user}"`, { user: ctx.user, hint: 'give --users-file with home directories, or an absolute mail_location' });
    return v;
  };
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c !== '%') {
      out += c;
      continue;
    }
    i++;
    if (i >= value.length) throw new UsageError(`mail_location value "${value}" ends with a lone "%"`);
    if (value[i] === '%') {
      out += '%';
      continue;
    }
    let mod = '';
    while (i < value.length && /[LU]/.test(value[i]!)) mod += value[i++]!;
    let name: string;
    if (value[i] === '{') {
      const end = value.indexOf('}', i);
      if (end < 0) throw new UsageError(`mail_location value "${value}" has an unclosed %{`);
      name = value.slice(i + 1, end);
      i = end;
    } else {
      name = value[i] ?? '';
    }
    let v = lookup(name);
    if (mod.includes('L')) v = v.toLowerCase();
    if (mod.includes('U')) v = v.toUpperCase();
    out += v;
  }
  if (out === '~' || out.startsWith('~/')) {
    const home = lookup('h');
    out = home + out.slice(1);
  }
  return out;
}

/** Split at single ":" while turning "::" into a literal ":". */
function splitLocation(raw: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === ':') {
      if (raw[i + 1] === ':') {
        cur += ':';
        i++;
      } else {
        parts.push(cur);
        cur = '';
      }
    } else cur += raw[i];
  }
  parts.push(cur);
  return parts;
}

/**
 * Parse (and, with `ctx`, expand) a mail_location. Without `ctx`, variables are left unexpanded and
 * `root` may be relative; use `resolveLocation` per user.
 */
export function parseLocation(raw: string, ctx?: ExpandContext): MailLocation {
  const trimmed = raw.trim();
  if (trimmed === '') throw new UsageError('mail_location is empty', { hint: 'give --location, e.g. maildir:~/Maildir' });
  const colon = trimmed.indexOf(':');
  if (colon <= 0) {
    throw new UnsupportedLocationError(`mail_location "${raw}" has no driver prefix`, { hint: 'write it as <driver>:<path>, e.g. maildir:~/Maildir or sdbox:/srv/mail/%u' });
  }
  const scheme = trimmed.slice(0, colon).toLowerCase();
  const driver = SUPPORTED[scheme];
  if (!driver) {
    const known = KNOWN_UNSUPPORTED.has(scheme) ? 'is a Dovecot storage that mailvault does not read' : 'is not a known storage driver';
    throw new UnsupportedLocationError(`mail_location "${raw}": "${scheme}" ${known}`, { hint: 'supported: maildir, sdbox (dbox), mdbox; for any IMAP server use --imap' });
  }
  const [rootRaw = '', ...rest] = splitLocation(trimmed.slice(colon + 1));
  const expand = (v: string): string => (ctx ? expandLocationValue(v, ctx) : v);
  const root = expand(rootRaw);
  if (root === '') throw new UsageError(`mail_location "${raw}" has an empty path`);
  let layout: MailLocation['layout'] = driver === 'maildir' ? 'maildir++' : 'fs';
  let utf8 = false;
  let inbox: string | null = null;
  let index: string | null = null;
  let control: string | null = null;
  let alt: string | null = null;
  let dirname: string | null = null;
  for (const part of rest) {
    if (part === '') continue;
    // As mailbox_list_settings_parse_full: the flag UTF-8 is the whole part; otherwise KEY[=VALUE], the
    // key matched case-sensitively.
    if (part === 'UTF-8') {
      utf8 = true;
      continue;
    }
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    switch (key) {
      case 'LAYOUT': {
        const l = value.toLowerCase(); // Dovecot looks list drivers up with strcasecmp
        if (l === 'fs' || (l === 'maildir++' && driver === 'maildir')) layout = l;
        else throw unsupportedLayout(raw, driver, value);
        break;
      }
      case 'INBOX':
        inbox = expand(value);
        break;
      case 'INDEX':
        if (value !== 'MEMORY' && value.toUpperCase() === 'MEMORY') {
          // Dovecot compares with strcmp: "memory" would be a directory relative to the user's home.
          throw new UnsupportedLocationError(`mail_location "${raw}": INDEX=${value} is not INDEX=MEMORY (Dovecot matches MEMORY case-sensitively and takes "${value}" as a relative directory)`, {
            hint: 'write INDEX=MEMORY, or give an absolute index directory',
          });
        }
        index = value === 'MEMORY' ? 'MEMORY' : expand(value);
        break;
      case 'CONTROL':
        control = expand(value);
        break;
      case 'ALT':
        // dbox alternate storage; Dovecot's Maildir has none and ignores it, and so does mailvault.
        alt = expand(value);
        break;
      case 'DIRNAME':
        if (driver !== 'maildir') {
          // Empty means the default, "dbox-Mails" (dbox_storage_get_list_settings).
          dirname = value === '' ? null : value;
          break;
        }
        throw unsupportedKey(raw, key, UNSUPPORTED_MAILDIR_DIRNAME);
      case 'MAILBOXDIR':
        // Empty is the default ("mailboxes" for dbox, none for Maildir); any other value is refused below.
        if (value === '') break;
        throw unsupportedKey(raw, key, UNSUPPORTED_KEYS[key]!);
      default:
        if (Object.hasOwn(IGNORED_KEYS, key)) break;
        if (Object.hasOwn(UNSUPPORTED_KEYS, key)) throw unsupportedKey(raw, key, UNSUPPORTED_KEYS[key]!);
        throw unknownKey(raw, key);
    }
  }
  return {
    raw,
    driver,
    root: ctx ? path.resolve(root) : root,
    layout,
    utf8,
    inbox,
    index,
    control,
    alt,
    dirname,
  };
}

/** Render a location back into Dovecot syntax (for messages and dump headers). */
export function formatLocation(loc: MailLocation): string {
  const esc = (v: string): string => v.replaceAll(':', '::');
  const parts = [`${loc.driver}:${esc(loc.root)}`];
  if (loc.driver === 'maildir' && loc.layout !== 'maildir++') parts.push(`LAYOUT=${loc.layout}`);
  if (loc.utf8) parts.push('UTF-8');
  if (loc.inbox) parts.push(`INBOX=${esc(loc.inbox)}`);
  if (loc.index) parts.push(`INDEX=${esc(loc.index)}`);
  if (loc.control) parts.push(`CONTROL=${esc(loc.control)}`);
  if (loc.alt) parts.push(`ALT=${esc(loc.alt)}`);
  if (loc.dirname) parts.push(`DIRNAME=${esc(loc.dirname)}`);
  return parts.join(':');
}
