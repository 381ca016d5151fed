// Keywords equal but for the case of ASCII letters are one keyword (formats/dump-v1.md 5.5): the writer
// keeps the first of each such group, and a reader that meets two (a dump from another writer) keeps the
// first listed. Only A-Z/a-z fold: "Ärger" and "ärger" are two keywords.
import test from 'ava';
import { readAll, sampleUsers, writeSample, mailbox, message, chunked, splitMembers } from './sample-dump.js';
import { reseal, sealRecord } from './reseal.js';

const USER = 'kw@example.org';

async function dumpWith(keywords: string[]): Promise<Buffer> {
  const users = sampleUsers().slice(0, 0);
  users.push({ record: { user: USER, subscriptions: [] }, mailboxes: [mailbox(USER, 'INBOX', [message(USER, 'INBOX', 1, 'Subject: x\n\nbody\n', { keywords })])] });
  return await writeSample(users);
}

async function keywordsRead(dump: Buffer): Promise<readonly string[]> {
  const { entries } = await readAll(chunked(dump));
  const m = entries.find((e) => e.type === 'message');
  if (m === undefined || m.type !== 'message') throw new Error('no message read');
  return m.record.keywords;
}

test('the writer keeps the first of keywords equal but for ASCII case; non-ASCII letters do not fold', async (t) => {
  const dump = await dumpWith(['Work', 'work', 'WORK', 'Ärger', 'ärger', '$Label1']);
  const want = ['Work', 'Ärger', 'ärger', '$Label1'];
  // as written (record and TOC line), not only as read
  const members = await splitMembers(dump);
  t.deepEqual((JSON.parse(members.find((m) => m.name === `users/${USER}/mailboxes/INBOX/1.json`)!.data.toString('utf8')) as { keywords: string[] }).keywords, want);
  const tocLine = members.find((m) => m.name === 'mailvault/toc.jsonl')!.data.toString('utf8').split('\n').find((l) => l.includes('"type":"message"'))!;
  t.deepEqual((JSON.parse(tocLine) as { keywords: string[] }).keywords, want);
  t.deepEqual(await keywordsRead(dump), want);
});

test('a reader that meets two keywords equal but for ASCII case keeps the first listed (record and TOC alike)', async (t) => {
  const dump = await dumpWith(['Work', 'ABCD', 'Other']);
  // Another writer's dump: the record and the TOC line say ["Work","WORK","Other"] (same length).
  const edited = await reseal(dump, {
    [`users/${USER}/mailboxes/INBOX/1.json`]: (m) => {
      const o = JSON.parse(m.data.toString('utf8')) as Record<string, unknown>;
      o['keywords'] = ['Work', 'WORK', 'Other'];
      return sealRecord(o, m.data.length, true);
    },
    'mailvault/toc.jsonl': (m) => Buffer.from(m.data.toString('utf8').replace('"ABCD"', '"WORK"'), 'utf8'),
  });
  t.deepEqual(await keywordsRead(edited), ['Work', 'Other']);
});
