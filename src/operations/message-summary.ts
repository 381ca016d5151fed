/**
 * Envelope summary (From, Subject, Message-ID, Date) of a message, taken from its header while the
 * body streams past, for `list` and for `restore --message-id/--from/--subject`. The header is scanned
 * up to MAX_HEADER_BYTES only: a message with an endless header still streams, with an empty summary
 * for fields beyond the limit. Encoded words (RFC 2047) are decoded; raw 8-bit header bytes are read as
 * UTF-8 (invalid sequences become U+FFFD).
 */
import { Transform, type TransformCallback } from 'node:stream';

export const MAX_HEADER_BYTES = 64 * 1024;
const MAX_FIELD_CHARS = 998;

export interface EnvelopeSummary {
  from: string;
  subject: string;
  messageId: string;
  date: string;
}

export function emptySummary(): EnvelopeSummary {
  return { from: '', subject: '', messageId: '', date: '' };
}

/** Index of the end of the header block (the byte after the blank line), or -1. */
function headerEnd(buf: Buffer): number {
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] !== 0x0a) continue;
    if (i === 0) return 1;
    if (buf[i + 1] === 0x0a) return i + 2;
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

const ENCODED_WORD = /=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g;

function decodeCharset(bytes: Buffer, charset: string): string {
  const cs = charset.split('*')[0]!.toLowerCase();
  try {
    return new TextDecoder(cs).decode(bytes);
  } catch {
    return new TextDecoder('utf-8').decode(bytes);
  }
}

/** Decode RFC 2047 encoded words; whitespace between adjacent encoded words is dropped. */
export function decodeEncodedWords(value: string): string {
  const joined = value.replace(/(\?=)\s+(=\?)/g, '$1$2');
  return joined.replace(ENCODED_WORD, (whole, charset: string, enc: string, text: string) => {
    try {
      let bytes: Buffer;
      if (enc.toLowerCase() === 'b') bytes = Buffer.from(text, 'base64');
      else {
        const s = text.replace(/_/g, ' ');
        const out: number[] = [];
        for (let i = 0; i < s.length; i++) {
          if (s[i] === '=' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
            out.push(parseInt(s.slice(i + 1, i + 3), 16));
            i += 2;
          } else out.push(s.charCodeAt(i) & 0xff);
        }
        bytes = Buffer.from(out);
      }
      return decodeCharset(bytes, charset);
    } catch {
      return whole;
    }
  });
}

/** Parse the envelope fields out of a raw header block. */
export function parseSummary(header: Buffer): EnvelopeSummary {
  const text = new TextDecoder('utf-8').decode(header);
  const lines = text.split(/\r?\n/);
  const fields: { name: string; value: string }[] = [];
  for (const line of lines) {
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
    return f ? decodeEncodedWords(f.value).replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, MAX_FIELD_CHARS) : '';
  };
  return { from: get('from'), subject: get('subject'), messageId: get('message-id'), date: get('date') };
}

/**
 * A pass-through Transform that keeps the first bytes of the message until the header ends (or
 * MAX_HEADER_BYTES), then parses them. `summary` is final once the stream has ended.
 */
export class SummaryTap extends Transform {
  summary: EnvelopeSummary = emptySummary();
  private head: Buffer[] = [];
  private headBytes = 0;
  private done = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    if (!this.done) this.collect(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (!this.done) this.finishHeader(Buffer.concat(this.head));
    callback();
  }

  private collect(chunk: Buffer): void {
    this.head.push(chunk);
    this.headBytes += chunk.length;
    const buf = Buffer.concat(this.head);
    this.head = [buf];
    const end = headerEnd(buf);
    if (end >= 0) this.finishHeader(buf.subarray(0, end));
    else if (this.headBytes >= MAX_HEADER_BYTES) this.finishHeader(buf.subarray(0, MAX_HEADER_BYTES));
  }

  private finishHeader(header: Buffer): void {
    this.done = true;
    this.head = [];
    this.summary = parseSummary(header);
  }
}

/** The envelope summary of a message held in memory (its header, up to MAX_HEADER_BYTES). */
export function summaryOf(message: Buffer): EnvelopeSummary {
  const head = message.subarray(0, MAX_HEADER_BYTES);
  const end = headerEnd(head);
  return parseSummary(end >= 0 ? head.subarray(0, end) : head);
}
