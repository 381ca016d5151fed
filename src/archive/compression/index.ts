/**
 * The compression layer of the dump format: `--compress` parsing, the seekable zstd writer, a reader
 * for any zstd stream, and random access into seekable files. The archive code imports from here only.
 */
export {
  type CompressionOption,
  parseCompressionOption,
  DEFAULT_FRAME_SIZE,
  DEFAULT_ZSTD_LEVEL,
} from './compression-option.js';
export { createCompressStream } from './compress-stream.js';
export { createDecompressStream } from './decompress-stream.js';
export { SeekableZstdFile, type RandomAccessFile, type SeekableOpenOptions } from './seekable-file.js';
export { isZstdMagic } from './zstd-format.js';
