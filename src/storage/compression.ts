/**
 * Mail compressed by Dovecot's zlib plugin (`mail_plugins = zlib`, `zlib_save = gz | zstd | bz2 | lz4 |
 * xz`), recognised as Dovecot recognises it: by the first bytes of the stored body, whatever the names
 * or metadata say (lib-compression/compression.c compression_detect_handler and each handler's
 * is_compressed). Dovecot serves such mail decompressed. Maildir (maildir/reader.ts) decompresses gzip
 * and zstd, the formats Dovecot 2.3 builds write by default, and names the others; dbox with SIS
 * attachments (dbox/common/attachments.ts) refuses them clearly, as its X offsets count bytes of the
 * uncompressed message.
 */
import { createGunzip, gunzipSync } from 'node:zlib';
import type { Transform } from 'node:stream';
import { DecompressStream } from 'zstd-napi';
import binding from 'zstd-napi/binding.js';

export type Compression = 'gzip' | 'zstd' | 'bzip2' | 'xz' | 'lz4';

/** Bytes needed to recognise every format (Dovecot's LZ4 magic is the longest). */
export const MAGIC_BYTES = 15;

/** Dovecot's own LZ4 container header (lib-compression/iostream-lz4.h, IOSTREAM_LZ4_MAGIC). */
const LZ4_MAGIC = Buffer.from('Dovecot-LZ4\x0d\x2a\x9b\xc5', 'latin1');
const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);

/** The compression `head` (the first bytes of a stored body) starts with, or null for plain mail. */
export function compressionOf(head: Uint8Array): Compression | null {
  const b = Buffer.from(head.buffer, head.byteOffset, head.length);
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  // "BZh" and a block size digit: enough for Dovecot (an empty stream is followed by 0x17, not 0x31).
  if (b.length >= 4 && b.toString('latin1', 0, 3) === 'BZh' && b[3]! >= 0x31 && b[3]! <= 0x39) return 'bzip2';
  if (b.length >= XZ_MAGIC.length && b.subarray(0, XZ_MAGIC.length).equals(XZ_MAGIC)) return 'xz';
  if (b.length >= LZ4_MAGIC.length && b.subarray(0, LZ4_MAGIC.length).equals(LZ4_MAGIC)) return 'lz4';
  return null;
}

/** True for the formats mailvault decompresses. */
export function canDecompress(kind: Compression): kind is 'gzip' | 'zstd' {
  return kind === 'gzip' || kind === 'zstd';
}

/**
 * The whole file, decompressed (small messages), at most `limit` + 1 bytes (so a longer result shows,
 * and a small file claiming gigabytes costs no more than that). Throws what the decompressor throws
 * on damaged data.
 */
export function decompressWhole(kind: 'gzip' | 'zstd', data: Buffer, limit: number): Buffer {
  if (kind === 'gzip') {
    try {
      return gunzipSync(data, { maxOutputLength: limit + 1 });
    } catch (e) {
      // Over maxOutputLength: report it as the longer size it is.
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return Buffer.alloc(limit + 1);
      throw e;
    }
  }
  const dctx = new binding.DCtx();
  const out = Buffer.allocUnsafe(limit + 1);
  let produced = 0;
  let input = data;
  while (input.length > 0 && produced <= limit) {
    const [, made, used] = dctx.decompressStream(out.subarray(produced), input);
    if (made === 0 && used === 0) break;
    produced += made;
    input = input.subarray(used);
  }
  return out.subarray(0, produced);
}

/** A stream that decompresses (large messages). */
export function decompressStream(kind: 'gzip' | 'zstd'): Transform {
  return kind === 'gzip' ? createGunzip() : new DecompressStream();
}
