/**
 * Message files compressed by Dovecot's zlib plugin (`mail_plugins = zlib`, `zlib_save = gz | zstd |
 * bz2 | lz4 | xz`): the file holds the compressed bytes while its name's ,S= holds the size of the
 * message as IMAP serves it (maildir-save.c maildir_save_finish_real). Dovecot recognises them by
 * their first bytes (lib-compression/compression.c compression_detect_handler) and serves them
 * decompressed; mailvault does the same for gzip and zstd, the two Dovecot 2.3 writes by default
 * builds, and names the others.
 *
 * Only a file whose size differs from the message's recorded size is looked at: a message stored as
 * it is always has that size, so plain mail whose first bytes happen to look like a magic number is
 * never touched.
 */
import { createGunzip, gunzipSync } from 'node:zlib';
import type { Transform } from 'node:stream';
import { DecompressStream } from 'zstd-napi';
import binding from 'zstd-napi/binding.js';

export type Compression = 'gzip' | 'zstd' | 'bzip2' | 'xz' | 'lz4';

/** Bytes needed to recognise every format (Dovecot's LZ4 magic is the longest). */
export const MAGIC_BYTES = 15;

const LZ4_MAGIC = Buffer.from('Dovecot-LZ4\x0d\x2a\x9b\xc5', 'latin1');
const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);

/** The compression `head` (the file's first bytes) starts with, or null. */
export function compressionOf(head: Uint8Array): Compression | null {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  if (head.length >= 3 && head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return 'bzip2';
  if (head.length >= XZ_MAGIC.length && Buffer.from(head.buffer, head.byteOffset, XZ_MAGIC.length).equals(XZ_MAGIC)) return 'xz';
  if (head.length >= LZ4_MAGIC.length && Buffer.from(head.buffer, head.byteOffset, LZ4_MAGIC.length).equals(LZ4_MAGIC)) return 'lz4';
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
