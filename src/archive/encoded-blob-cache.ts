/**
 * Attachment contents kept encoded in memory between the messages that use them. The writer (a
 * backup rebuilding each SIS message to hash it) and the reader (a restore rebuilding each message
 * stored as parts) both assemble messages from their stubs and blobs; an attachment many messages
 * share would otherwise be read, hashed and base64-encoded again for each of them. The first assembly
 * that captures a content (AssemblyPiece.capture, checked against its sha256 as it is made) puts its
 * encoding here; later ones take it (AssemblyPiece.encoded). Each message's own size and sha256 are
 * still checked, whatever its pieces came from.
 *
 * EncodedContentCache is the store both use: by a key naming one content in one encoding, least
 * recently used out past a byte bound, captured from a content's second use only (most attachments
 * belong to one message, and capturing each made garbage: peak RSS of a 100k restore +10 MiB).
 * EncodedBlobCache is the reader's side: keyed by the blob's sha256.
 */
import type { PartEncoding } from './records.js';
import type { AssemblyPiece } from './parts.js';

/** About 100 bytes each: forgotten all at once when full, at most about 10 MB. */
const CONTENT_KEYS_REMEMBERED = 100_000;

interface Entry {
  readonly bytes: Buffer;
  readonly contentSha256: string;
  readonly contentSize: number;
}

export class EncodedContentCache {
  private readonly entries = new Map<string, Entry>();
  private total = 0;
  /** Keys of the contents seen so far (up to CONTENT_KEYS_REMEMBERED). */
  private readonly seen = new Set<string>();

  /**
   * `maxTotalBytes`: encodings kept in all; `maxContentBytes`: the largest content whose encoding is
   * kept.
   */
  constructor(
    private readonly maxTotalBytes: number,
    private readonly maxContentBytes: number,
  ) {}

  /** The key of `contentKey` (one content) in `encoding`. */
  static key(contentKey: string, encoding: PartEncoding): string {
    return encoding.type === 'raw' ? `raw\0${contentKey}` : `b64:${encoding.lineLength}:${encoding.crlf ? 'crlf' : 'lf'}\0${contentKey}`;
  }

  /** Whether contents of this size are kept at all. */
  holds(contentSize: number): boolean {
    return contentSize <= this.maxContentBytes;
  }

  /**
   * The encoding kept under `key` (now the most recently used), or undefined. A key names one content;
   * a size other than that content's is not it (the fresh assembly then says what is wrong).
   */
  get(key: string, contentSize: number): { readonly bytes: Buffer; readonly contentSha256: string } | undefined {
    const hit = this.entries.get(key);
    if (hit === undefined || hit.contentSize !== contentSize) return undefined;
    this.entries.delete(key);
    this.entries.set(key, hit);
    return { bytes: hit.bytes, contentSha256: hit.contentSha256 };
  }

  /** True if `key` was seen before (since the set was last cleared): capture it now. Remembers it. */
  seenBefore(key: string): boolean {
    if (this.seen.has(key)) return true;
    if (this.seen.size >= CONTENT_KEYS_REMEMBERED) this.seen.clear();
    this.seen.add(key);
    return false;
  }

  put(key: string, bytes: Buffer, contentSha256: string, contentSize: number): void {
    const old = this.entries.get(key);
    if (old !== undefined) {
      this.entries.delete(key);
      this.total -= old.bytes.length;
    }
    this.entries.set(key, { bytes, contentSha256, contentSize });
    this.total += bytes.length;
    for (const [oldest, entry] of this.entries) {
      if (this.total <= this.maxTotalBytes) break;
      this.entries.delete(oldest);
      this.total -= entry.bytes.length;
    }
  }
}

/** The reader's bounds: encodings up to about 1 MiB (base64 grows by 4/3 plus line ends), 8 MiB in all. */
const READER_MAX_CONTENT_BYTES = Math.floor((1024 * 1024) / 1.4);
const READER_MAX_TOTAL_BYTES = 8 * 1024 * 1024;

type BlobPiece = Extract<AssemblyPiece, { type: 'blob' }>;

const keyOf = (piece: BlobPiece): string | null => (piece.sha256 === null ? null : EncodedContentCache.key(piece.sha256, piece.encoding));

/** The restore's cache: blob pieces by their sha256. */
export class EncodedBlobCache {
  private readonly cache = new EncodedContentCache(READER_MAX_TOTAL_BYTES, READER_MAX_CONTENT_BYTES);

  /** The pieces, with `encoded` where the cache has the blob and `capture` where it should keep it. */
  prepare(pieces: readonly AssemblyPiece[]): AssemblyPiece[] {
    return pieces.map((p) => {
      if (p.type !== 'blob') return p;
      const key = keyOf(p);
      if (key === null || !this.cache.holds(p.contentSize)) return p;
      const hit = this.cache.get(key, p.contentSize);
      if (hit !== undefined) return { ...p, encoded: hit };
      return this.cache.seenBefore(key) ? { ...p, capture: true } : p;
    });
  }

  /** After a successful assembly: keep what was captured (`encoded`, by piece index). */
  keep(pieces: readonly AssemblyPiece[], encoded: ReadonlyMap<number, Buffer>, contentSha256: ReadonlyMap<number, string>): void {
    for (const [i, bytes] of encoded) {
      const p = pieces[i];
      const sha256 = contentSha256.get(i);
      const key = p !== undefined && p.type === 'blob' ? keyOf(p) : null;
      if (key !== null && sha256 !== undefined) this.cache.put(key, bytes, sha256, (p as BlobPiece).contentSize);
    }
  }
}
