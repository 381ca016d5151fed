/**
 * The self-checking JSON record encoding shared by every JSON member (spec: "The check field").
 *
 * A record's text is one line of UTF-8 JSON ending in `,"check":"<64 hex>"}` + optional spaces + "\n".
 * `check` is the sha256 of the text with exactly the 75 bytes `,"check":"<64 hex>"` removed.
 */
import { sha256Hex } from '../core/sha256.js';
import { ArchiveCorruptError, UsageError } from '../core/errors.js';
import { MAX_RECORD_BYTES } from './limits.js';

const CHECK_TAIL = /,"check":"([0-9a-f]{64})"\}( *)\n$/;
/** Byte length of `,"check":"` + 64 hex + `"`. */
export const CHECK_FIELD_BYTES = 75;

/** sha256 of `data` as hex (core/sha256.ts; kept here for the archive's callers). */
export { sha256Hex };

/** JSON text of a record (a plain JSON value object; its key order is kept), checked to be a non-empty object. */
export function recordJson(record: object): string {
  const json = JSON.stringify(record);
  if (!json.startsWith('{') || !json.endsWith('}') || json === '{}') {
    throw new UsageError('internal: a dump record must be a non-empty JSON object');
  }
  return json;
}

/**
 * Encode `record` (a plain JSON value object; its key order is kept) as a self-checking record line.
 * `padTo`: pad with spaces before the final "\n" to exactly this many bytes (the trailer).
 */
export function encodeRecord(record: object, padTo?: number): Buffer {
  return encodeRecordJson(recordJson(record), padTo);
}

/** encodeRecord for a record's JSON text (from recordJson or built to the same bytes). */
export function encodeRecordJson(json: string, padTo?: number): Buffer {
  const bodyLength = Buffer.byteLength(json);
  let pad = 0;
  if (padTo !== undefined) {
    pad = padTo - bodyLength - CHECK_FIELD_BYTES - 1;
    if (pad < 0) throw new UsageError(`internal: record of ${bodyLength} bytes does not fit in ${padTo} bytes`);
  }
  const spaces = ' '.repeat(pad);
  const check = sha256Hex(`${json}${spaces}\n`);
  const text = Buffer.from(`${json.slice(0, -1)},"check":"${check}"}${spaces}\n`);
  if (text.length > MAX_RECORD_BYTES) {
    throw new UsageError(`a dump record is ${text.length} bytes, over the ${MAX_RECORD_BYTES}-byte limit`, {
      hint: 'shorten the values it carries (options, metadata, extra fields)',
    });
  }
  return text;
}

/** Byte length of encodeRecordJson(json) (no padding). */
export function encodedRecordLength(json: string): number {
  return Buffer.byteLength(json) + CHECK_FIELD_BYTES + 1;
}

/**
 * encodeRecordJson(json) written straight into `buf` at `pos` (which must have
 * encodedRecordLength(json) bytes of room, at most MAX_RECORD_BYTES): no intermediate strings or
 * Buffers. The check is hashed over the bytes in place before the check field overwrites the final "}".
 * Returns the bytes written.
 */
export function encodeRecordInto(json: string, buf: Buffer, pos: number): number {
  const n = buf.write(json, pos, 'utf8');
  buf[pos + n] = 0x0a;
  const check = sha256Hex(buf.subarray(pos, pos + n + 1));
  return n - 1 + buf.write(`,"check":"${check}"}\n`, pos + n - 1, 'latin1');
}

/**
 * Verify and parse a record line. Throws ArchiveCorruptError naming `member` and `offset` (data offset)
 * when the text is not one JSON object line, the check is missing or wrong.
 */
export function decodeRecord(data: Buffer, member: string, offset: number): Record<string, unknown> {
  const text = data.toString('utf8');
  const fail = (why: string): ArchiveCorruptError =>
    new ArchiveCorruptError(`archive corrupt: record "${member}" at offset ${offset}: ${why}`, {
      member,
      offset,
      hint: 'the dump was damaged: check it with "mailvault verify"',
    });
  if (!Buffer.from(text, 'utf8').equals(data)) throw fail('not valid UTF-8');
  const m = CHECK_TAIL.exec(text);
  if (!m) throw fail('no "check" field at its end (the record must end with ,"check":"<sha256>"})');
  const start = text.length - m[0].length;
  const without = `${text.slice(0, start)}}${m[2]}\n`;
  if (text.indexOf('\n') !== text.length - 1) throw fail('not a single line');
  const actual = sha256Hex(without);
  if (actual !== m[1]) throw fail(`check mismatch (recorded ${m[1]}, computed ${actual}): the record was altered`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw fail(`not valid JSON (${(cause as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw fail('not a JSON object');
  return value as Record<string, unknown>;
}

/** Drop the `check` key from a decoded record (the record types do not carry it). */
export function withoutCheck(record: Record<string, unknown>): Record<string, unknown> {
  const { check: _check, ...rest } = record;
  return rest;
}

/** A copy of a free-form string map/object with its keys sorted (deterministic output). */
export function sortedKeys<T>(value: Readonly<Record<string, T>>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const key of Object.keys(value).sort()) out[key] = value[key]!;
  return out;
}
