/**
 * The mdbox map (reference 2.4): `storage/dovecot.map.index(.log)`, a Dovecot index whose records are
 * map_uids with ext `map` {file_id u32, offset u32, size u32} and ext `ref` {refcount u16}.
 *
 * Where it lives follows dbox-multi/mdbox-map.c:mdbox_map_init: the m.N files are in `<root>/storage`,
 * the map index in `<index root>/storage`, and the index root is INDEX= when the location sets it
 * (mailbox_list_get_root_forced(..., MAILBOX_LIST_PATH_TYPE_INDEX)), else the mail root.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { MailLocation } from '../../location.js';
import { StorageCorruptError, fromSystemError } from '../../../core/errors.js';
import { readDovecotIndex } from '../../dovecot-index/index.js';

export const MAP_INDEX_PREFIX = 'dovecot.map.index';

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

/** Directory of the m.N storage files. */
export function mapStorageDir(loc: MailLocation): string {
  return path.join(loc.root, 'storage');
}

/** Directory of dovecot.map.index*: under INDEX= when set, as Dovecot's mdbox_map_init does. */
export function mapIndexDir(loc: MailLocation): string {
  return path.join(loc.index !== null && loc.index !== 'MEMORY' ? loc.index : loc.root, 'storage');
}

/** Whether the storage directory holds any m.N file (then an absent map index cannot mean "empty"). */
async function hasStorageFiles(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).some((f) => /^m\.\d+$/.test(f));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw fromSystemError(e, 'list the mdbox storage directory', { path: dir });
  }
}

/** Read the map index of the mdbox store at `loc`. */
export async function readMapIndex(loc: MailLocation): Promise<MapIndex> {
  const dir = mapIndexDir(loc);
  const snap = await readDovecotIndex(dir, { prefix: MAP_INDEX_PREFIX });
  if (!snap) {
    // No map and no messages is a store nothing was ever saved to. Messages without a map are not
    // an empty store: every lookup would fail, one "not in the map" error per message.
    if (await hasStorageFiles(mapStorageDir(loc))) throw mapMissing(loc, dir);
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

function mapMissing(loc: MailLocation, dir: string): StorageCorruptError {
  const hint =
    loc.index !== null
      ? `the location sets INDEX=${loc.index}, where Dovecot keeps the map index: check that it is the INDEX= Dovecot uses for this user; if it is, run "doveadm force-resync -u <user> '*'" to rebuild the map, then back up again`
      : `if Dovecot's mail_location sets INDEX=, give the same location (the map index is then under INDEX=/storage); otherwise run "doveadm force-resync -u <user> '*'" to rebuild the map, then back up again`;
  return new StorageCorruptError(`mdbox store ${loc.root} has message files in ${mapStorageDir(loc)} but no map index (${path.join(dir, MAP_INDEX_PREFIX)} and its .log are missing): no message can be located`, {
    path: path.join(dir, MAP_INDEX_PREFIX),
    hint,
  });
}
