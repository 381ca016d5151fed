/**
 * Byte-level facts of the zstd frame format (RFC 8878) and of the zstd seekable format
 * (facebook/zstd contrib/seekable_format/zstd_seekable_compression_format.md, version 0.1.0).
 *
 * Seekable layout: independent zstd frames, then one skippable frame holding the seek table:
 *
 *     Skippable_Magic_Number 0x184D2A5E  u32 LE
 *     Frame_Size                         u32 LE  (bytes after this field)
 *     Seek_Table_Entries, one per frame:
 *       Compressed_Size                  u32 LE
 *       Decompressed_Size                u32 LE
 *       [Checksum]                       u32 LE  (low 32 bits of XXH64(seed 0) of the frame's content)
 *     Seek_Table_Footer:
 *       Number_Of_Frames                 u32 LE
 *       Seek_Table_Descriptor            u8      (bit 7 Checksum_Flag, bits 6-2 reserved = 0, 1-0 unused)
 *       Seekable_Magic_Number 0x8F92EAB1 u32 LE  (last four bytes of the file)
 *
 * The seek-table checksum is by definition the same value zstd stores as a frame's Content_Checksum
 * (RFC 8878 3.1.1: "the lowest 4 bytes of xxh64() digest, seed 0, little-endian"), so the writer copies
 * it from the end of each compressed frame instead of hashing the data a second time.
 */

export const ZSTD_FRAME_MAGIC = 0xfd2fb528;
/** Skippable frames use 0x184D2A50..0x184D2A5F. */
export const SKIPPABLE_MAGIC_MIN = 0x184d2a50;
export const SKIPPABLE_MAGIC_MASK = 0xfffffff0;
/** The skippable magic the seekable format uses for its seek table frame. */
export const SEEK_TABLE_SKIPPABLE_MAGIC = 0x184d2a5e;
export const SEEKABLE_MAGIC = 0x8f92eab1;
export const SEEK_TABLE_FOOTER_SIZE = 9;
export const SKIPPABLE_HEADER_SIZE = 8;
/** Largest frame content the reference implementation accepts (ZSTD_SEEKABLE_MAX_FRAME_DECOMPRESSED_SIZE). */
export const MAX_FRAME_DECOMPRESSED_SIZE = 0x40000000;
/** ZSTD_SEEKABLE_MAXFRAMES. */
export const MAX_SEEKABLE_FRAMES = 0x8000000;

const CHECKSUM_FLAG = 0x80;
const RESERVED_BITS = 0x7c;

export interface SeekTableEntry {
  compressedSize: number;
  decompressedSize: number;
  /** Low 32 bits of XXH64 of the frame's content; undefined when the table carries no checksums. */
  checksum: number | undefined;
}

/** True if `head` (>= 4 bytes) starts with a zstd frame or a skippable frame magic. */
export function isZstdMagic(head: Buffer): boolean {
  if (head.length < 4) return false;
  const magic = head.readUInt32LE(0);
  return magic === ZSTD_FRAME_MAGIC || isSkippableMagic(magic);
}

export function isSkippableMagic(magic: number): boolean {
  return ((magic & SKIPPABLE_MAGIC_MASK) >>> 0) === SKIPPABLE_MAGIC_MIN;
}

/**
 * The Content_Checksum of a complete zstd frame (its last four bytes, read as u32 LE), or undefined if
 * the frame header says the frame has none.
 */
export function frameContentChecksum(frame: Uint8Array): number | undefined {
  if (frame.length < 9) return undefined;
  const descriptor = frame[4]!;
  const hasChecksum = (descriptor & 0x04) !== 0;
  if (!hasChecksum) return undefined;
  const view = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  return view.readUInt32LE(frame.length - 4);
}

/** Serialise a seek table frame for `entries`. Checksums are written only if every entry has one. */
export function encodeSeekTable(entries: readonly SeekTableEntry[]): Buffer {
  const withChecksums = entries.every((e) => e.checksum !== undefined);
  const entrySize = withChecksums ? 12 : 8;
  const frameSize = entries.length * entrySize + SEEK_TABLE_FOOTER_SIZE;
  const out = Buffer.alloc(SKIPPABLE_HEADER_SIZE + frameSize);
  out.writeUInt32LE(SEEK_TABLE_SKIPPABLE_MAGIC, 0);
  out.writeUInt32LE(frameSize, 4);
  let pos = SKIPPABLE_HEADER_SIZE;
  for (const e of entries) {
    out.writeUInt32LE(e.compressedSize, pos);
    out.writeUInt32LE(e.decompressedSize, pos + 4);
    if (withChecksums) out.writeUInt32LE(e.checksum!, pos + 8);
    pos += entrySize;
  }
  out.writeUInt32LE(entries.length, pos);
  out.writeUInt8(withChecksums ? CHECKSUM_FLAG : 0, pos + 4);
  out.writeUInt32LE(SEEKABLE_MAGIC, pos + 5);
  return out;
}

export interface SeekTableFooter {
  frameCount: number;
  hasChecksums: boolean;
  /** Size of the whole seek table frame, skippable header included. */
  tableFrameSize: number;
}

/**
 * Parse the 9-byte footer at the very end of a file. Returns null if the file does not end with the
 * seekable magic, or if the descriptor uses reserved bits (a future, incompatible table layout: such
 * a file is still a valid zstd stream and can be read sequentially).
 */
export function parseSeekTableFooter(footer: Buffer): SeekTableFooter | null {
  if (footer.length !== SEEK_TABLE_FOOTER_SIZE) return null;
  if (footer.readUInt32LE(5) !== SEEKABLE_MAGIC) return null;
  const descriptor = footer.readUInt8(4);
  if ((descriptor & RESERVED_BITS) !== 0) return null;
  const frameCount = footer.readUInt32LE(0);
  const hasChecksums = (descriptor & CHECKSUM_FLAG) !== 0;
  const tableFrameSize = SKIPPABLE_HEADER_SIZE + frameCount * (hasChecksums ? 12 : 8) + SEEK_TABLE_FOOTER_SIZE;
  return { frameCount, hasChecksums, tableFrameSize };
}

/**
 * Parse a whole seek table frame (as located by its footer). Returns null if the bytes are not a seek
 * table frame consistent with that footer.
 */
export function parseSeekTable(table: Buffer, footer: SeekTableFooter): SeekTableEntry[] | null {
  if (table.length !== footer.tableFrameSize) return null;
  if (table.readUInt32LE(0) !== SEEK_TABLE_SKIPPABLE_MAGIC) return null;
  if (table.readUInt32LE(4) !== footer.tableFrameSize - SKIPPABLE_HEADER_SIZE) return null;
  const entrySize = footer.hasChecksums ? 12 : 8;
  const entries: SeekTableEntry[] = new Array(footer.frameCount);
  let pos = SKIPPABLE_HEADER_SIZE;
  for (let i = 0; i < footer.frameCount; i++) {
    entries[i] = {
      compressedSize: table.readUInt32LE(pos),
      decompressedSize: table.readUInt32LE(pos + 4),
      checksum: footer.hasChecksums ? table.readUInt32LE(pos + 8) : undefined,
    };
    pos += entrySize;
  }
  return entries;
}
