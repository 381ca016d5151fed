/**
 * The decompressing side: a Transform reading any sequence of zstd frames (ours, or those of the zstd
 * CLI: one frame or many, with or without checksums) and skipping skippable frames (our seek table).
 *
 * Frame checksums are verified by libzstd when present. Errors carry where they happened: the
 * compressed offset of the frame that failed (in the message) and the decompressed offset reached
 * (in `context.offset`, which is an offset in the uncompressed dump stream).
 */
import { Transform, type TransformCallback } from 'node:stream';
import binding from 'zstd-napi/binding.js';
import { ArchiveCorruptError, ArchiveTruncatedError } from '../../core/errors.js';
import { isSkippableMagic, parseSeekTable, parseSeekTableFooter, SEEK_TABLE_FOOTER_SIZE, ZSTD_FRAME_MAGIC } from './zstd-format.js';

const OUT_SIZE = binding.dStreamOutSize();

/** The compressed bytes kept for checkSeekTable: a seek table of up to ~350,000 frames (350 GB of dump in 1 MiB frames). */
const SEEK_TABLE_TAIL_BYTES = 4 * 1024 * 1024;

export interface DecompressOptions {
  /**
   * Check, at the end, that a seek table the stream ends with (zstd-format.ts) describes its frames: their
   * number, compressed and decompressed sizes and checksums. A wrong table breaks only random access, which
   * checks each frame it reads, so only `verify` asks for this.
   */
  readonly checkSeekTable?: boolean;
}

/** Decompresses any sequence of zstd frames, skipping skippable frames. */
export function createDecompressStream(options: DecompressOptions = {}): Transform {
  return new ZstdDecompressStream(options.checkSeekTable === true);
}

/** A frame as the stream met it (for checkSeekTable). */
interface FrameSeen {
  readonly compressedSize: number;
  readonly decompressedSize: number;
  /** The frame's Content_Checksum (its last 4 bytes, if its header says it has one). */
  readonly checksum: number | undefined;
  /** A skippable frame (no content; not in a seek table). */
  readonly skippable: boolean;
}

class ZstdDecompressStream extends Transform {
  private readonly dctx = new binding.DCtx();
  private out = Buffer.allocUnsafe(OUT_SIZE);
  /** Compressed bytes consumed so far. */
  private consumed = 0;
  /** Decompressed bytes produced so far. */
  private produced = 0;
  /** Compressed offset at which the frame being decoded starts. */
  private frameStart = 0;
  private inFrame = false;
  /** Set while output is held back because the reader is slow; called by _read. */
  private resumeOutput: (() => void) | null = null;
  /** checkSeekTable: the frames met, the first 5 and last 4 bytes of the current one, the last compressed bytes. */
  private readonly frames: FrameSeen[] = [];
  private frameProduced = 0;
  private frameHead = Buffer.alloc(0);
  private frameLast4 = Buffer.alloc(0);
  private tail: Buffer[] = [];
  private tailBytes = 0;

