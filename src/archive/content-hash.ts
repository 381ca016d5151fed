/**
 * sha256 of a member's data as it streams past, without a native Hash object for data that comes in
 * one chunk (most mail): that one is hashed one-shot at the end. A Hash per member, waiting for GC,
 * was a good part of a restore's GC time (profiled).
 */
import { createHash, type Hash } from 'node:crypto';
import { sha256Hex } from './record-codec.js';

export class ContentHash {
  private first: Buffer | null = null;
  private hash: Hash | null = null;

  update(chunk: Buffer): void {
    if (this.hash !== null) {
      this.hash.update(chunk);
    } else if (this.first === null) {
      this.first = chunk;
    } else {
      this.hash = createHash('sha256').update(this.first).update(chunk);
      this.first = null;
    }
  }

  /** The sha256 (lowercase hex) of everything given; call once. */
  hex(): string {
    return this.hash !== null ? this.hash.digest('hex') : sha256Hex(this.first ?? Buffer.alloc(0));
  }
}
