/** Builds small dumps in memory for the archive tests. */
import { PassThrough, Readable, Writable } from 'node:stream';
import { DumpWriter, type DumpWriterOptions } from '../../../src/archive/writer.js';
import { readDump, type DumpEntry, type ReadOptions } from '../../../src/archive/reader.js';
import type { HeaderRecord, MailboxRecord, MessageInput, UserRecord } from '../../../src/archive/records.js';

export const HEADER: Omit<HeaderRecord, 'type' | 'format' | 'version'> = {
  creator: 'mailvault 0.1.0',
  created: '2026-11-28T14:00:00Z',
  runId: '7d1f6c2a-3b4e-4f5a-8b9c-0d1e2f3a4b5c',
  kind: 'full',
  base: null,
  source: { driver: 'maildir', location: 'maildir:~/Maildir', host: 'mail.example.org' },
  options: { mailboxes: ['*'], compression: 'none' },
};

export interface SampleMessage { input: MessageInput; body: Buffer }
export interface SampleMailbox { record: Omit<MailboxRecord, 'type'>; messages: SampleMessage[] }
export interface SampleUser { record: Omit<UserRecord, 'type'>; mailboxes: SampleMailbox[] }

export function mailbox(user: string, name: string, messages: SampleMessage[]): SampleMailbox {
  return {
    record: {
      user, name, guid: '0123456789abcdef0123456789abcdef', uidValidity: 1700000000, uidNext: 100, highestModseq: '12',
      messageCount: messages.length, specialUse: name === 'Sent' ? ['\\Sent'] : [], subscribed: true, selectable: true, metadata: {}, acl: {},
    },
    messages,
  };
}

export function message(user: string, mailboxName: string, uid: number, body: Buffer | string, over: Partial<MessageInput> = {}): SampleMessage {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
  return {
    input: {
      user, mailbox: mailboxName, uid, guid: null, flags: ['\\Seen'], keywords: ['$Forwarded'], internalDate: '2026-01-02T03:04:05Z',
      saveDate: null, modseq: '5', size: bytes.length,
      summary: { from: 'Alice <alice@example.org>', subject: `message ${uid}`, messageId: `<${uid}@example.org>`, date: 'Fri, 2 Jan 2026 03:04:05 +0000' },
      extra: {}, ...over,
    },
    body: bytes,
  };
}

export function sampleUsers(): SampleUser[] {
  return [
    {
      record: { user: 'alice@example.org', subscriptions: ['INBOX', 'Sent'] },
      mailboxes: [
        mailbox('alice@example.org', 'INBOX', [
          message('alice@example.org', 'INBOX', 1, 'From: Alice <alice@example.org>\nSubject: hi\n\nHello\n'),
          message('alice@example.org', 'INBOX', 7, Buffer.alloc(1300, 0x41)),
          message('alice@example.org', 'INBOX', 9, ''),
        ]),
        mailbox('alice@example.org', 'Sent', [message('alice@example.org', 'Sent', 3, 'Subject: sent\r\n\r\nbody\r\n')]),
        mailbox('alice@example.org', 'Töpfe/a.b c/%x', [message('alice@example.org', 'Töpfe/a.b c/%x', 2, 'Subject: =?utf-8?q?T=C3=B6pfe?=\n\nx\n')]),
      ],
    },
    { record: { user: 'bob', subscriptions: [] }, mailboxes: [mailbox('bob', 'INBOX', [])] },
  ];
}

/** Collect a Writable's bytes. */
export function collector(): { stream: Writable; bytes: () => Buffer } {
  const parts: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      parts.push(chunk);
      cb();
    },
  });
  return { stream, bytes: () => Buffer.concat(parts) };
}

export async function writeSample(users: SampleUser[] = sampleUsers(), options: DumpWriterOptions = {}, header = HEADER): Promise<Buffer> {
  const out = collector();
  const writer = await DumpWriter.create(out.stream, header, options);
  for (const user of users) {
    await writer.writeUser(user.record);
    for (const mb of user.mailboxes) {
      await writer.writeMailbox(mb.record);
      for (const m of mb.messages) await writer.writeMessage(m.input, Readable.from([m.body]));
    }
  }
  await writer.finish();
  return out.bytes();
}

