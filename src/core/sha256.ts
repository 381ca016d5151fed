/**
 * sha256 of bytes as lowercase hex. One-shot crypto.hash() (Node >= 20.12) allocates no native Hash
 * object; with several hashes per message, those objects waiting for GC were most of a large
 * backup's resident memory (bench/memory.ts). Older Node falls back to createHash.
 */
import crypto, { createHash } from 'node:crypto';

const oneShotHash = (crypto as unknown as { hash?: (algorithm: string, data: Uint8Array | string, encoding: 'hex') => string }).hash;

export function sha256Hex(data: Uint8Array | string): string {
  return typeof oneShotHash === 'function' ? oneShotHash('sha256', data, 'hex') : createHash('sha256').update(data).digest('hex');
}
