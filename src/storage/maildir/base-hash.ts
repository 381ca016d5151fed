/**
 * FNV-1a (32 bit) over a Maildir base name's UTF-8 bytes: the one hash the listing's join table and
 * the commit path's BaseHashes use. Base names Dovecot writes are ASCII, so a string is hashed by
 * its char codes when they are all below 0x80 (the same as its bytes) and encoded only otherwise.
 */
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** Hash of the bytes data[start, end), unsigned. */
export function hashBaseBytes(data: Uint8Array, start: number, end: number): number {
  let h = FNV_OFFSET;
  for (let i = start; i < end; i++) h = Math.imul(h ^ data[i]!, FNV_PRIME);
  return h >>> 0;
}

/** Hash of name[0, end) if those chars are all ASCII (then equal to hashBaseBytes of its bytes), else -1. */
export function hashAsciiBase(name: string, end: number): number {
  let h = FNV_OFFSET;
  let all = 0;
  for (let k = 0; k < end; k++) {
    const c = name.charCodeAt(k);
    all |= c;
    h = Math.imul(h ^ c, FNV_PRIME);
  }
  return all > 0x7f ? -1 : h >>> 0;
}

/** Hash of the base name `name` as UTF-8. */
export function hashBase(name: string): number {
  const h = hashAsciiBase(name, name.length);
  if (h >= 0) return h;
  const bytes = Buffer.from(name, 'utf8');
  return hashBaseBytes(bytes, 0, bytes.length);
}
