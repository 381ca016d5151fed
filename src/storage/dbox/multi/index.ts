/**
 * mdbox (multi-dbox): messages packed into `<root>/storage/m.<file_id>`, located through the map
 * index (`<root or INDEX=>/storage/dovecot.map.index*`, see map-index.ts); per-mailbox state in
 * `<root or INDEX=>/mailboxes/<name>/dbox-Mails/dovecot.index*` (reference 2.4). Read-only.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { StorageCorruptError, StorageNotFoundError, fromSystemError } from '../../../core/errors.js';
import type { IndexedMessage } from '../../dovecot-index/index.js';
import type { MailLocation } from '../../location.js';
import type { DriverCapabilities, MessageSource } from '../../types.js';
import { METADATA_FIRST_READ, ReadWindow, readDboxFileHeader, readDboxMessage, type DboxFileHeader } from '../common/dbox-file.js';
import { DboxStore, type DboxDriver, type DboxStoreOptions } from '../common/dbox-store.js';
import { FileHandleCache, type OpenFile } from '../common/file-handles.js';
import type { DboxMessageLocator, LocatedMessage } from '../common/mailbox-reader.js';
import { mapIndexDir, mapStorageDir, readMapIndex, type MapIndex } from './map-index.js';

/** `sis` is set per store: true when an attachment directory is given. */
export const MDBOX_CAPABILITIES: DriverCapabilities = {
  preservesUids: false,
  preservesMailboxIdentity: false,
  hasMessageGuids: true,
  hasModseq: true,
  hasSaveDate: true,
  sis: false,
  filePerMessage: false,
  writable: false,
};

/** Reads of the map for one message while a purge keeps moving it (locateWithRetries). */
const LOCATE_ATTEMPTS = 5;

