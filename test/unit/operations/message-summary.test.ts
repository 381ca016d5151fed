import test from 'ava';
import { decodeEncodedWords, parseSummary, summaryOf, MAX_HEADER_BYTES } from '../../../src/operations/message-summary.js';

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
