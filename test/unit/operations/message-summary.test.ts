import test from 'ava';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decodeEncodedWords, parseSummary, summaryOf, SummaryTap, MAX_HEADER_BYTES } from '../../../src/operations/message-summary.js';

/** The straightforward parser parseSummary replaced (all fields, then the first of each name): the reference. */
function referenceSummary(header: Buffer): { from: string; subject: string; messageId: string; date: string } {
  const text = new TextDecoder('utf-8').decode(header);
  const fields: { name: string; value: string }[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (line === '') break;
    if ((line[0] === ' ' || line[0] === '\t') && fields.length > 0) {
      fields[fields.length - 1]!.value += ' ' + line.trim();
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    fields.push({ name: line.slice(0, colon).trim().toLowerCase(), value: line.slice(colon + 1).trim() });
  }
  const get = (name: string): string => {
    const f = fields.find((x) => x.name === name);
    return f ? decodeEncodedWords(f.value).replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, 998) : '';
  };
  return { from: get('from'), subject: get('subject'), messageId: get('message-id'), date: get('date') };
}

const PIECES = [
  'From: A <a@x>', 'from : b@y', 'FROM:c', 'Subject: hello', 'Subject: second', 'subject:=?utf-8?B?w7xiZXI=?= =?utf-8?q?_x=C3=BC?=',
  'Message-ID: <1@x>', 'Date: Mon, 24 Nov 2025 16:00:00 +0000', ' continued', '\tcont\u0001inued', 'X-Other: o', ': nameless', 'no colon',
  'Subject: a\u0000b', 'From: \u00ff\u00fe', 'Date:', '  lead: ing', 'Subject: =?iso-8859-1?q?caf=E9?=', 'Subject: x\r',
];

test('parseSummary gives what the straightforward parser gives', (t) => {
  let seed = 7;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let i = 0; i < 3000; i++) {
    const lines: string[] = [];
    for (let j = rand(8); j >= 0; j--) lines.push(PIECES[rand(PIECES.length)]!);
    const eol = ['\n', '\r\n', '\r'][rand(3)]!;
    let text = lines.join(eol);
    if (rand(2)) text += eol + eol + 'Subject: in the body';
    else if (rand(2)) text += eol;
    const bytes = rand(5) === 0 ? Buffer.concat([Buffer.from(text), Buffer.from([0xc3, 0x28, 0xff])]) : Buffer.from(text);
    t.deepEqual(parseSummary(bytes), referenceSummary(bytes), JSON.stringify(text));
  }
});

test('summaryOf reads the header only, up to MAX_HEADER_BYTES', (t) => {
  t.deepEqual(summaryOf(Buffer.from('Subject: s\r\nFrom: f\r\n\r\nSubject: body\r\n')), { from: 'f', subject: 's', messageId: '', date: '' });
  t.deepEqual(summaryOf(Buffer.from('\nSubject: body\n')), { from: '', subject: '', messageId: '', date: '' });
  const long = Buffer.from(`X: ${'a'.repeat(MAX_HEADER_BYTES)}\nSubject: late\n\n`);
  t.is(summaryOf(long).subject, '');
});

/** The summary SummaryTap gives for `message` cut into `chunks`, and the bytes it passed on. */
async function tapped(chunks: Buffer[]): Promise<{ summary: ReturnType<typeof summaryOf>; passed: Buffer }> {
  const tap = new SummaryTap();
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks), tap, new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
  return { summary: tap.summary, passed: Buffer.concat(out) };
}

test('SummaryTap gives summaryOf of the whole message, however the stream cuts it', async (t) => {
  const header = 'From: A <a@x>\r\nSubject: =?utf-8?q?gr=C3=BC=C3=9F?=\r\n continued\r\nMessage-ID: <1@x>\r\n';
  const messages = [
    Buffer.from(`${header}\r\nSubject: body\r\n${'b'.repeat(200_000)}`),
    Buffer.from(`${header}X: ${'a'.repeat(MAX_HEADER_BYTES)}\r\nDate: late\r\n\r\nbody`), // header longer than the limit
    Buffer.from(`${header}`), // no body, no blank line
    Buffer.from(`${'X: y\n'.repeat(20_000)}Subject: s\n\nbody`),
  ];
  for (const message of messages) {
    const whole = summaryOf(message);
    // Cuts at every byte around the blank line and the limit, and at fixed sizes.
    const cuts = [1, 7, 100, 4096, 65_535, 65_536, 65_537, 1 << 20, message.indexOf('\r\n\r\n') + 1, message.indexOf('\r\n\r\n') + 3];
    for (const size of cuts.filter((c) => c > 0)) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < message.length; i += size) chunks.push(message.subarray(i, i + size));
      const { summary, passed } = await tapped(chunks);
      t.deepEqual(summary, whole, `chunks of ${size}`);
      t.true(passed.equals(message), `chunks of ${size}: bytes passed unchanged`);
    }
  }
  t.is((await tapped([messages[0]!])).summary.subject, 'grüß continued');
});
