/**
 * Compresses one independent zstd frame at a time: content size in the header (so readers can size
 * their output exactly) and a content checksum at the end (so `zstd -d`, our reader and the seek table
 * all verify it). Used on the main thread and inside the compression worker alike.
 */
import binding from 'zstd-napi/binding.js';

export class FrameCompressor {
  private readonly cctx = new binding.CCtx();
  private scratch: Buffer = Buffer.alloc(0);

  constructor(level: number) {
    this.cctx.setParameter(binding.CParameter.compressionLevel, level);
    this.cctx.setParameter(binding.CParameter.checksumFlag, 1);
    this.cctx.setParameter(binding.CParameter.contentSizeFlag, 1);
  }

  /**
   * Compress `input` into one frame. The result is a fresh buffer owning its own ArrayBuffer
   * (so it can be transferred between threads).
   */
  compressFrame(input: Uint8Array): Buffer {
    const bound = binding.compressBound(input.length);
    if (this.scratch.length < bound) this.scratch = Buffer.allocUnsafeSlow(bound);
    const length = this.cctx.compress2(this.scratch, input);
    const out = Buffer.allocUnsafeSlow(length);
    this.scratch.copy(out, 0, 0, length);
    return out;
  }
}
