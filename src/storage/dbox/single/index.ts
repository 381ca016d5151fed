/**
 * sdbox (single-dbox): one `u.<uid>` file per message in `<root>/mailboxes/<name>/dbox-Mails/`, state in
 * the mailbox index (reference 2.3). Read-only.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { StorageNotFoundError, fromSystemError } from '../../../core/errors.js';
import type { MailLocation } from '../../location.js';
import type { DriverCapabilities, MessageSource } from '../../types.js';
import { BufferFile, SyncFile, WHOLE_FILE_BYTES, readDboxFileHeader, readDboxMessage, type PositionalFile } from '../common/dbox-file.js';
import { DboxStore, type DboxDriver, type DboxStoreOptions } from '../common/dbox-store.js';
import { mailboxAltDir } from '../common/mailbox-list.js';
import { fileStamp, type DboxMessageLocator, type LocatedMessage } from '../common/mailbox-reader.js';

/** `sis` is set per store: true when an attachment directory is given. */
export const SDBOX_CAPABILITIES: DriverCapabilities = {
  preservesUids: false,
  preservesMailboxIdentity: false,
  hasMessageGuids: true,
  hasModseq: true,
  hasSaveDate: false,
  sis: false,
  filePerMessage: true,
  writable: false,
};

/** Index flag: the message file is in alternate storage. */
const FLAG_IN_ALT = 0x40;

const sdboxDriver: DboxDriver = {
  name: 'sdbox',
  capabilities: SDBOX_CAPABILITIES,
  headerExt: 'dbox-hdr',
  async createLocator(ctx) {
    const altDir = mailboxAltDir(ctx.location, ctx.entry.storageParts);
    const mailbox = ctx.entry.name;
    const locator: DboxMessageLocator = {
      async locate(m): Promise<LocatedMessage> {
        const name = `u.${m.uid}`;
        const dirs = [ctx.mailDir, ...(altDir ? [altDir] : [])];
        if ((m.flags & FLAG_IN_ALT) !== 0 && altDir) dirs.reverse();
        for (const dir of dirs) {
          const file = path.join(dir, name);
          let fh: SyncFile;
          try {
            fh = SyncFile.open(file);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
            throw fromSystemError(e, 'open a dbox message file', { path: file, mailbox, uid: m.uid });
          }
          try {
            const st = await fh.stat();
            // A small file (most mail) is read whole: header, body and metadata in one read, and the
            // body is then taken from it (LocatedMessage.content).
            const content = st.size <= WHOLE_FILE_BYTES ? fh.readWhole(st.size) : undefined;
            const src: PositionalFile = content !== undefined ? new BufferFile(content) : fh;
            const size = content !== undefined ? content.length : st.size;
            const hdr = await readDboxFileHeader(src, file);
            const message = await readDboxMessage(src, file, hdr, hdr.firstMessageOffset, size);
            return { file, message, saveDate: Math.floor(st.ctimeMs / 1000), guidRecord: null, stamp: fileStamp(st), ...(content !== undefined ? { content } : {}) };
          } catch (e) {
            throw fromSystemError(e, 'read a dbox message file', { path: file, mailbox, uid: m.uid });
          } finally {
            await fh.close();
          }
        }
        const file = path.join(ctx.mailDir, name);
        throw new StorageNotFoundError(`message UID ${m.uid} in mailbox "${mailbox}": ${file} is missing although the index lists it`, {
          path: file,
          mailbox,
          uid: m.uid,
          hint: `it was probably expunged while reading; otherwise run "doveadm force-resync" on the mailbox; the message is skipped`,
        });
      },
      attachmentSuffixes(uid) {
        // Dovecot renames the files to <name>-<mailbox guid>-<uid> once the UID is known; a crash can leave the short name.
        return ctx.mailboxGuid ? [`-${ctx.mailboxGuid}-${uid}`, ''] : [''];
      },
      async close() {},
    };
    return locator;
  },
};

/** Open an sdbox store read-only. */
export async function openSdboxStore(location: MailLocation, user: string, options: DboxStoreOptions = {}): Promise<MessageSource> {
  try {
    await stat(location.root);
  } catch (e) {
    throw fromSystemError(e, `open the sdbox store of user "${user}"`, { path: location.root, user });
  }
  return new DboxStore(sdboxDriver, location, user, options);
}