function createMdboxDriver(location: MailLocation): DboxDriver {
  let map: Promise<MapIndex> | null = null;
  const loadMap = (fresh = false): Promise<MapIndex> => {
    if (!map || fresh) {
      map = readMapIndex(location);
      map.catch(() => (map = null));
    }
    return map;
  };
  return {
    name: 'mdbox',
    capabilities: MDBOX_CAPABILITIES,
    headerExt: 'mdbox-hdr',
    async createLocator(ctx) {
      const mailbox = ctx.entry.name;
      const files = new FileHandleCache(8);
      // Messages are read through one window per mailbox (ReadWindow): header, body and metadata with
      // one read, as the map says where the message is and how long.
      const window = new ReadWindow();
      const headers = new Map<string, DboxFileHeader>();
      const storageDirs = [mapStorageDir(location), ...(location.alt ? [path.join(location.alt, 'storage')] : [])];
      // A store whose map cannot be read fails here, once for the mailbox, not once per message.
      const mdboxHdr = ctx.snapshot.extHeaders.get('mdbox-hdr');
      const mailboxMapUidValidity = mdboxHdr !== undefined && mdboxHdr.length >= 4 ? mdboxHdr.readUInt32LE(0) : null;
      const checkMap = (mapIndex: MapIndex): void => {
        if (ctx.snapshot.messages.length > 0 && mapIndex.uidValidity !== mailboxMapUidValidity) throw mapMismatch(location, mailbox, mailboxMapUidValidity, mapIndex.uidValidity);
      };
      checkMap(await loadMap());

      const openStorageFile = async (fileId: number): Promise<{ file: string; of: OpenFile; hdr: DboxFileHeader } | null> => {
        for (const dir of storageDirs) {
          const file = path.join(dir, `m.${fileId}`);
          let of: OpenFile;
          try {
            of = await files.get(file);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
            throw fromSystemError(e, 'open an mdbox storage file', { path: file, mailbox });
          }
          let hdr = headers.get(file);
          if (!hdr) {
            hdr = await readDboxFileHeader(of.fh, file);
            headers.set(file, hdr);
          }
          return { file, of, hdr };
        }
        return null;
      };

      // The map the window's bytes were read under: a place another map names may be a tail of a file
      // that changed since the window was filled (ReadWindow).
      let windowMap: MapIndex | null = null;
      const tryLocate = async (m: IndexedMessage, mapIndex: MapIndex): Promise<LocatedMessage | string> => {
        checkMap(mapIndex); // the map read again may be another one (rebuilt meanwhile)
        if (mapIndex !== windowMap) {
          window.invalidate();
          windowMap = mapIndex;
        }
        const rec = m.ext.get('mdbox');
        if (!rec || rec.length < 4) return `the index has no map_uid for it`;
        const mapUid = rec.readUInt32LE(0);
        const saveDate = rec.length >= 8 ? rec.readUInt32LE(4) : 0;
        const where = mapIndex.lookup(mapUid);
        if (!where) return `map_uid ${mapUid} is not in the map index`;
        const opened = await openStorageFile(where.fileId);
        if (!opened) return `storage file m.${where.fileId} (map_uid ${mapUid}) is missing`;
        const fh = opened.of.fh;
        // The map's size may be stale (a purge meanwhile): it only decides what is read ahead; the
        // message is parsed from the file's bytes as always. The slack takes in a metadata block
        // longer than the map says, up to what readDboxMessage reads first.
        window.prepare(fh, where.offset, where.size + METADATA_FIRST_READ);
        const message = await readDboxMessage(window.over(fh), opened.file, opened.hdr, where.offset, opened.of.size);
        const guid = m.ext.get('guid');
        const held = window.view(fh, message.bodyOffset, message.bodyOffset + message.bodySize);
        return {
          file: opened.file,
          message,
          saveDate: saveDate === 0 ? null : saveDate,
          guidRecord: guid ?? null,
          ...(held !== null ? { content: held.bytes, contentStart: held.start, contentValid: held.valid } : {}),
        };
      };

      /**
       * Find `m`, reading the map again while a concurrent purge moves it: a purge copies the messages
       * still in use out of an m.N file into another (or to the end of one opened before), then
       * deletes it, and a busy server purges again and again. As mdbox_mail_open does
       * (mdbox_map_refresh, then dbox_file_open of the file the map names, again while the file it
       * names is one found deleted), it gives up only when a fresh map names the same missing place
       * twice, or after LOCATE_ATTEMPTS reads of the map. `fresh`: the first attempt already forgets
       * the open files and reads the map again (relocate()).
       */
      const locateWithRetries = async (m: IndexedMessage, fresh: boolean): Promise<LocatedMessage> => {
        let result: LocatedMessage | string | Error = '';
        let previous: string | null = null;
        for (let attempt = 0; attempt < LOCATE_ATTEMPTS; attempt++) {
          if (attempt > 0 || fresh) {
            // Files opened before hold the old bytes (a deleted file stays readable while open): look
            // at the directory again, and take the sizes of the files that stay open anew.
            await files.close();
            headers.clear();
          }
          try {
            result = await tryLocate(m, await loadMap(attempt > 0 || fresh));
            // A file that seems to end inside the metadata may be one a purge is appending to now.
            if (typeof result !== 'string' && result.message.metadataCutShort === undefined) return result;
          } catch (e) {
            // A stale map after a concurrent purge looks like garbage at the old offset.
            if (!(e instanceof StorageCorruptError)) throw fromSystemError(e, 'read an mdbox message', { mailbox, uid: m.uid });
            result = e;
          }
          const where = typeof result === 'string' ? result : result instanceof Error ? result.message : `${result.file}:${result.message.offset}`;
          if (where === previous) break;
          previous = where;
        }
        if (result instanceof Error) throw fromSystemError(result, 'read an mdbox message', { mailbox, uid: m.uid });
        if (typeof result !== 'string') return result;
        throw new StorageNotFoundError(`message UID ${m.uid} in mailbox "${mailbox}": ${result}`, {
          mailbox,
          uid: m.uid,
          path: mapStorageDir(location),
          hint: `it was probably expunged and purged while reading; otherwise run "doveadm force-resync"${location.alt ? '' : ' (if the store keeps mail in alternate storage, give the location with ALT=)'}; the message is skipped`,
        });
      };

      const locator: DboxMessageLocator = {
        locate: (m) => locateWithRetries(m, false),
        relocate: (m) => locateWithRetries(m, true),
        attachmentSuffixes() {
          return [''];
        },
        close: () => files.close(),
      };
      return locator;
    },
  };
}

/**
 * The mailbox index names its messages by map_uid in one particular map: the one whose UIDVALIDITY its
 * mdbox-hdr records. mdbox_mail_lookup refuses every message when they differ ("map uidvalidity
 * mismatch") and marks the storage for a rebuild; the same map_uids in another map are other messages.
 */
function mapMismatch(location: MailLocation, mailbox: string, inMailbox: number | null, inMap: number): StorageCorruptError {
  const what = inMailbox === null ? 'records no map UIDVALIDITY (its mdbox-hdr header is missing)' : `was written for the map with UIDVALIDITY ${inMailbox}`;
  return new StorageCorruptError(`mdbox mailbox "${mailbox}" ${what}, but the map index in ${mapIndexDir(location)} has UIDVALIDITY ${inMap}: its messages cannot be located (the map was recreated, or storage/ and mailboxes/ come from different stores or copies)`, {
    mailbox,
    path: mapIndexDir(location),
    hint: 'Dovecot refuses these messages too ("map uidvalidity mismatch"); if storage/ and mailboxes/ are from the same store, run "doveadm force-resync -u <user> \'*\'" to rebuild the map and the mailbox indexes, then back up again; the mailbox is skipped',
  });
}

/** Open an mdbox store read-only. */
export async function openMdboxStore(location: MailLocation, user: string, options: DboxStoreOptions = {}): Promise<MessageSource> {
  try {
    await stat(location.root);
  } catch (e) {
    throw fromSystemError(e, `open the mdbox store of user "${user}"`, { path: location.root, user });
  }
  return new DboxStore(createMdboxDriver(location), location, user, options);
}
