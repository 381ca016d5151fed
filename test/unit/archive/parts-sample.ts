/** Messages stored as parts, for the archive tests: a fixed set of attachments shared across messages and users. */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { DumpWriter, type WriterPart } from '../../../src/archive/writer.js';
import { encodeBase64Lines } from '../../../src/core/base64-lines.js';
import { encodedLength } from '../../../src/archive/parts.js';
import type { PartEncoding } from '../../../src/archive/records.js';
import { collector, HEADER, mailbox, message } from './sample-dump.js';

export function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

export const ATTACHMENTS = { a: bytes(3000, 1), b: bytes(70001, 2), c: bytes(1, 3), d: bytes(5, 4) };

export async function encode(content: Buffer, encoding: PartEncoding): Promise<Buffer> {
  if (encoding.type === 'raw') return content;
  const out: Buffer[] = [];
  for await (const c of encodeBase64Lines(Readable.from([content]), encoding.lineLength, encoding.crlf)) out.push(c);
  return Buffer.concat(out);
}

export interface PartSpec { inline?: string; content?: Buffer; encoding?: PartEncoding; cut?: number }

/** The parts and the full message bytes they make. */
export async function buildMessage(spec: PartSpec[]): Promise<{ parts: WriterPart[]; full: Buffer }> {
  const parts: WriterPart[] = [];
  const full: Buffer[] = [];
  for (const s of spec) {
    if (s.inline !== undefined) {
      const data = Buffer.from(s.inline);
      parts.push({ kind: 'inline', data });
      full.push(data);
    } else {
      const content = s.content!;
      const encoding = s.encoding ?? { type: 'base64', lineLength: 76, crlf: false };
      const enc = await encode(content, encoding);
      const size = s.cut ?? encodedLength(content.length, encoding);
      parts.push({ kind: 'attachment', size, encoding, contentSize: content.length, open: async () => Readable.from([content]) });
      full.push(enc.subarray(0, size));
    }
  }
  return { parts, full: Buffer.concat(full) };
}

const head = (n: number): string => `From: A <a@example.org>\nSubject: parts ${n}\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="B"\n\n--B\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n`;

export interface PartsDump { dump: Buffer; messages: Map<string, Buffer>; distinctBlobs: number }

/**
 * Two users; alice has INBOX with 4 messages (a twice, b, a raw + c in CRLF base64, a plain one) and
 * Sent with a; bob's INBOX has a and d with a cut. Blobs a, b, c, d: 4 distinct, 6 references to a.
 */
export async function writePartsDump(): Promise<PartsDump> {
  const out = collector();
  const writer = await DumpWriter.create(out.stream, HEADER, { parts: true });
  const messages = new Map<string, Buffer>();
  const specs: Record<string, Record<string, PartSpec[][]>> = {
    alice: {
      INBOX: [
        [{ inline: head(1) }, { content: ATTACHMENTS.a }, { inline: '\n--B--\n' }],
        [{ inline: head(2) }, { content: ATTACHMENTS.a }, { inline: '\n--B\n\n' }, { content: ATTACHMENTS.a, encoding: { type: 'base64', lineLength: 64, crlf: false } }, { inline: '\n--B--\n' }],
        [{ inline: head(3) }, { content: ATTACHMENTS.b }, { inline: '\n--B--\n' }],
        [{ inline: head(4) }, { content: ATTACHMENTS.a, encoding: { type: 'raw' } }, { content: ATTACHMENTS.c, encoding: { type: 'base64', lineLength: 76, crlf: true } }, { inline: '\r\n--B--\r\n' }],
        [{ inline: 'Subject: plain\n\nno attachments\n' }],
      ],
      Sent: [[{ inline: head(6) }, { content: ATTACHMENTS.a }, { inline: '\n--B--\n' }]],
    },
    bob: {
      INBOX: [[{ inline: head(7) }, { content: ATTACHMENTS.a }, { inline: '\n' }, { content: ATTACHMENTS.d, encoding: { type: 'raw' }, cut: 3 }, { inline: 'end\n' }]],
    },
  };
  for (const [user, boxes] of Object.entries(specs)) {
    await writer.writeUser({ user, subscriptions: [] });
    for (const [box, list] of Object.entries(boxes)) {
      await writer.writeMailbox(mailbox(user, box, []).record);
      let uid = 0;
      for (const spec of list) {
        uid += 3;
        const { parts, full } = await buildMessage(spec);
        const input = message(user, box, uid, full).input;
        const r = await writer.writeMessageParts(input, parts, createHash('sha256').update(full).digest('hex'));
        if (r.sha256 !== createHash('sha256').update(full).digest('hex')) throw new Error('writer hash differs');
        messages.set(`${user}/${box}/${uid}`, full);
      }
    }
  }
  await writer.finish();
  return { dump: out.bytes(), messages, distinctBlobs: 4 };
}
