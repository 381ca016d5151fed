/**
 * The writer's fast paths must give exactly the bytes of the general encoders they replace: tar
 * headers written in place, records encoded in place, and message records and TOC lines assembled
 * from pre-serialized pieces.
 */
import test from 'ava';
import { encodeFileHeader, encodeUstarInto } from '../../../src/archive/tar-header.js';
import { encodedRecordLength, encodeRecord, encodeRecordInto, recordJson } from '../../../src/archive/record-codec.js';
import { messageJsonParts, messageRecordJson, messageTocLineJson } from '../../../src/archive/message-json.js';
import { messageTocEntry, tocLine, type MemberSpan } from '../../../src/archive/toc.js';
import type { FlagTableEntry, MessageInput, MessageRecord } from '../../../src/archive/records.js';
import { flagTableJson } from '../../../src/archive/writer.js';

test('encodeUstarInto writes the block encodeFileHeader gives, or nothing when a pax header is needed', (t) => {
  const long = `users/u/mailboxes/${'a'.repeat(90)}/${'b'.repeat(60)}/123.eml`;
  const names = ['mailvault/header.json', 'users/u/mailboxes/INBOX/1.eml', 'x'.repeat(100), long, 'a b/"quote"\\back/~', `${'p'.repeat(155)}/${'n'.repeat(100)}`];
  const sizes = [0, 1, 511, 512, 4096, 1234567, 0o77777777777];
  const mtimes = [0, -5, 1.7, 1_700_000_000, 0o77777777777, 2 ** 40];
  for (const name of names) {
    for (const size of sizes) {
      for (const mtime of mtimes) {
        const buf = Buffer.alloc(1024, 0xaa);
        const expected = encodeFileHeader(name, size, mtime);
        t.true(encodeUstarInto(buf, 100, name, size, mtime), name);
        t.is(expected.length, 512);
        t.true(buf.subarray(100, 612).equals(expected), `${name} ${size} ${mtime}`);
        t.is(buf[99], 0xaa);
        t.is(buf[612], 0xaa);
      }
    }
  }
  for (const [name, size] of [['users/ü/user.json', 1], ['x'.repeat(101), 1], [`${'p'.repeat(156)}/n`, 1], ['tab\there', 1], ['a', 0o77777777777 + 1]] as const) {
    const buf = Buffer.alloc(600, 0xaa);
    t.false(encodeUstarInto(buf, 0, name, size, 0), name);
    t.true(buf.every((b) => b === 0xaa));
    t.true(encodeFileHeader(name, size, 0).length > 512);
  }
});

test('encodeRecordInto writes the bytes encodeRecord gives', (t) => {
  for (const record of [{ type: 'user', user: 'ü', subscriptions: [] }, { type: 'x', s: 'a"b\\c\n\u0001\ud800', e: '€𝄞', n: [1, 2.5, null] }, { a: 'x'.repeat(5000) }]) {
    const json = recordJson(record);
    const expected = encodeRecord(record);
    t.is(encodedRecordLength(json), expected.length);
    const buf = Buffer.alloc(expected.length + 20, 0xaa);
    t.is(encodeRecordInto(json, buf, 10), expected.length);
    t.true(buf.subarray(10, 10 + expected.length).equals(expected));
    t.is(buf[9], 0xaa);
    t.is(buf[10 + expected.length], 0xaa);
  }
});

function span(member: string, offset: number, size: number, sha: string): MemberSpan {
  return { member, offset, dataOffset: offset + 512, size, sha256: sha.repeat(64) };
}

test('message record and TOC line from parts equal JSON.stringify of the objects', (t) => {
  const strings = ['', 'plain', 'ü €𝄞', 'quote " back \\ slash', 'ctl \u0000\u001f\u007f', 'lone \ud800 surrogate', '</script>\u2028'];
  let n = 0;
  for (const s of strings) {
    for (const guid of [s, null]) {
      for (const modseq of ['12345', null]) {
        n++;
        const input: MessageInput = {
          user: `u${s}`,
          mailbox: `INBOX/${s}`,
          uid: n,
          guid,
          flags: ['\\Seen', s],
          keywords: n % 2 ? [] : [s, 'k'],
          internalDate: '2025-11-24T16:00:00Z',
          saveDate: n % 3 ? null : '2025-11-24T16:00:01Z',
          modseq,
          size: 1000 + n,
          summary: { from: `F ${s}`, subject: s, messageId: `<${s}@x>`, date: 'Mon, 24 Nov 2025' },
          extra: n % 2 ? {} : { 'maildir.Z': s, 'a.b': 'c' },
        };
        const sha = 'ab'.repeat(32);
        const record: MessageRecord = { type: 'message', user: input.user, mailbox: input.mailbox, uid: input.uid, guid: input.guid, flags: [...input.flags], keywords: [...input.keywords], internalDate: input.internalDate, saveDate: input.saveDate, modseq: input.modseq, size: input.size, sha256: sha, summary: { ...input.summary }, extra: { ...input.extra } };
        const parts = messageJsonParts(input, JSON.stringify(input.user), JSON.stringify(input.mailbox), input.summary, input.extra)!;
        t.truthy(parts);
        t.is(messageRecordJson(parts, sha), JSON.stringify(record));
        const body = span(`users/u/mailboxes/m/${n}.eml`, n * 4096, input.size, 'c');
        const rec = span(`users/u/mailboxes/m/${n}.json`, n * 4096 + 2048, 700, 'd');
        t.is(messageTocLineJson(n, body, rec, parts), tocLine(messageTocEntry(n, body, rec, record)));
      }
    }
  }
  const odd = { user: 'u', mailbox: 'm', uid: 1, guid: undefined, flags: [], keywords: [], internalDate: 'x', saveDate: null, modseq: null, size: 1, summary: { from: '', subject: '', messageId: '', date: '' }, extra: {} } as unknown as MessageInput;
  t.is(messageJsonParts(odd, '"u"', '"m"', odd.summary, {}), null);
});

test('flag table JSON built per shared array equals JSON.stringify of the record', (t) => {
  const seen = Object.freeze(['\\Seen']);
  const none = Object.freeze([] as string[]);
  const kw = Object.freeze(['$Label1', 'quote"back\\slash', 'Ünïcode \u2028']);
  const entries: FlagTableEntry[] = [
    { uid: 1, flags: seen, keywords: none },
    { uid: 2, flags: seen, keywords: kw },
    { uid: 7, flags: ['\\Answered', '\\Seen'], keywords: none },
    // Extra properties of an entry are not part of the record.
    { uid: 4294967295, flags: none, keywords: ['x'], extra: 'dropped' } as FlagTableEntry,
  ];
  const record = { type: 'flags' as const, user: 'ü"ser', mailbox: 'INBOX/Entwürfe', seq: 3, entries: [] };
  const expected = recordJson({ ...record, entries: entries.map((e) => ({ uid: e.uid, flags: e.flags, keywords: e.keywords })) });
  t.is(flagTableJson(record, entries), expected);
  t.is(flagTableJson(record, entries.slice(0, 1)), recordJson({ ...record, entries: [{ uid: 1, flags: seen, keywords: none }] }));
});
