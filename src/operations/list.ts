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
  | { kind: 'user'; user: UserRecord }
  | { kind: 'mailbox'; mailbox: MailboxRecord }
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
  | { kind: 'trailer'; trailer: TrailerRecord };

/** Items of a dump in dump order, filtered by user and mailbox. Bodies are checked but not kept. */
export async function* listDump(input: Readable, selection: Selection = {}, signal?: AbortSignal): AsyncIterable<ListItem> {
  const wantUser = userMatcher(selection.users);
  const wantMailbox = mailboxMatcher(selection.mailboxes);
  for await (const e of readDump(input, { wantBody: () => false, ...(signal ? { signal } : {}) })) {
    switch (e.type) {
      case 'header':
        yield { kind: 'header', header: e.record };
        break;
      case 'user':
        if (wantUser(e.record.user)) yield { kind: 'user', user: e.record };
        break;
      case 'mailbox':
        if (wantUser(e.record.user) && wantMailbox(e.record.name)) yield { kind: 'mailbox', mailbox: e.record };
        break;
      case 'message': {
        const r = e.record;
        if (!wantUser(r.user) || !wantMailbox(r.mailbox)) break;
        if (selection.uids && !selection.uids.has(r.uid)) break;
        yield { kind: 'message', id: e.id, user: r.user, mailbox: r.mailbox, uid: r.uid, guid: r.guid, internalDate: r.internalDate, size: r.size, flags: r.flags, keywords: r.keywords, summary: r.summary };
        break;
      }
      case 'trailer':
        yield { kind: 'trailer', trailer: e.record };
        break;
    }
  }
}

const q = (s: string): string => JSON.stringify(s);

/** One line of list text for an item (comment lines for everything but messages). */
export function formatListItem(item: ListItem): string[] {
  switch (item.kind) {
    case 'header': {
      const h = item.header;
      return [
        ';',
        '; mailvault dump',
        `; format: ${h.format} version ${h.version}, written by ${h.creator}`,
        `; created: ${h.created}`,
        `; run: ${h.runId} (${h.kind}${h.base ? `, follows ${h.base.runId}` : ''})`,
        `; source: ${h.source.driver} ${h.source.location} on ${h.source.host}`,
        ';',
        '; Lines: <id>; <user> <mailbox> <uid> <internaldate> <size> <flags> <from> <subject>',
        '; Delete or comment out (;) lines, then: mailvault restore DUMP --use-list FILE ...',
        ';',
      ];
    }
    case 'user':
      return [`; user ${q(item.user.user)} (${item.user.subscriptions.length} subscriptions)`];
    case 'mailbox': {
      const m = item.mailbox;
      return [`; mailbox ${q(m.user)} ${q(m.name)} uidvalidity=${m.uidValidity} uidnext=${m.uidNext} messages=${m.messageCount}${m.selectable ? '' : ' \\Noselect'}${m.subscribed ? ' subscribed' : ''}`];
    }
    case 'message': {
      const flags = [...item.flags, ...item.keywords].join(',') || '-';
      return [`${item.id}; ${q(item.user)} ${q(item.mailbox)} ${item.uid} ${item.internalDate} ${item.size} ${flags} ${q(item.summary.from)} ${q(item.summary.subject)}`];
    }
    case 'trailer': {
      const c = item.trailer.counts;
      return [';', `; complete: ${item.trailer.completed}; ${c.users} users, ${c.mailboxes} mailboxes, ${c.messages} messages, ${c.messageBytes} bytes`];
    }
  }
}
