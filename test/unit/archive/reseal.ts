/**
 * Editing a written dump for tests: replace some members' data by bytes of the same length, then
 * recompute what depends on them (TOC hashes, the trailer's toc hash, its digest by the header's
 * version, its check), so that the edit is the dump's only defect.
 */
import { createHash } from 'node:crypto';
import { splitMembers, type RawMember } from './sample-dump.js';
import { specDigest } from './spec-digest.js';

export const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** A record's text with its check field (spec 5.1), `padTo` bytes long (spaces before the newline). */
export function sealRecord(o: Record<string, unknown>, padTo: number, allowSpaces = false): Buffer {
  const copy = { ...o };
  delete copy['check'];
  const json = JSON.stringify(copy);
  const spaces = padTo - json.length - 75 - 1;
  if (spaces < 0 || (spaces > 0 && !allowSpaces)) throw new Error(`record would be ${json.length + 76} bytes, not ${padTo}`);
  const pad = ' '.repeat(spaces);
  const check = sha256(`${json}${pad}\n`);
  return Buffer.from(`${json.slice(0, -1)},"check":"${check}"}${pad}\n`);
}

/**
 * `dump` with the data of some members replaced by bytes of the same length, then the TOC's hashes of
 * them, the trailer's toc hash, its digest (by the header's version) and its check recomputed.
 */
export async function reseal(dump: Buffer, edits: Record<string, (m: RawMember) => Buffer>): Promise<Buffer> {
  const out = Buffer.from(dump);
  const members = await splitMembers(dump);
  const data = new Map<string, Buffer>();
  for (const m of members) {
    const edit = edits[m.name];
    const d = edit ? edit(m) : m.data;
    if (d.length !== m.data.length) throw new Error(`${m.name}: an edit must keep the length`);
    d.copy(out, m.dataOffset);
    data.set(m.name, d);
  }
  const toc = members.find((m) => m.name === 'mailvault/toc.jsonl')!;
  const trailer = members.find((m) => m.name === 'mailvault/trailer.json')!;
  const lines = data.get(toc.name)!.toString('utf8').split('\n'); // as edited
  const newToc = lines
    .map((line) => {
      if (!line) return line;
      const o = JSON.parse(line) as { member: string; sha256: string; recordSha256?: string };
      let l = line.replace(`"sha256":"${o.sha256}"`, `"sha256":"${sha256(data.get(o.member)!)}"`);
      if (o.recordSha256) l = l.replace(`"recordSha256":"${o.recordSha256}"`, `"recordSha256":"${sha256(data.get(o.member.replace(/\.(eml|stub)$/, '.json'))!)}"`);
      return l;
    })
    .join('\n');
  Buffer.from(newToc).copy(out, toc.dataOffset);
  // The trailer as edited (its version decides the digest), then its toc hash, digest and check made true.
  const tr = JSON.parse(data.get(trailer.name)!.toString('utf8')) as { version: number; toc: { sha256: string }; digest: { value: string } };
  tr.toc.sha256 = sha256(Buffer.from(newToc));
  tr.digest.value = tr.version >= 4 ? specDigest(out).computed : sha256(out.subarray(0, trailer.offset));
  sealRecord(tr as unknown as Record<string, unknown>, 1024, true).copy(out, trailer.dataOffset);
  return out;
}

/** A record member's data with a change, resealed (same length). */
export function editRecord(change: (o: Record<string, unknown>) => void): (m: RawMember) => Buffer {
  return (m) => {
    const o = JSON.parse(m.data.toString('utf8')) as Record<string, unknown>;
    change(o);
    return sealRecord(o, m.data.length);
  };
}
