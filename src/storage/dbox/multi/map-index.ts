/**
 * The mdbox map (reference 2.4): `storage/dovecot.map.index(.log)`, a Dovecot index whose records are
 * map_uids with ext `map` {file_id u32, offset u32, size u32} and ext `ref` {refcount u16}.
 */
import path from 'node:path';
import { StorageCorruptError } from '../../../core/errors.js';
import { readDovecotIndex } from '../../dovecot-index/index.js';

export interface MapRecord {
  readonly fileId: number;
  /** Offset of the message header in `m.<fileId>`. */
  readonly offset: number;
  /** Bytes of message header + body + metadata. */
  readonly size: number;
  readonly refcount: number;
}

export interface MapIndex {
  readonly uidValidity: number;
  lookup(mapUid: number): MapRecord | undefined;
}

/** Read the map index of the mdbox store rooted at `root`. */
export async function readMapIndex(root: string): Promise<MapIndex> {
  const dir = path.join(root, 'storage');
  const snap = await readDovecotIndex(dir, { prefix: 'dovecot.map.index' });
  if (!snap) {
    return { uidValidity: 0, lookup: () => undefined };
  }
  const records = new Map<number, MapRecord>();
  for (const m of snap.messages) {
    const rec = m.ext.get('map');
    if (!rec || rec.length < 12) continue;
    const ref = m.ext.get('ref');
    records.set(m.uid, { fileId: rec.readUInt32LE(0), offset: rec.readUInt32LE(4), size: rec.readUInt32LE(8), refcount: ref && ref.length >= 2 ? ref.readUInt16LE(0) : 0 });
  }
  return { uidValidity: snap.uidValidity, lookup: (uid) => records.get(uid) };
}

export function mapCorrupt(root: string, why: string): StorageCorruptError {
  return new StorageCorruptError(`mdbox map index in ${path.join(root, 'storage')}: ${why}`, {
    path: path.join(root, 'storage', 'dovecot.map.index'),
    hint: 'run "doveadm force-resync -u <user> \'*\'" to rebuild the map, then back up again',
  });
}
