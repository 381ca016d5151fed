/**
 * POSIX pax/ustar header blocks: the encoder used by the writer and the decoder used by the readers.
 * Only what a dump holds: regular files (typeflag '0') and per-file pax extended headers ('x').
 */
import { BLOCK } from './limits.js';

const USTAR_MAGIC = Buffer.from('ustar\u000000', 'latin1'); // "ustar\0" + version "00"
/** Largest size or mtime an 11-digit octal field holds. */
const MAX_OCTAL_11 = 0o77777777777;

function writeOctal(block: Buffer, value: number, offset: number, digits: number): void {
  block.write(value.toString(8).padStart(digits, '0'), offset, digits, 'latin1');
  block[offset + digits] = 0;
}

function checksum(block: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum;
}

function ustarBlock(name: string, prefix: string, size: number, mtime: number, typeflag: string): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, 'utf8');
  writeOctal(block, 0o644, 100, 7);
  writeOctal(block, 0, 108, 7);
  writeOctal(block, 0, 116, 7);
  writeOctal(block, size, 124, 11);
  writeOctal(block, mtime, 136, 11);
  block.write(typeflag, 156, 1, 'latin1');
  USTAR_MAGIC.copy(block, 257);
  writeOctal(block, 0, 329, 7);
  writeOctal(block, 0, 337, 7);
  if (prefix) block.write(prefix, 345, 155, 'utf8');
  block.write(`${checksum(block).toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'latin1');
  return block;
}

/**
 * The constant part of the ustar block of a regular file (mode 0644, uid/gid 0, typeflag '0', magic,
 * devmajor/minor 0), and its byte sum with the checksum field counted as spaces: encodeUstarInto()
 * copies it and adds only the bytes it writes, instead of building and summing a block from scratch
 * for every member (one of the larger per-message costs of a backup of small messages).
 */
const FILE_TEMPLATE = ((): Buffer => {
  const block = Buffer.alloc(BLOCK);
  writeOctal(block, 0o644, 100, 7);
  writeOctal(block, 0, 108, 7);
  writeOctal(block, 0, 116, 7);
  block.write('0', 156, 1, 'latin1');
  USTAR_MAGIC.copy(block, 257);
  writeOctal(block, 0, 329, 7);
  writeOctal(block, 0, 337, 7);
  return block;
})();
const FILE_TEMPLATE_SUM = checksum(FILE_TEMPLATE);

/** Write `value` as `digits` octal digits at `pos` (the NUL after them is already in the template); returns their byte sum. */
function putOctal(block: Buffer, pos: number, value: number, digits: number): number {
  let sum = 0;
  let v = value;
  for (let i = digits - 1; i >= 0; i--) {
    const digit = 0x30 + (v % 8);
    block[pos + i] = digit;
    sum += digit;
    v = Math.floor(v / 8);
  }
  return sum;
}

/**
 * Fast path of encodeFileHeader: when the member needs exactly one ustar block (printable-ASCII name
 * that fits ustar, size up to 11 octal digits), write that block into `buf` at `pos` and return true;
 * otherwise write nothing and return false (the caller uses encodeFileHeader). Same bytes as
 * encodeFileHeader. `buf` must have BLOCK bytes of room at `pos`.
 */
export function encodeUstarInto(buf: Buffer, pos: number, name: string, size: number, mtime: number): boolean {
  if (size > MAX_OCTAL_11 || name.length > 256) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  let prefixEnd = -1; // name[0, prefixEnd) goes into the prefix field, name(prefixEnd, end) into the name field
  if (name.length > 100) {
    const split = splitUstar(name);
    if (split === null) return false;
    prefixEnd = split.prefix.length;
  }
  const seconds = Math.min(Math.max(0, Math.floor(mtime)), MAX_OCTAL_11);
  FILE_TEMPLATE.copy(buf, pos);
  let sum = FILE_TEMPLATE_SUM;
  for (let i = prefixEnd + 1, j = pos; i < name.length; i++, j++) {
    const c = name.charCodeAt(i);
    buf[j] = c;
    sum += c;
  }
  for (let i = 0; i < prefixEnd; i++) {
    const c = name.charCodeAt(i);
    buf[pos + 345 + i] = c;
    sum += c;
  }
  sum += putOctal(buf, pos + 124, size, 11);
  sum += putOctal(buf, pos + 136, seconds, 11);
  // "<6 octal digits>\0 ", as ustarBlock writes it.
  putOctal(buf, pos + 148, sum, 6);
  buf[pos + 154] = 0;
  buf[pos + 155] = 0x20;
  return true;
}

/** Split an ASCII name into ustar prefix (<= 155) and name (<= 100), or null if it cannot be. */
function splitUstar(name: string): { prefix: string; name: string } | null {
  if (!/^[\x20-\x7e]*$/.test(name)) return null;
  if (name.length <= 100) return { prefix: '', name };
  for (let i = name.indexOf('/'); i !== -1; i = name.indexOf('/', i + 1)) {
    if (i <= 155 && name.length - i - 1 <= 100 && name.length - i - 1 > 0) return { prefix: name.slice(0, i), name: name.slice(i + 1) };
  }
  return null;
}

/** One pax record "<len> <key>=<value>\n", where <len> counts the whole record in bytes. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLength = Buffer.byteLength(body);
  let length = bodyLength + String(bodyLength).length;
  if (String(length).length + bodyLength !== length) length = bodyLength + String(length).length;
  return `${length}${body}`;
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/**
 * The header block(s) of a regular-file member: one ustar block, or a pax 'x' header (path and/or size)
 * followed by a ustar block when the name is not ASCII, does not fit ustar, or the size needs > 11 digits.
 * `mtime` in Unix seconds (clamped to the field's range).
 */
export function encodeFileHeader(name: string, size: number, mtime: number): Buffer {
  const seconds = Math.min(Math.max(0, Math.floor(mtime)), MAX_OCTAL_11);
  const split = splitUstar(name);
  const bigSize = size > MAX_OCTAL_11;
  if (split && !bigSize) return ustarBlock(split.name, split.prefix, size, seconds, '0');
  let pax = '';
  if (!split) pax += paxRecord('path', name);
  if (bigSize) pax += paxRecord('size', String(size));
  const paxData = Buffer.from(pax, 'utf8');
  // Fallback ustar name for tools without pax: ASCII rendering, cut to 100 bytes.
  const fallback = split ?? { prefix: '', name: name.replace(/[^\x20-\x7e]/g, '_').slice(-100) };
  return Buffer.concat([
    ustarBlock('PaxHeader', '', paxData.length, seconds, 'x'),
    paxData,
    Buffer.alloc(padding(paxData.length)),
    ustarBlock(fallback.name, fallback.prefix, bigSize ? 0 : size, seconds, '0'),
  ]);
}

/** Zero bytes that pad `size` data bytes to a whole block. */
export function dataPadding(size: number): Buffer {
  return Buffer.alloc(padding(size));
}

export { padding as paddingLength };

/** A decoded ustar block. */
export interface UstarHeader {
  name: string;
  size: number;
  mtime: number;
  typeflag: string;
}

/** Why a block is not a valid header (the caller adds member and offset). */
export class HeaderFormatError extends Error {}

function readOctal(block: Buffer, offset: number, length: number, what: string): number {
  const field = block.subarray(offset, offset + length);
  if (field[0]! & 0x80) throw new HeaderFormatError(`${what} field uses base-256 encoding, which a mailvault dump never does`);
  const text = field.toString('latin1').replace(/[\u0000 ]+$/, '').replace(/^ +/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new HeaderFormatError(`${what} field is not octal`);
  return parseInt(text, 8);
}

function readString(block: Buffer, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? length : end).toString('utf8');
}

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

/** Decode a 512-byte ustar block. Throws HeaderFormatError ("Invalid tar header: ...") when malformed. */
export function decodeUstar(block: Buffer): UstarHeader {
  const recorded = readOctal(block, 148, 8, 'checksum');
  if (recorded !== checksum(block)) {
    throw new HeaderFormatError(`Invalid tar header: checksum mismatch (recorded ${recorded}, computed ${checksum(block)})`);
  }
  if (!block.subarray(257, 263).equals(USTAR_MAGIC.subarray(0, 6))) throw new HeaderFormatError('Invalid tar header: not a POSIX ustar header');
  const name = readString(block, 0, 100);
  const prefix = readString(block, 345, 155);
  return {
    name: prefix ? `${prefix}/${name}` : name,
    size: readOctal(block, 124, 12, 'size'),
    mtime: readOctal(block, 136, 12, 'mtime'),
    typeflag: String.fromCharCode(block[156]!),
  };
}

/** Parse pax extended header records. Throws HeaderFormatError when malformed. */
export function decodePax(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space === -1) throw new HeaderFormatError('Invalid pax header: record without length');
    const length = Number(data.subarray(pos, space).toString('latin1'));
    if (!Number.isInteger(length) || length <= space - pos + 1 || pos + length > data.length || data[pos + length - 1] !== 0x0a) {
      throw new HeaderFormatError('Invalid pax header: bad record length');
    }
    const record = data.subarray(space + 1, pos + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq <= 0) throw new HeaderFormatError('Invalid pax header: record without key');
    out.set(record.slice(0, eq), record.slice(eq + 1));
    pos += length;
  }
  return out;
}