  constructor(private readonly checkSeekTable: boolean) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.decompressChunk(chunk).then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    if (this.consumed === 0) {
      callback(
        new ArchiveTruncatedError('zstd stream is empty: no frame at all', {
          offset: 0,
          hint: 'the file was cut short or not written; use another copy of the dump',
        }),
      );
      return;
    }
    if (this.inFrame) {
      callback(
        new ArchiveTruncatedError(
          `zstd stream ends in the middle of the frame starting at compressed byte ${this.frameStart} ` +
            `(${this.consumed} compressed bytes read)`,
          {
            offset: this.produced,
            hint: 'the file was cut short (interrupted copy or full disk); use a complete copy of the dump',
          },
        ),
      );
      return;
    }
    try {
      if (this.checkSeekTable) this.compareSeekTable();
    } catch (err) {
      callback(err as Error);
      return;
    }
    callback();
  }

  /** checkSeekTable: the bytes `consumed` of the current frame went by. */
  private noteConsumed(bytes: Buffer): void {
    if (this.frameHead.length < 5) this.frameHead = Buffer.concat([this.frameHead, bytes.subarray(0, 5 - this.frameHead.length)]);
    this.frameLast4 = bytes.length >= 4 ? Buffer.from(bytes.subarray(bytes.length - 4)) : Buffer.concat([this.frameLast4, bytes]).subarray(-4);
    this.tail.push(Buffer.from(bytes));
    this.tailBytes += bytes.length;
    while (this.tail.length > 1 && this.tailBytes - this.tail[0]!.length >= SEEK_TABLE_TAIL_BYTES) this.tailBytes -= this.tail.shift()!.length;
  }

  /** checkSeekTable: a frame ended at this.consumed, `lastOutput` bytes of its output not yet counted in this.produced. */
  private noteFrameEnd(lastOutput: number): void {
    const magic = this.frameHead.length >= 4 ? this.frameHead.readUInt32LE(0) : 0;
    const hasChecksum = this.frameHead.length >= 5 && (this.frameHead[4]! & 0x04) !== 0 && magic === ZSTD_FRAME_MAGIC;
    this.frames.push({
      skippable: isSkippableMagic(magic),
      compressedSize: this.consumed - this.frameStart,
      decompressedSize: this.produced + lastOutput - this.frameProduced,
      checksum: hasChecksum && this.frameLast4.length === 4 ? this.frameLast4.readUInt32LE(0) : undefined,
    });
    this.frameProduced = this.produced + lastOutput;
    this.frameHead = Buffer.alloc(0);
    this.frameLast4 = Buffer.alloc(0);
  }

  /** checkSeekTable: a seek table at the end must describe the frames before it. */
  private compareSeekTable(): void {
    const tail = Buffer.concat(this.tail);
    if (tail.length < SEEK_TABLE_FOOTER_SIZE) return;
    const footer = parseSeekTableFooter(tail.subarray(tail.length - SEEK_TABLE_FOOTER_SIZE));
    if (footer === null) return; // no seek table (zstd CLI output): nothing to compare
    const fail = (why: string): ArchiveCorruptError =>
      new ArchiveCorruptError(`zstd seek table is wrong: ${why}`, {
        offset: this.produced,
        hint: 'the compressed data is intact, but random access (restore or extract of a few messages from this file) refuses the frames the table misdescribes: read the file in one pass (cat FILE | mailvault restore - ...), or rewrite it without a seek table: zstd -dc FILE | zstd -3 -o NEW',
      });
    // A table over SEEK_TABLE_TAIL_BYTES (more than ~350,000 frames) is not checked (formats/dump-v1.md 9).
    if (footer.tableFrameSize > tail.length) return;
    const entries = parseSeekTable(tail.subarray(tail.length - footer.tableFrameSize), footer);
    const last = this.frames[this.frames.length - 1];
    if (entries === null || last === undefined || last.compressedSize !== footer.tableFrameSize || last.decompressedSize !== 0) throw fail('the skippable frame at the end is not a whole seek table');
    // The seek table lists the zstd frames; skippable frames elsewhere in the stream are not in it.
    const data = this.frames.slice(0, -1).filter((f) => !f.skippable);
    if (data.length !== entries.length) throw fail(`it lists ${entries.length} frames, the stream has ${data.length} before it`);
    for (let i = 0; i < data.length; i++) {
      const f = data[i]!;
      const e = entries[i]!;
      if (e.compressedSize !== f.compressedSize || e.decompressedSize !== f.decompressedSize) {
        throw fail(`frame ${i} is ${f.compressedSize} compressed bytes holding ${f.decompressedSize}; the table says ${e.compressedSize} holding ${e.decompressedSize}`);
      }
      // A frame without a content checksum cannot be compared with the table's (the seekable format allows it).
      if (e.checksum !== undefined && f.checksum !== undefined && e.checksum !== f.checksum) throw fail(`frame ${i}: the table's checksum ${e.checksum.toString(16)} is not the frame's ${f.checksum.toString(16)}`);
    }
  }

  override _read(size: number): void {
    const resume = this.resumeOutput;
    if (resume !== null) {
      this.resumeOutput = null;
      resume();
    }
    super._read(size);
  }

  private async decompressChunk(chunk: Buffer): Promise<void> {
    let src = chunk;
    for (;;) {
      let ret: number;
      let produced: number;
      let consumed: number;
      try {
        [ret, produced, consumed] = this.dctx.decompressStream(this.out, src);
      } catch (err) {
        throw this.corruptError(err, this.consumed);
      }
      if (this.checkSeekTable && consumed > 0) this.noteConsumed(src.subarray(0, consumed));
      this.consumed += consumed;
      src = src.subarray(consumed);
      if (ret === 0) {
        // A frame (or skippable frame) ended exactly here and all its output was returned.
        if (this.checkSeekTable) this.noteFrameEnd(produced);
        this.inFrame = false;
        this.frameStart = this.consumed;
      } else if (consumed > 0 || produced > 0) {
        this.inFrame = true;
      }
      const outputFull = produced === this.out.length;
      if (produced > 0) {
        const data = this.out.subarray(0, produced);
        this.out = Buffer.allocUnsafe(OUT_SIZE);
        this.produced += produced;
        if (!this.push(data)) await new Promise<void>((resolve) => (this.resumeOutput = resolve));
      }
      if (src.length === 0 && (ret === 0 || !outputFull)) return;
    }
  }

  private corruptError(err: unknown, consumedBefore: number): ArchiveCorruptError {
    const reason = err instanceof Error ? err.message : String(err);
    const needsLongWindow = /memory|window/i.test(reason);
    return new ArchiveCorruptError(
      `zstd data is corrupt in the frame starting at compressed byte ${this.frameStart} ` +
        `(detected after ${consumedBefore} compressed bytes): ${reason}`,
      {
        offset: this.produced,
        cause: err,
        hint: needsLongWindow
          ? 'the file was compressed with a window larger than 128 MiB (zstd --long); decompress it with `zstd -d --long=31` first and read the result'
          : 'the dump file is damaged; use another copy. `zstd -d` can recover the data before this offset',
      },
    );
  }
}
