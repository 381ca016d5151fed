/**
 * Compare a dbox MessageSource with what Dovecot reported for the same store (expected.json written by
 * test/fixtures/stores/capture-expected.py). Shared by the sdbox, mdbox and integration tests.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ExecutionContext } from 'ava';
import type { MessageSource } from '../../../../src/storage/types.js';

export interface ExpectedMessage {
  uid: number;
  guid: string;
  flags: string[];
  keywords: string[];
  modseq: string;
  internalDate: number;
  saveDate: number;
  size: number;
  textSize: number;
  textSha256: string;
}

export interface ExpectedStore {
  mailboxes: Record<string, { guid: string; uidValidity: number; uidNext: number; highestModseq: string; messages: ExpectedMessage[] }>;
  subscriptions: string[];
}

export function loadExpected(file: string): ExpectedStore {
  return JSON.parse(readFileSync(file, 'utf8')) as ExpectedStore;
}

export async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Every mailbox and message of `store` equals `expected`; returns the number of messages checked. */
export async function assertStoreMatches(t: ExecutionContext, store: MessageSource, expected: ExpectedStore, opts: { saveDate: boolean }): Promise<number> {
  const boxes = await store.listMailboxes();
  const selectable = boxes.filter((b) => b.selectable).map((b) => b.name);
  t.deepEqual(selectable, Object.keys(expected.mailboxes).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))), 'selectable mailboxes');
  t.deepEqual(await store.listSubscriptions(), expected.subscriptions, 'subscriptions');
  let checked = 0;
  for (const box of boxes.filter((b) => b.selectable)) {
    const want = expected.mailboxes[box.name]!;
    t.like(box, { guid: want.guid, uidValidity: want.uidValidity, uidNext: want.uidNext, highestModseq: want.highestModseq, messageCount: want.messages.length }, `mailbox ${box.name}`);
    const reader = await store.openMailbox(box.name);
    const got = [];
    for await (const m of reader.messages()) {
      const body = await readAll(await reader.openMessage(m));
      // readMessage, where the driver has it, gives the same bytes or declines (null: SIS, large).
      const whole = reader.readMessage ? await reader.readMessage(m) : null;
      if (whole !== null) t.true(whole.equals(body), `${box.name} UID ${m.uid}: readMessage gives openMessage's bytes`);
      got.push({
        uid: m.uid,
        guid: m.guid,
        flags: [...m.flags],
        keywords: [...m.keywords],
        modseq: m.modseq,
        internalDate: m.internalDate,
        ...(opts.saveDate ? { saveDate: m.saveDate } : {}),
        size: m.size,
        textSize: body.length,
        textSha256: createHash('sha256').update(body).digest('hex'),
      });
      checked++;
    }
    const wanted = want.messages.map(({ saveDate, ...rest }) => (opts.saveDate ? { ...rest, saveDate } : rest));
    t.deepEqual(got, wanted as unknown as typeof got, `messages of ${box.name}`);
    // The flag listings an incremental compares (listFlags, and messages({ flagsOnly })) agree with it.
    const flagsOf = (m: { uid: number; flags: readonly string[]; keywords: readonly string[]; modseq: string | null }) => ({ uid: m.uid, flags: [...m.flags], keywords: [...m.keywords], modseq: m.modseq });
    const fromList = wanted.map((m) => flagsOf(m as unknown as Parameters<typeof flagsOf>[0]));
    t.deepEqual([...(reader.listFlags?.() ?? [])].map(flagsOf), fromList, `listFlags of ${box.name}`);
    const flagsOnly = [];
    for await (const m of reader.messages({ dates: false, flagsOnly: true })) flagsOnly.push(flagsOf(m));
    t.deepEqual(flagsOnly, fromList, `messages({ flagsOnly }) of ${box.name}`);
    await reader.close();
  }
  return checked;
}
