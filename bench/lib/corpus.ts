/**
 * A deterministic corpus of realistic mail for the benchmarks, written as a plain source Maildir++ that
 * `doveadm import` then copies into the store under test (so Dovecot itself writes every store file,
 * index, uidlist and, for sdbox, the single-instance attachments).
 *
 * Size mix (per message, chosen from its index):
 * - about 94 %: text mail, 2-50 KB (log-uniform: most are small), a third of them multipart/alternative
 *   with an HTML copy; realistic headers (Received chain, DKIM signature, list headers);
 * - about 6 %: one attachment from a shared pool of 48 (20-500 KB, incompressible like real PDFs and
 *   images): the same bytes recur across messages, which is what SIS stores once;
 * - about 0.3 %: one unique attachment of 1-4 MB.
 * Mean about 40 KB per message. Mailboxes: INBOX, Sent, Archive/2024, Lists/dovecot, "Entwürfe".
 * Flags: 75 % \Seen, 10 % \Answered, 3 % \Flagged. INTERNALDATE (file mtime) spread over 2022-2025.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { prng } from '../../test/helpers/messages.js';

/** Source folders as Maildir++ directory names ('' is INBOX), with their share of the messages. */
const FOLDERS: ReadonlyArray<{ dir: string; share: number }> = [
  { dir: '', share: 0.5 },
  { dir: '.Sent', share: 0.15 },
  { dir: '.Archive.2024', share: 0.2 },
  { dir: '.Lists.dovecot', share: 0.1 },
  { dir: '.Entw&APw-rfe', share: 0.05 },
];

const SHARED_POOL = 48;
const FIRST_DATE = Date.UTC(2022, 0, 1) / 1000;
const LAST_DATE = Date.UTC(2025, 11, 1) / 1000;