/** Feed `bytes` in chunks of `chunkSize` (0 = one chunk). */
export function chunked(bytes: Buffer, chunkSize = 0): Readable {
  if (chunkSize <= 0) return Readable.from([bytes]);
  function* gen(): Generator<Buffer> {
    for (let i = 0; i < bytes.length; i += chunkSize) yield bytes.subarray(i, i + chunkSize);
  }
  return Readable.from(gen());
}

export interface ReadResult { entries: DumpEntry[]; bodies: Map<number, Buffer> }

export async function readAll(input: Readable, options: ReadOptions = {}): Promise<ReadResult> {
  const entries: DumpEntry[] = [];
  const bodies = new Map<number, Buffer>();
  for await (const entry of readDump(input, options)) {
    entries.push(entry);
    if (entry.type === 'message' && (options.wantBody === undefined || options.wantBody({ user: entry.record.user, mailbox: entry.record.mailbox, uid: entry.record.uid }))) {
      const parts: Buffer[] = [];
      for await (const c of entry.openBody()) parts.push(c as Buffer);
      bodies.set(entry.id, Buffer.concat(parts));
    }
  }
  return { entries, bodies };
}

export { PassThrough };

/**
 * A version 4 incremental of user alice@example.org: INBOX (uidSet "1:4,50", reset false, as the CLI
 * writes an incremental's mailbox record) with flag tables (UIDs 1, 2) and (3, 4), then new message 50.
 */
export async function incrementalWithTwoFlagTables(): Promise<Buffer> {
  const user = 'alice@example.org';
  const out = collector();
  const header = { ...HEADER, kind: 'incremental' as const, base: { runId: '00000000-0000-4000-8000-00000000000b', created: '2026-11-27T14:00:00Z' } };
  const writer = await DumpWriter.create(out.stream, header, { incremental: true });
  await writer.writeUser({ user, subscriptions: ['INBOX'] });
  await writer.writeMailbox({ ...mailbox(user, 'INBOX', []).record, uidSet: '1:4,50', reset: false });
  await writer.writeFlagTable(user, 'INBOX', [{ uid: 1, flags: ['\\Seen'], keywords: [] }, { uid: 2, flags: [], keywords: [] }]);
  await writer.writeFlagTable(user, 'INBOX', [{ uid: 3, flags: ['\\Seen'], keywords: [] }, { uid: 4, flags: [], keywords: [] }]);
  const m = message(user, 'INBOX', 50, 'Subject: new since the base\n\nhello\n');
  await writer.writeMessage(m.input, Readable.from([m.body]));
  await writer.finish();
  return out.bytes();
}

import { parseTar } from '../../../src/archive/tar-parser.js';
import { dataPadding, encodeFileHeader } from '../../../src/archive/tar-header.js';

export interface RawMember { name: string; data: Buffer; mtime: number; offset: number; dataOffset: number }

/** The members of a tar, in order (trusting our parser: used on dumps we just wrote). */
export async function splitMembers(bytes: Buffer): Promise<RawMember[]> {
  const out: RawMember[] = [];
  let current: RawMember | null = null;
  let parts: Buffer[] = [];
  for await (const ev of parseTar(Readable.from([bytes]))) {
    if (ev.kind === 'member') {
      current = { name: ev.name, data: Buffer.alloc(0), mtime: ev.mtime, offset: ev.offset, dataOffset: ev.dataOffset };
      parts = [];
    } else if (ev.kind === 'data') {
      parts.push(ev.chunk);
    } else if (ev.kind === 'memberEnd' && current) {
      current.data = Buffer.concat(parts);
      out.push(current);
    }
  }
  return out;
}

/** A tar of `members` (plus end-of-archive). */
export function packMembers(members: ReadonlyArray<{ name: string; data: Buffer; mtime?: number }>): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) parts.push(encodeFileHeader(m.name, m.data.length, m.mtime ?? 0), m.data, dataPadding(m.data.length));
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
