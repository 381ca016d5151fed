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

const OUT_SIZE = binding.dStreamOutSize();

/** Decompresses any sequence of zstd frames, skipping skippable frames. */
export function createDecompressStream(): Transform {
  return new ZstdDecompressStream();
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
    callback();
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
      this.consumed += consumed;
      src = src.subarray(consumed);
      if (ret === 0) {
        // A frame (or skippable frame) ended exactly here and all its output was returned.
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
