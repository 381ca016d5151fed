/**
 * Deterministic generator of realistic, varied test messages: plain text, raw 8-bit UTF-8 headers,
 * RFC 2047 encoded words, multipart/alternative, multipart/mixed with base64 attachments drawn from a
 * shared pool (the same attachment bytes recur across messages and users, for SIS), long lines, a
 * message without a trailing newline, CRLF input, and on request a big one. The same (seed, index)
 * always gives the same bytes; every message has a unique Message-ID.
 */
import { createHash } from 'node:crypto';

export type MessageShape =
  | 'plain'
  | 'utf8-headers'
  | 'encoded-words'
  | 'alternative'
  | 'mixed-attachment'
  | 'long-lines'
  | 'no-trailing-newline'
  | 'crlf'
  | 'big';

export const MESSAGE_SHAPES: readonly MessageShape[] = ['plain', 'utf8-headers', 'encoded-words', 'alternative', 'mixed-attachment', 'long-lines', 'no-trailing-newline', 'crlf'];

export interface TestMessage {
  readonly raw: Buffer;
  /** Without angle brackets. */
  readonly messageId: string;
  readonly shape: MessageShape;
  readonly subject: string;
}

/** mulberry32: a small seeded PRNG (also used by bench/lib/corpus.ts). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = ['backup', 'restore', 'mailbox', 'quarterly', 'report', 'Grüße', 'naïve', 'café', 'smörgåsbord', '日本語', 'Ελληνικά', 'meeting', 'invoice', 'draft', 'über', 'ÆØÅ', 'zürich', 'emoji 🎉', 'plan', 'budget'];
const NAMES = ['Jürgen Müller', 'Zoë Ångström', '李小龍', 'Renée Fleming', 'Bob Smith', 'Ольга Иванова'];

function pick<T>(rnd: () => number, list: readonly T[]): T {
  return list[Math.floor(rnd() * list.length)]!;
}

function sentence(rnd: () => number, words: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(pick(rnd, WORDS));
  return out.join(' ');
}

function encodedWordB(text: string): string {
  return `=?UTF-8?B?${Buffer.from(text, 'utf8').toString('base64')}?=`;
}

function encodedWordQ(text: string): string {
  const q = [...Buffer.from(text, 'utf8')].map((b) => (b === 0x20 ? '_' : (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) ? String.fromCharCode(b) : `=${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
  return `=?UTF-8?Q?${q}?=`;
}

function base64Lines(data: Buffer, lineLength = 76): string {
  const b64 = data.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += lineLength) lines.push(b64.slice(i, i + lineLength));
  return lines.join('\n');
}

/**
 * Attachment number `n` of the shared pool: the same bytes for the same n in every message, user and run
 * (independent of the seed), 3-40 KB, so SIS stores each once.
 */
export function poolAttachment(n: number): { name: string; contentType: string; data: Buffer } {
  const kinds = [
    { ext: 'pdf', type: 'application/pdf' },
    { ext: 'png', type: 'image/png' },
    { ext: 'zip', type: 'application/zip' },
    { ext: 'bin', type: 'application/octet-stream' },
  ];
  const k = kinds[n % kinds.length]!;
  const size = 3000 + ((n * 7919) % 37000);
  const chunks: Buffer[] = [];
  let block = createHash('sha256').update(`attachment-${n}`).digest();
  let len = 0;
  while (len < size) {
    chunks.push(block);
    len += block.length;
    block = createHash('sha256').update(block).digest();
  }
  return { name: `file-${n}.${k.ext}`, contentType: k.type, data: Buffer.concat(chunks).subarray(0, size) };
}

function headers(fields: ReadonlyArray<readonly [string, string]>): string {
  return fields.map(([k, v]) => `${k}: ${v}`).join('\n');
}

