/**
 * extract: one message of a dump, verified, as its exact bytes. With a seekable file the TOC gives the
 * message's position and only that member is read; otherwise the dump is scanned up to the message.
 */
import type { Readable } from 'node:stream';
import { readDump } from '../archive/reader.js';
import { openDumpFile } from '../archive/random-access.js';
import type { MessageRecord } from '../archive/records.js';
import { StorageNotFoundError } from '../core/errors.js';

export interface MessageRef {
  readonly user: string;
  readonly mailbox: string;
  readonly uid: number;
}

/**
 * Scan `input` for the message and hand its verified body to `consume` (which must finish reading it
 * before returning). Throws StorageNotFoundError if the dump has no such message.
 */
export async function extractMessage(input: Readable, ref: MessageRef, consume: (record: MessageRecord, body: Readable) => Promise<void>, signal?: AbortSignal): Promise<MessageRecord> {
  const want = (r: { user: string; mailbox: string; uid: number }): boolean => r.user === ref.user && r.mailbox === ref.mailbox && r.uid === ref.uid;
  for await (const e of readDump(input, { wantBody: want, ...(signal ? { signal } : {}) })) {
    if (e.type === 'message' && want(e.record)) {
      await consume(e.record, e.openBody());
      return e.record;
    }
  }
  throw new StorageNotFoundError(`the dump has no message UID ${ref.uid} in mailbox "${ref.mailbox}" of user "${ref.user}"`, {
    user: ref.user,
    mailbox: ref.mailbox,
    uid: ref.uid,
    hint: 'find it with: mailvault list DUMP --user USER --mailbox MAILBOX',
  });
}

/**
 * Random access for a dump file: read the trailer and TOC, then only the message's members. Returns
 * null when the file cannot be read at random (compressed without a seek table, no trailer: a cut
 * dump); the caller then scans with extractMessage.
 */
export async function extractMessageFromFile(path: string, ref: MessageRef, consume: (record: MessageRecord, body: Readable) => Promise<void>): Promise<MessageRecord | null> {
  let file;
  try {
    file = await openDumpFile(path);
  } catch (e) {
    if ((e as { code?: string }).code === 'INPUT_NOT_FOUND') throw e;
    return null;
  }
  try {
    for await (const entry of file.entries()) {
      if (entry.type === 'message' && entry.user === ref.user && entry.mailbox === ref.mailbox && entry.uid === ref.uid) {
        const { record, body } = await file.readMessageEntry(entry);
        await consume(record, body);
        return record;
      }
    }
    throw new StorageNotFoundError(`the dump has no message UID ${ref.uid} in mailbox "${ref.mailbox}" of user "${ref.user}"`, {
      user: ref.user,
      mailbox: ref.mailbox,
      uid: ref.uid,
      hint: 'find it with: mailvault list DUMP --user USER --mailbox MAILBOX',
    });
  } finally {
    await file.close();
  }
}
