/**
 * Compressed mail bodies, recognised as Dovecot's zlib plugin recognises them: by the first bytes of the
 * stored body, whatever the metadata says (lib-compression/compression.c, `compression_detect_handler`
 * and each handler's `is_compressed`). Dovecot decompresses before it joins SIS attachments
 * (dbox-mail.c `get_mail_stream`), and the `Z` size is the uncompressed size either way, so the bytes are
 * the only sign. mailvault does not decompress; callers turn a hit into a clear error.
 */

/** Dovecot's own LZ4 container header (lib-compression/iostream-lz4.h, IOSTREAM_LZ4_MAGIC). */
const LZ4_MAGIC = Buffer.from('Dovecot-LZ4\r\x2a\x9b\xc5', 'latin1');

/** Bytes to read to recognise every format below. */
export const COMPRESSION_MAGIC_BYTES = LZ4_MAGIC.length;

/** The compression format `head` (the first bytes of a body) starts with, or null for plain mail. */
export function detectCompression(head: Buffer): 'gzip' | 'bzip2' | 'xz' | 'lz4' | 'zstd' | null {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  // "BZh" and a block size digit: enough for Dovecot (an empty stream is followed by 0x17, not 0x31).
  if (head.length >= 4 && head.toString('latin1', 0, 3) === 'BZh' && head[3]! >= 0x31 && head[3]! <= 0x39) return 'bzip2';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= LZ4_MAGIC.length && head.subarray(0, LZ4_MAGIC.length).equals(LZ4_MAGIC)) return 'lz4';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return null;
}
