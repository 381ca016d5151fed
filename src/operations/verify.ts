/**
 * verify: read a whole dump and check everything a restore relies on: every tar header, record check,
 * body size and sha256, the order rules, the TOC against what was read, and the trailer digest. The
 * reader performs the checks; this counts what it saw and turns the first failure into the result.
 */
import type { Readable } from 'node:stream';
import { readDump } from '../archive/reader.js';
import type { HeaderRecord, TrailerRecord } from '../archive/records.js';
import { MailvaultError, UnexpectedError } from '../core/errors.js';

export interface VerifySummary {
  ok: boolean;
  header: HeaderRecord | null;
  trailer: TrailerRecord | null;
  users: number;
  mailboxes: number;
  messages: number;
  bytes: number;
  error: { code: string; message: string; hint?: string; offset?: number; member?: string } | null;
  seconds: number;
}

export async function verify(input: Readable, options: { signal?: AbortSignal } = {}): Promise<VerifySummary> {
  const started = Date.now();
  const s: VerifySummary = { ok: false, header: null, trailer: null, users: 0, mailboxes: 0, messages: 0, bytes: 0, error: null, seconds: 0 };
  try {
    for await (const entry of readDump(input, { wantBody: () => false, checkSeekTable: true, ...(options.signal ? { signal: options.signal } : {}) })) {
      switch (entry.type) {
        case 'header':
          s.header = entry.record;
          break;
        case 'user':
          s.users++;
          break;
        case 'mailbox':
          s.mailboxes++;
          break;
        case 'message':
          s.messages++;
          s.bytes += entry.record.size;
          break;
        case 'trailer':
          s.trailer = entry.record;
          break;
      }
    }
    s.ok = s.trailer !== null;
  } catch (e) {
    const err = e instanceof MailvaultError ? e : new UnexpectedError(e instanceof Error ? e.message : String(e), { cause: e });
    s.error = {
      code: err.code,
      message: err.message,
      ...(err.hint ? { hint: err.hint } : {}),
      ...(err.context.offset !== undefined ? { offset: err.context.offset } : {}),
      ...(err.context.member ? { member: err.context.member } : {}),
    };
    Object.defineProperty(s, 'cause', { value: err, enumerable: false });
  }
  s.seconds = (Date.now() - started) / 1000;
  return s;
}

/** The error behind a failed verify, to rethrow with its exit code. */
export function verifyErrorOf(summary: VerifySummary): MailvaultError | null {
  return (summary as unknown as { cause?: MailvaultError }).cause ?? null;
}