/** One message; `shape` defaults to a shape chosen by (seed, index). */
export function generateMessage(seed: number, index: number, shape?: MessageShape): TestMessage {
  const rnd = prng(seed * 1_000_003 + index);
  const chosen: MessageShape = shape ?? MESSAGE_SHAPES[(index + seed) % MESSAGE_SHAPES.length]!;
  const messageId = `${seed}.${index}.${chosen}@mailvault.test`;
  const date = new Date(Date.UTC(2020, 0, 1) + Math.floor(rnd() * 5 * 365 * 86400) * 1000).toUTCString().replace('GMT', '+0000');
  const subjectText = `${sentence(rnd, 3)} #${index}`;
  const asciiSubject = `Test message ${seed}/${index} (${chosen})`;
  const boundary = `=_mv_${seed}_${index}_${Math.floor(rnd() * 1e9).toString(36)}`;
  const base: Array<readonly [string, string]> = [
    ['Date', date],
    ['Message-ID', `<${messageId}>`],
    ['To', 'Recipient <rcpt@example.org>'],
  ];
  const body = `${sentence(rnd, 12)}\n${sentence(rnd, 8)}\n.leading dot line\n\nRegards\n`;
  let text: string;
  let subject = asciiSubject;
  switch (chosen) {
    case 'plain':
    case 'crlf':
    case 'no-trailing-newline':
      text = `${headers([...base, ['From', 'Alice <alice@example.org>'], ['Subject', asciiSubject], ['MIME-Version', '1.0'], ['Content-Type', 'text/plain; charset=us-ascii']])}\n\nHello,\n\nplain body for ${index}.\n.leading dot line\n`;
      if (chosen === 'no-trailing-newline') text += 'last line without newline';
      break;
    case 'utf8-headers':
      subject = subjectText;
      text = `${headers([...base, ['From', `${pick(rnd, NAMES)} <sender@example.org>`], ['Subject', subjectText], ['MIME-Version', '1.0'], ['Content-Type', 'text/plain; charset=utf-8'], ['Content-Transfer-Encoding', '8bit']])}\n\n${body}`;
      break;
    case 'encoded-words':
      subject = subjectText;
      text = `${headers([...base, ['From', `${encodedWordQ(pick(rnd, NAMES))} <sender@example.org>`], ['Subject', encodedWordB(subjectText)], ['MIME-Version', '1.0'], ['Content-Type', 'text/plain; charset=utf-8'], ['Content-Transfer-Encoding', 'quoted-printable']])}\n\nGr=C3=BC=C3=9Fe, caf=C3=A9 =E2=9C=93\n${sentence(rnd, 5).replace(/[^\x20-\x7e]/g, '?')}\n`;
      break;
    case 'alternative':
      text = `${headers([...base, ['From', 'Alice <alice@example.org>'], ['Subject', asciiSubject], ['MIME-Version', '1.0'], ['Content-Type', `multipart/alternative; boundary="${boundary}"`]])}\n\nThis is a multi-part message in MIME format.\n\n--${boundary}\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n${body}\n--${boundary}\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n<html><body><p>${sentence(rnd, 10)}</p></body></html>\n\n--${boundary}--\n`;
      break;
    case 'mixed-attachment': {
      const a1 = poolAttachment(index % 5);
      const a2 = poolAttachment(5 + Math.floor(rnd() * 3));
      const part = (a: ReturnType<typeof poolAttachment>): string =>
        `--${boundary}\nContent-Type: ${a.contentType}; name="${a.name}"\nContent-Disposition: attachment; filename="${a.name}"\nContent-Transfer-Encoding: base64\n\n${base64Lines(a.data)}\n`;
      text = `${headers([...base, ['From', 'Alice <alice@example.org>'], ['Subject', asciiSubject], ['MIME-Version', '1.0'], ['Content-Type', `multipart/mixed; boundary="${boundary}"`]])}\n\n--${boundary}\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n${body}\n${part(a1)}${part(a2)}--${boundary}--\n`;
      break;
    }
    case 'long-lines':
      text = `${headers([...base, ['From', 'Alice <alice@example.org>'], ['Subject', asciiSubject], ['X-Long-Header', 'x'.repeat(1500)], ['MIME-Version', '1.0'], ['Content-Type', 'text/plain; charset=utf-8']])}\n\n${sentence(rnd, 1500)}\n${'y'.repeat(10000)}\n`;
      break;
    case 'big': {
      const data = Buffer.alloc(3 * 1024 * 1024);
      for (let i = 0; i < data.length; i++) data[i] = Math.floor(rnd() * 256);
      text = `${headers([...base, ['From', 'Alice <alice@example.org>'], ['Subject', asciiSubject], ['MIME-Version', '1.0'], ['Content-Type', `multipart/mixed; boundary="${boundary}"`]])}\n\n--${boundary}\nContent-Type: text/plain\n\nbig one\n--${boundary}\nContent-Type: application/octet-stream; name="big.bin"\nContent-Transfer-Encoding: base64\n\n${base64Lines(data)}\n--${boundary}--\n`;
      break;
    }
  }
  const raw = chosen === 'crlf' ? Buffer.from(text.replace(/\n/g, '\r\n'), 'utf8') : Buffer.from(text, 'utf8');
  return { raw, messageId, shape: chosen, subject };
}

/** `count` messages cycling through all shapes (except 'big'). */
export function* generateMessages(seed: number, count: number, firstIndex = 0): Generator<TestMessage> {
  for (let i = firstIndex; i < firstIndex + count; i++) yield generateMessage(seed, i);
}

/** The Message-ID of a raw message (without angle brackets), or null. */
export function messageIdOf(raw: Buffer): string | null {
  const end = raw.indexOf('\n\n') >= 0 ? raw.indexOf('\n\n') : raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, end < 0 ? raw.length : end).toString('latin1');
  const m = /^message-id:\s*<([^>]*)>/im.exec(head);
  return m ? m[1]! : null;
}
