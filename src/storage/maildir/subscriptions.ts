/**
 * The `subscriptions` file (lib-storage/list/subscription-file.c), same for Maildir and dbox:
 *
 * - Version 2: header "V\t2\n\n", then one line per subscription: the storage name split at the list
 *   separator, parts joined by TAB, each part escaped (\001 -> \0011, TAB -> \001t, CR -> \001r,
 *   LF -> \001n; \0010 reads as NUL).
 * - Version 1 (no header): one storage name per line, list separator inside; one trailing separator
 *   is ignored. Dovecot keeps writing v1 to a v1 file; a new file is v2.
 * - Updates go through `subscriptions.lock` (O_EXCL; the new content is written into the lock, which is
 *   renamed over the file). Timeout 120 s, stale after 30 s without change.
 *
 * Storage names are converted by the caller (mUTF-7 unless UTF-8); this module only handles parts.
 */
import fs from 'node:fs';
import { fromSystemError } from '../../core/errors.js';
import { acquireDotlock } from './lock.js';

export const SUBSCRIPTIONS_V2_HEADER = 'V\t2\n\n';

export function tabEscape(s: string): string {
  return s.replace(/[\x01\t\r\n]/g, (c) => (c === '\x01' ? '\x011' : c === '\t' ? '\x01t' : c === '\r' ? '\x01r' : '\x01n'));
}

export function tabUnescape(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '\x01') {
      out += c;
      continue;
    }
    const n = s[++i];
    if (n === undefined) break;
    out += n === '0' ? '\0' : n === '1' ? '\x01' : n === 't' ? '\t' : n === 'r' ? '\r' : n === 'n' ? '\n' : n;
  }
  return out;
}

export interface SubscriptionsFile {
  readonly version: 1 | 2;
  /** Each subscription as its storage-name parts (already unescaped). */
  readonly entries: string[][];
  /** The raw lines, for exact rewrites. */
  readonly lines: string[];
}

/** Parse file content. `listSep` splits v1 names ("." Maildir++, "/" fs). */
export function parseSubscriptions(text: string, listSep: string): SubscriptionsFile {
  const v2 = text.startsWith(SUBSCRIPTIONS_V2_HEADER);
  const body = v2 ? text.slice(SUBSCRIPTIONS_V2_HEADER.length) : text;
  const lines = body.split('\n').filter((l) => l !== '');
  const entries = lines.map((l) => (v2 ? l.split('\t').map(tabUnescape) : stripOneTrailing(l, listSep).split(listSep)));
  return { version: v2 ? 2 : 1, entries, lines };
}

/**
 * A v1 entry may end with the separator ("Work."): old Dovecot versions and other software wrote them,
 * and Dovecot drops one trailing separator when it reads the file
 * (list/mailbox-list-subscriptions.c, mailbox_list_subscription_fill_one). Dovecot strips the namespace
 * separator, which mailvault does not know; the list separator is that separator under Dovecot's
 * default namespace settings and in LAYOUT=fs with separator "/".
 */
function stripOneTrailing(line: string, sep: string): string {
  return line.length > sep.length && line.endsWith(sep) ? line.slice(0, -sep.length) : line;
}

/** The line for a subscription given as storage-name parts. */
export function formatSubscriptionLine(parts: readonly string[], version: 1 | 2, listSep: string): string {
  return version === 2 ? parts.map(tabEscape).join('\t') : parts.join(listSep);
}

/** Read the file; null if it does not exist. */
export async function readSubscriptions(path: string, listSep: string): Promise<SubscriptionsFile | null> {
  try {
    return parseSubscriptions(await fs.promises.readFile(path, 'utf8'), listSep);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fromSystemError(e, 'read the subscriptions file', { path });
  }
}

export interface AddSubscriptionsOptions {
  readonly listSep: string;
  readonly hostname: string;
  readonly lockTimeoutMs: number;
  readonly mode: number;
  readonly owner: { uid: number; gid: number } | null;
  readonly user?: string;
}

/**
 * Add subscriptions (storage-name parts each) to `path` under subscriptions.lock, keeping the file's
 * format (v2 for a new file). Existing lines are kept byte for byte; duplicates are not added.
 */
export async function addSubscriptions(path: string, subscriptions: readonly (readonly string[])[], options: AddSubscriptionsOptions): Promise<void> {
  const lock = await acquireDotlock(path, {
    timeoutMs: options.lockTimeoutMs,
    staleMs: 30_000,
    hostname: options.hostname,
    writePid: false,
    mode: options.mode,
    owner: options.owner,
    ...(options.user === undefined ? {} : { user: options.user }),
  });
  try {
    const current = await readSubscriptions(path, options.listSep);
    const version = current?.version ?? 2;
    const lines = [...(current?.lines ?? [])];
    const have = new Set(lines);
    let changed = false;
    for (const parts of subscriptions) {
      const line = formatSubscriptionLine(parts, version, options.listSep);
      if (line === '' || have.has(line)) continue;
      have.add(line);
      lines.push(line);
      changed = true;
    }
    if (!changed) return;
    const text = (version === 2 ? SUBSCRIPTIONS_V2_HEADER : '') + lines.map((l) => `${l}\n`).join('');
    await lock.replaceWith(text);
  } catch (e) {
    throw fromSystemError(e, 'update the subscriptions file', { path, ...(options.user === undefined ? {} : { user: options.user }) });
  } finally {
    await lock.release();
  }
}
