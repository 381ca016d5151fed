/**
 * Encoded blobs kept in memory between the messages that use them. A restore rebuilds every message
 * stored as parts from its stub and blobs; an attachment many messages share (SIS, --dedup-attachments)
 * was read from the spool, hashed and base64-encoded again for each of them. The first assembly of a
 * blob captures its encoding (AssemblyPiece.capture, checked against the blob's sha256 as it is made);
 * later ones take it from here (AssemblyPiece.encoded). The message's own size and sha256 are checked
 * as before, whatever the pieces came from.
 *
 * Bounded: blobs up to MAX_ENTRY_BYTES encoded, MAX_TOTAL_BYTES in all, least recently used first out.
 */
import type { AssemblyPiece } from './parts.js';

const MAX_ENTRY_BYTES = 1024 * 1024;
const MAX_TOTAL_BYTES = 8 * 1024 * 1024;
/** Blobs remembered as used once (for their second use): a dump with more starts again. */
const MAX_SEEN = 100_000;

type BlobPiece = Extract<AssemblyPiece, { type: 'blob' }>;

function keyOf(piece: BlobPiece): string | null {
  if (piece.sha256 === null) return null;
  const e = piece.encoding;
  return e.type === 'raw' ? `${piece.sha256}:raw` : `${piece.sha256}:b64:${e.lineLength}:${e.crlf ? 1 : 0}`;
}

export class EncodedBlobCache {
  private readonly entries = new Map<string, { readonly bytes: Buffer; readonly contentSha256: string; readonly contentSize: number }>();
  private total = 0;
  /** Blobs assembled once already (about 100 bytes each). */
  private readonly seen = new Set<string>();

  /** The pieces, with `encoded` where the cache has the blob and `capture` where it should keep it. */
  prepare(pieces: readonly AssemblyPiece[]): AssemblyPiece[] {
    return pieces.map((p) => {
      if (p.type !== 'blob') return p;
      const key = keyOf(p);
      if (key === null) return p;
      const hit = this.entries.get(key);
      // A record that claims another content size than the blob has goes the fresh way, which says so.
      if (hit !== undefined && hit.contentSize === p.contentSize) {
        this.entries.delete(key); // most recently used goes last
        this.entries.set(key, hit);
        return { ...p, encoded: hit };
      }
      // Captured at its second use, not its first: most blobs are used once, and capturing each of
      // them only made garbage (peak RSS of a 100k restore +10 MiB). Base64 grows by 4/3 plus line
      // ends: a blob whose encoding could not be kept is not captured.
      if (!this.seen.has(key)) {
        if (this.seen.size >= MAX_SEEN) this.seen.clear();
        this.seen.add(key);
        return p;
      }
      return p.contentSize * 1.4 <= MAX_ENTRY_BYTES ? { ...p, capture: true } : p;
    });
  }

  /** After a successful assembly: keep what was captured (`encoded`, by piece index). */
  keep(pieces: readonly AssemblyPiece[], encoded: ReadonlyMap<number, Buffer>, contentSha256: ReadonlyMap<number, string>): void {
    for (const [i, bytes] of encoded) {
      const p = pieces[i];
      const sha256 = contentSha256.get(i);
      if (p === undefined || p.type !== 'blob' || sha256 === undefined || bytes.length > MAX_ENTRY_BYTES) continue;
      const key = keyOf(p);
      if (key === null || this.entries.has(key)) continue;
      this.entries.set(key, { bytes, contentSha256: sha256, contentSize: p.contentSize });
      this.total += bytes.length;
      for (const [k, v] of this.entries) {
        if (this.total <= MAX_TOTAL_BYTES) break;
        this.entries.delete(k);
        this.total -= v.bytes.length;
      }
    }
  }
}
