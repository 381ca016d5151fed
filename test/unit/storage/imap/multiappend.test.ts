// ImapSaveTransaction.commit's MULTIAPPEND batches against a scripted session (no server): which
// commands go out, in which order, what a refused batch leads to, and what the result reports.
// The real server's side (Dovecot's all-or-nothing batches, quota, order) is in the integration tests.
import test from 'ava';
import { Readable } from 'node:stream';
import type { ImapSession } from '../../../../src/storage/imap/connection.js';
import { ImapSaveTransaction } from '../../../../src/storage/imap/save.js';
import type { MailboxInfo } from '../../../../src/storage/types.js';

interface Sent {
  /** 'multi' with the subjects of the batch, or 'single' with one. */
  kind: 'multi' | 'single';
  subjects: string[];
}

type Answer = 'OK' | 'NO' | 'BAD';

/** A session whose server stores what it is given, answering MULTIAPPEND as `answer` says. */
function scriptedSession(answer: (subjects: string[]) => Answer, capabilities: string[] = ['MULTIAPPEND', 'UIDPLUS']) {
  const sent: Sent[] = [];
  const stored: string[] = [];
  let nextUid = 100;
  const subjectOf = (b: Buffer): string => /Subject: (\S+)/.exec(b.toString('latin1'))![1]!;
  const client = {
    capabilities: new Map(capabilities.map((c) => [c, true])),
    enabled: new Set<string>(),
    usable: true,
    async exec(command: string, attributes: unknown[]) {
      if (command !== 'APPEND') throw new Error(`unexpected ${command}`);
      const literals = attributes.filter((a): a is { type: 'LITERAL'; value: Buffer } => (a as { type?: string }).type === 'LITERAL').map((a) => a.value);
      const subjects = literals.map(subjectOf);
      sent.push({ kind: 'multi', subjects });
      const a = answer(subjects);
      if (a !== 'OK') throw Object.assign(new Error('Command failed'), { responseStatus: a, responseText: 'refused' });
      const first = nextUid;
      nextUid += subjects.length;
      stored.push(...subjects);
      return { response: { attributes: [{ section: [{ value: 'APPENDUID' }, { value: '7' }, { value: `${first}:${nextUid - 1}` }] }] }, next() {} };
    },
    async append(_path: string, bytes: Buffer) {
      const subject = subjectOf(bytes);
      sent.push({ kind: 'single', subjects: [subject] });
      stored.push(subject);
      return { destination: 'INBOX', uid: nextUid++, uidValidity: 7n };
    },
  };
  const session = { client, address: { host: '127.0.0.1', port: 143, secure: false, display: 'imap://127.0.0.1:143' }, errorContext: { server: 'imap://127.0.0.1:143', user: 'u' }, state: { failure: undefined } } as unknown as ImapSession;
  return { session, sent, stored };
}

const mailbox = { name: 'INBOX', uidValidity: 7 } as unknown as MailboxInfo;
const message = (i: number): Buffer => Buffer.from(`Subject: m${i}\r\n\r\nbody ${i}\r\n`);

async function commitAll(session: ImapSession, count: number, keywordsOf: (i: number) => string[] = () => []) {
  const tx = new ImapSaveTransaction(session, mailbox, 'INBOX', { createMailbox: async () => undefined });
  for (let i = 0; i < count; i++) {
    const m = message(i);
    await tx.save({ flags: ['\\Seen'], keywords: keywordsOf(i), internalDate: 1_700_000_000 + i, size: m.length, uid: i + 1 }, Readable.from([m]));
  }
  return await tx.commit();
}

const names = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, k) => `m${from + k}`);

test('messages go in batches of at most 64, in order, and take their UIDs from the APPENDUID set', async (t) => {
  const { session, sent, stored } = scriptedSession(() => 'OK');
  const result = await commitAll(session, 70);
  t.deepEqual(sent, [
    { kind: 'multi', subjects: names(0, 64) },
    { kind: 'multi', subjects: names(64, 70) },
  ]);
  t.deepEqual(stored, names(0, 70));
  t.deepEqual(result.uids, Array.from({ length: 70 }, (_, k) => 100 + k));
});

test('a batch the server refuses (NO) is sent again one message at a time, all of it, then batching goes on', async (t) => {
  const { session, sent, stored } = scriptedSession((subjects) => (subjects.includes('m5') ? 'NO' : 'OK'));
  await commitAll(session, 70);
  t.deepEqual(sent, [{ kind: 'multi', subjects: names(0, 64) }, ...names(0, 64).map((s) => ({ kind: 'single' as const, subjects: [s] })), { kind: 'multi', subjects: names(64, 70) }]);
  t.deepEqual(stored, names(0, 70), 'every message once, in order');
});

test('after a BAD no more batches are tried in the transaction', async (t) => {
  const { session, sent, stored } = scriptedSession(() => 'BAD');
  await commitAll(session, 70);
  t.is(sent.filter((s) => s.kind === 'multi').length, 1);
  t.is(sent.filter((s) => s.kind === 'single').length, 70);
  t.deepEqual(stored, names(0, 70));
});

test('without MULTIAPPEND every message goes alone', async (t) => {
  const { session, sent } = scriptedSession(() => 'OK', ['UIDPLUS']);
  await commitAll(session, 3);
  t.deepEqual(
    sent.map((s) => s.kind),
    ['single', 'single', 'single'],
  );
});

test('keywords IMAP cannot carry are reported for messages that went in a batch, with their new UIDs', async (t) => {
  const { session, sent } = scriptedSession(() => 'OK');
  const result = await commitAll(session, 3, (i) => (i === 1 ? ['Ärger', 'Work'] : []));
  t.deepEqual(sent, [{ kind: 'multi', subjects: names(0, 3) }]);
  t.deepEqual(result.keywordsNotStored, [{ index: 1, uid: 101, keywords: ['Ärger'] }]);
  t.regex(result.keywordsNotStoredWhy ?? '', /ASCII atoms/);
});