/** A vocabulary of 4000 pseudo-words, drawn Zipf-like, so text compresses about as well as real prose. */
const VOCABULARY: readonly string[] = (() => {
  const syllables = ['ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'te', 'vo', 'an', 'er', 'in', 'or', 'st', 'ch', 'be', 'de', 'ge', 'ha', 'ma', 'pro', 'con', 'ing', 'tion', 'ver', 'ung', 'ment'];
  const rnd = prng(7);
  const words = ['the', 'and', 'to', 'of', 'a', 'in', 'is', 'for', 'on', 'that', 'with', 'we', 'you', 'please', 'thanks', 'regards', 'meeting', 'report', 'invoice', 'backup'];
  while (words.length < 4000) {
    const n = 1 + Math.floor(rnd() * 4);
    let w = '';
    for (let i = 0; i < n; i++) w += syllables[Math.floor(rnd() * syllables.length)]!;
    words.push(w);
  }
  return words;
})();

function word(rnd: () => number): string {
  // Zipf-like: index = N^u - 1 concentrates on the first words.
  return VOCABULARY[Math.min(VOCABULARY.length - 1, Math.floor(Math.pow(VOCABULARY.length, rnd())) - 1)]!;
}

function textOfSize(rnd: () => number, bytes: number, quotePrefix: boolean): string {
  const lines: string[] = [];
  let size = 0;
  let line = quotePrefix && rnd() < 0.3 ? '> ' : '';
  while (size < bytes) {
    const w = word(rnd);
    line += (line.length > 2 ? ' ' : '') + w;
    if (line.length > 68) {
      lines.push(line);
      size += line.length + 1;
      line = quotePrefix && rnd() < 0.3 ? '> ' : '';
      if (rnd() < 0.08) {
        lines.push('');
        size += 1;
      }
    }
  }
  lines.push(line);
  return lines.join('\n');
}

/** Deterministic incompressible bytes (AES-128-CTR keystream keyed by `label`). */
function pseudoRandomBytes(label: string, size: number): Buffer {
  const key = createHash('sha256').update(label).digest();
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
}

function base64Lines(data: Buffer): string {
  return data.toString('base64').replace(/.{76}/g, '$&\n');
}

const poolCache = new Map<number, { name: string; type: string; data: Buffer }>();
function sharedAttachment(n: number): { name: string; type: string; data: Buffer } {
  let a = poolCache.get(n);
  if (!a) {
    const kinds = [
      ['pdf', 'application/pdf'],
      ['jpg', 'image/jpeg'],
      ['docx', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'],
      ['zip', 'application/zip'],
    ] as const;
    const [ext, type] = kinds[n % kinds.length]!;
    const size = Math.round(20_000 * Math.pow(25, prng(1000 + n)())); // 20-500 KB
    a = { name: `shared-${n}.${ext}`, type, data: pseudoRandomBytes(`shared-${n}`, size) };
    poolCache.set(n, a);
  }
  return a;
}

export interface CorpusMessage {
  readonly raw: Buffer;
  /** Maildir++ folder directory ('' = INBOX). */
  readonly folder: string;
  /** Maildir info flags, e.g. "RS". */
  readonly flags: string;
  /** INTERNALDATE, seconds since the epoch. */
  readonly received: number;
  readonly kind: 'text' | 'shared-attachment' | 'big-attachment';
}

/** Message `i` of the corpus (the same bytes for the same index, whatever the corpus size). */
export function corpusMessage(i: number, total: number): CorpusMessage {
  const rnd = prng(0x5eed0000 + i);
  let r = rnd();
  let folder = FOLDERS[0]!.dir;
  for (const f of FOLDERS) {
    if (r < f.share) {
      folder = f.dir;
      break;
    }
    r -= f.share;
  }
  const flags = `${rnd() < 0.03 ? 'F' : ''}${rnd() < 0.1 ? 'R' : ''}${rnd() < 0.75 ? 'S' : ''}`;
  const received = Math.floor(FIRST_DATE + ((LAST_DATE - FIRST_DATE) * (i + rnd())) / Math.max(1, total));
  const k = rnd();
  const kind: CorpusMessage['kind'] = k < 0.003 ? 'big-attachment' : k < 0.063 ? 'shared-attachment' : 'text';
  const list = folder === '.Lists.dovecot';
  const sender = `${word(rnd)}.${word(rnd)}@${word(rnd)}.example.org`;
  const date = new Date(received * 1000 - Math.floor(rnd() * 600_000)).toUTCString().replace('GMT', '+0000');
  const boundary = `----=_Part_${i}_${Math.floor(rnd() * 1e9)}`;
  const head = [
    `Return-Path: <${sender}>`,
    `Delivered-To: bench@example.com`,
    `Received: from mx${Math.floor(rnd() * 9)}.example.net (mx.example.net [192.0.2.${Math.floor(rnd() * 255)}])`,
    `\tby mail.example.com (Postfix) with ESMTPS id ${Math.floor(rnd() * 1e12).toString(16).toUpperCase()}`,
    `\tfor <bench@example.com>; ${date}`,
    `Received: from [10.0.${Math.floor(rnd() * 255)}.${Math.floor(rnd() * 255)}] by smtp.${word(rnd)}.example.org; ${date}`,
    `DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=mail;`,
    `\th=from:to:subject:date:message-id; bh=${pseudoRandomBytes(`bh${i}`, 32).toString('base64')};`,
    `\tb=${base64Lines(pseudoRandomBytes(`dkim${i}`, 256)).replace(/\n/g, '\n\t ')}`,
    `From: "${word(rnd)} ${word(rnd)}" <${sender}>`,
    `To: "Bench User" <bench@example.com>`,
    ...(rnd() < 0.3 ? [`Cc: ${word(rnd)}@example.com, ${word(rnd)}@example.net`] : []),
    `Subject: ${rnd() < 0.3 ? 'Re: ' : ''}${Array.from({ length: 3 + Math.floor(rnd() * 6) }, () => word(rnd)).join(' ')}`,
    `Date: ${date}`,
    `Message-ID: <bench.${i}.${Math.floor(rnd() * 1e9).toString(36)}@example.org>`,
    ...(list ? ['List-Id: Dovecot Mailing List <dovecot.dovecot.org>', 'List-Unsubscribe: <mailto:dovecot-leave@dovecot.org>', 'Precedence: list'] : []),
    'MIME-Version: 1.0',
  ];
  // Text size: log-uniform 2-50 KB.
  const textBytes = Math.round(2000 * Math.pow(25, rnd()));
  let body: string;
  if (kind === 'text' && rnd() < 0.33) {
    const plain = textOfSize(rnd, textBytes / 2, true);
    const html = `<html><body><p>${textOfSize(rnd, textBytes / 2, false).replace(/\n\n/g, '</p>\n<p>')}</p></body></html>`;
    head.push(`Content-Type: multipart/alternative; boundary="${boundary}"`);
    body = `This is a multi-part message in MIME format.\n\n--${boundary}\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n${plain}\n\n--${boundary}\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n${html}\n\n--${boundary}--\n`;
  } else if (kind === 'text') {
    head.push('Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit');
    body = `${textOfSize(rnd, textBytes, true)}\n`;
  } else {
    const a =
      kind === 'shared-attachment'
        ? sharedAttachment(Math.floor(rnd() * SHARED_POOL))
        : { name: `scan-${i}.pdf`, type: 'application/pdf', data: pseudoRandomBytes(`big-${i}`, Math.round(1_000_000 * Math.pow(4, rnd()))) };
    head.push(`Content-Type: multipart/mixed; boundary="${boundary}"`);
    body =
      `This is a multi-part message in MIME format.\n\n--${boundary}\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n${textOfSize(rnd, Math.min(textBytes, 4000), true)}\n\n` +
      `--${boundary}\nContent-Type: ${a.type}; name="${a.name}"\nContent-Disposition: attachment; filename="${a.name}"\nContent-Transfer-Encoding: base64\n\n${base64Lines(a.data)}\n--${boundary}--\n`;
  }
  return { raw: Buffer.from(`${head.join('\n')}\n\n${body}`, 'utf8'), folder, flags, received, kind };
}

export interface CorpusSummary {
  readonly messages: number;
  /** Sum of the raw message sizes (LF line ends, as stored in Maildir). */
  readonly bytes: number;
  readonly byKind: Readonly<Record<CorpusMessage['kind'], number>>;
  readonly largestBytes: number;
}

/**
 * Writes messages [0, count) as a Maildir++ tree under `dir` (cur/ files named like Dovecot's, with
 * flags, mtime = INTERNALDATE). Sequential, with bounded memory.
 */
export async function writeSourceMaildir(dir: string, count: number): Promise<CorpusSummary> {
  for (const f of FOLDERS) for (const sub of ['cur', 'new', 'tmp']) await mkdir(path.join(dir, f.dir, sub), { recursive: true });
  let bytes = 0;
  let largestBytes = 0;
  const byKind = { text: 0, 'shared-attachment': 0, 'big-attachment': 0 };
  for (let i = 0; i < count; i++) {
    const m = corpusMessage(i, count);
    const file = path.join(dir, m.folder, 'cur', `${m.received}.M${i}P1.benchsrc,S=${m.raw.length}:2,${m.flags}`);
    await writeFile(file, m.raw);
    await utimes(file, m.received, m.received);
    bytes += m.raw.length;
    largestBytes = Math.max(largestBytes, m.raw.length);
    byKind[m.kind]++;
  }
  return { messages: count, bytes, byKind, largestBytes };
}
