/**
 * The version 4 trailer digest recomputed from the spec's rule alone (formats/dump-v1.md 5.6), for a
 * dump written by mailvault (trailer at file length - 2560): the content members (blobs, and the
 * body or stub of every message) are found through the TOC's member spans, not the tar parser.
 */
import { createHash } from 'node:crypto';

export interface SpecDigest {
  /** What the trailer says. */
  readonly trailer: { readonly algorithm: string; readonly value: string };
  /** The digest computed by the rule, and the plain sha256 of the same bytes (versions 1-3). */
  readonly computed: string;
  readonly plain: string;
  /** Member names of the content members, in stream order. */
  readonly contentMembers: readonly string[];
}

export function specDigest(dump: Buffer): SpecDigest {
  const trailerOffset = dump.length - 1024 - 1024 - 512;
  const trailer = JSON.parse(dump.subarray(trailerOffset + 512, trailerOffset + 512 + 1024).toString('utf8')) as {
    toc: { dataOffset: number; size: number };
    digest: { algorithm: string; value: string };
  };
  const content = dump
    .subarray(trailer.toc.dataOffset, trailer.toc.dataOffset + trailer.toc.size)
    .toString('utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; member: string; dataOffset: number; size: number; sha256: string })
    .filter((e) => e.type === 'blob' || e.type === 'message')
    .sort((a, b) => a.dataOffset - b.dataOffset);
  const h = createHash('sha256');
  let pos = 0;
  for (const e of content) {
    h.update(dump.subarray(pos, e.dataOffset));
    h.update(Buffer.from(e.sha256, 'hex'));
    pos = e.dataOffset + e.size + ((512 - (e.size % 512)) % 512);
  }
  h.update(dump.subarray(pos, trailerOffset));
  return {
    trailer: trailer.digest,
    computed: h.digest('hex'),
    plain: createHash('sha256').update(dump.subarray(0, trailerOffset)).digest('hex'),
    contentMembers: content.map((e) => e.member),
  };
}
