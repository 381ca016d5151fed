/**
 * list: the table of contents of a dump as editable text (pg_restore -l style) or as items for JSON.
 * The text form is specified in formats/list-file.md: `;` comment lines, then one line per message
 * starting with its stable entry id; `restore --use-list` reads the ids back.
 */
import type { Readable } from 'node:stream';
import { readDump } from '../archive/reader.js';
import type { HeaderRecord, MailboxRecord, MessageSummary, TrailerRecord, UserRecord } from '../archive/records.js';
import { mailboxMatcher, userMatcher, type Selection } from './selection.js';

export type ListItem =
  | { kind: 'header'; header: HeaderRecord }
  | { kind: 'user'; id: number; user: UserRecord }
  | { kind: 'mailbox'; id: number; mailbox: MailboxRecord }
  | {
      kind: 'message';
      id: number;
      user: string;
      mailbox: string;
      uid: number;
      guid: string | null;
      internalDate: string;
      size: number;
      flags: readonly string[];
      keywords: readonly string[];
      summary: MessageSummary;
    }
  | { kind: 'trailer'; trailer: TrailerRecord }
  /** After a mailbox's entries, for incremental dumps: what the mailbox adds and changes. */
  | { kind: 'mailbox-changes'; user: string; mailbox: string; added: number; flagEntries: number; present: number | null; reset: boolean };

/** Items of a dump in dump order, filtered by user and mailbox. Bodies are checked but not kept. */
export async function* listDump(input: Readable, selection: Selection = {}, signal?: AbortSignal): AsyncIterable<ListItem> {
  const wantUser = userMatcher(selection.users);
  const wantMailbox = mailboxMatcher(selection.mailboxes);
  // Entry ids: 1-based over users, mailboxes and messages in dump order (formats/dump-v1.md).
  let id = 0;
  let incremental = false;
  let open: { user: string; mailbox: string; added: number; flagEntries: number; present: number | null; reset: boolean; shown: boolean } | null = null;
  const close = (): ListItem | null => {
    const o = open;
    open = null;
    if (!o || !incremental || !o.shown) return null;
    return { kind: 'mailbox-changes', user: o.user, mailbox: o.mailbox, added: o.added, flagEntries: o.flagEntries, present: o.present, reset: o.reset };
  };
  for await (const e of readDump(input, { wantBody: () => false, ...(signal ? { signal } : {}) })) {
    switch (e.type) {
      case 'header':
        incremental = e.record.kind === 'incremental';
        yield { kind: 'header', header: e.record };
        break;
      case 'user': {
        const c = close();
        if (c) yield c;
        id++;
        if (wantUser(e.record.user)) yield { kind: 'user', id, user: e.record };
        break;
      }
      case 'mailbox': {
        const c = close();
        if (c) yield c;
        id++;
        const shown = wantUser(e.record.user) && wantMailbox(e.record.name);
        open = { user: e.record.user, mailbox: e.record.name, added: 0, flagEntries: 0, present: e.record.uidSet !== undefined ? countUidSet(e.record.uidSet) : null, reset: e.record.reset === true, shown };
        if (shown) yield { kind: 'mailbox', id, mailbox: e.record };
        break;
      }
      case 'flags':
        if (open) open.flagEntries += e.record.entries.length;
        break;
      case 'message': {
        id = e.id;
        const r = e.record;
        if (open) open.added++;
        if (!wantUser(r.user) || !wantMailbox(r.mailbox)) break;
        if (selection.uids && !selection.uids.has(r.uid)) break;
        yield { kind: 'message', id: e.id, user: r.user, mailbox: r.mailbox, uid: r.uid, guid: r.guid, internalDate: r.internalDate, size: r.size, flags: r.flags, keywords: r.keywords, summary: r.summary };
        break;
      }
      case 'trailer': {
        const c = close();
        if (c) yield c;
        yield { kind: 'trailer', trailer: e.record };
        break;
      }
    }
  }
}

/** Number of UIDs in an IMAP sequence-set text ("1:5,7"). */
function countUidSet(text: string): number {
  let n = 0;
  for (const part of text.split(',')) {
    if (part === '') continue;
    const [a, b] = part.split(':').map(Number);
    n += b === undefined ? 1 : Math.abs(b - a!) + 1;
  }
  return n;
}
/** A word of the list-file grammar (formats/list-file.md): bare if safe, else quoted with escapes. */
export function listWord(text: string): string {
  if (text !== '' && !/[\s";\\\u0000-\u001f\u007f]/u.test(text)) return text;
  let out = '"';
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + '"';
}

/** The lines of list text for an item: comment lines for header and trailer, one entry line otherwise. */
export function formatListItem(item: ListItem): string[] {
  switch (item.kind) {
    case 'header': {
      const h = item.header;
      return [
        ';',
        '; mailvault dump list',
        `; format: ${h.format} ${h.version}, written by ${h.creator}`,
        `; created: ${h.created}`,
        `; run: ${h.runId} (${h.kind}${h.base ? `, follows ${h.base.runId}` : ''})`,
        `; source: ${h.source.driver} ${h.source.location} on ${h.source.host}`,
        ';',
        '; <id>; user <user> | mailbox <user> <mailbox> | message <user> <mailbox> <uid> <internaldate> <size> <flags> <from> <subject>',
        '; Delete lines or comment them out with ";", then: mailvault restore DUMP --use-list FILE ...',
        ';',
      ];
    }
    case 'user':
      return [`${item.id}; user ${listWord(item.user.user)}`];
    case 'mailbox':
      return [`${item.id}; mailbox ${listWord(item.mailbox.user)} ${listWord(item.mailbox.name)}`];
    case 'message': {
      const flags = [...item.flags, ...item.keywords].join(',') || '-';
      return [`${item.id}; message ${listWord(item.user)} ${listWord(item.mailbox)} ${item.uid} ${item.internalDate} ${item.size} ${flags} ${listWord(item.summary.from)} ${listWord(item.summary.subject)}`];
    }
    case 'mailbox-changes': {
      const parts = [`${item.added} new messages`, `${item.flagEntries} flag updates`];
      if (item.present !== null) parts.push(`${item.present} messages present`);
      if (item.reset) parts.push('sent whole again (new mailbox or UIDVALIDITY changed)');
      return [`;   incremental: ${listWord(item.user)} ${listWord(item.mailbox)}: ${parts.join(', ')}; messages of the base that are not present were expunged`];
    }
    case 'trailer': {
      const c = item.trailer.counts;
      return [';', `; complete: ${item.trailer.completed}; counts: ${c.users} users, ${c.mailboxes} mailboxes, ${c.messages} messages (${c.messageBytes} bytes)`];
    }
  }
}
