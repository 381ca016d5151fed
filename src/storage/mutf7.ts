/**
 * Modified UTF-7 (RFC 3501 section 5.1.3), the encoding IMAP and Dovecot use for mailbox names on disk
 * unless the `UTF-8` location flag is set.
 *
 * - Printable US-ASCII (0x20..0x7e) stands for itself, except "&", which is written "&-".
 * - Everything else is UTF-16BE, base64-encoded with "," instead of "/", no padding, between "&" and "-".
 *
 * Decoding is strict, as Dovecot's imap_utf7_to_utf8(): a name that is not valid mUTF-7 (raw 8-bit
 * characters, bad base64, leftover bits, unpaired surrogates, printable ASCII inside a shift, an
 * unterminated shift) is rejected.
 */
import { StorageCorruptError } from '../core/errors.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,';
const DECODE = new Map<string, number>([...ALPHABET].map((c, i) => [c, i]));

function isDirect(code: number): boolean {
  return code >= 0x20 && code <= 0x7e;
}

function encodeRun(units: number[]): string {
  let out = '&';
  let bits = 0;
  let nbits = 0;
  for (const u of units) {
    bits = (bits << 16) | u;
    nbits += 16;
    while (nbits >= 6) {
      nbits -= 6;
      out += ALPHABET[(bits >> nbits) & 0x3f];
    }
    bits &= (1 << nbits) - 1;
  }
  if (nbits > 0) out += ALPHABET[(bits << (6 - nbits)) & 0x3f];
  return out + '-';
}

/** Encode a UTF-8 (JavaScript) string as modified UTF-7. */
export function encodeMutf7(name: string): string {
  let out = '';
  let run: number[] = [];
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    if (isDirect(code)) {
      if (run.length > 0) {
        out += encodeRun(run);
        run = [];
      }
      out += code === 0x26 ? '&-' : name[i];
    } else {
      run.push(code);
    }
  }
  if (run.length > 0) out += encodeRun(run);
  return out;
}

/** Decode modified UTF-7; null if `name` is not valid mUTF-7. */
export function tryDecodeMutf7(name: string): string | null {
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const c = name[i]!;
    const code = name.charCodeAt(i);
    if (!isDirect(code)) return null;
    if (c !== '&') {
      out += c;
      continue;
    }
    const end = name.indexOf('-', i + 1);
    if (end < 0) return null;
    if (end === i + 1) {
      out += '&';
      i = end;
      continue;
    }
    let bits = 0;
    let nbits = 0;
    const units: number[] = [];
    for (let j = i + 1; j < end; j++) {
      const v = DECODE.get(name[j]!);
      if (v === undefined) return null;
      bits = ((bits << 6) | v) & 0xffffff;
      nbits += 6;
      if (nbits >= 16) {
        nbits -= 16;
        units.push((bits >> nbits) & 0xffff);
      }
    }
    // Leftover bits must be fewer than 6 and all zero.
    if (nbits >= 6 || (bits & ((1 << nbits) - 1)) !== 0) return null;
    if (units.length === 0) return null;
    for (let k = 0; k < units.length; k++) {
      const u = units[k]!;
      if (u >= 0xd800 && u <= 0xdbff) {
        const lo = units[k + 1];
        if (lo === undefined || lo < 0xdc00 || lo > 0xdfff) return null;
        k++;
      } else if (u >= 0xdc00 && u <= 0xdfff) {
        return null;
      } else if (isDirect(u)) {
        // Printable ASCII must be written directly, never base64-encoded.
        return null;
      }
    }
    out += String.fromCharCode(...units);
    i = end;
  }
  return out;
}

/** True if `name` is valid modified UTF-7. */
export function isValidMutf7(name: string): boolean {
  return tryDecodeMutf7(name) !== null;
}

/** Decode modified UTF-7; throws StorageCorruptError if `name` is not valid mUTF-7. */
export function decodeMutf7(name: string): string {
  const decoded = tryDecodeMutf7(name);
  if (decoded === null) {
    throw new StorageCorruptError(`mailbox name "${name}" on disk is not valid modified UTF-7`, {
      mailbox: name,
      hint: 'if the store uses raw UTF-8 names, add :UTF-8 to the mail_location',
    });
  }
  return decoded;
}
