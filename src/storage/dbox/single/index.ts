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
    // Small files are read whole into one buffer that every locate() reuses (allocated at the first):
    // a fresh Buffer per message is external memory to V8, and a 10k-message backup spent 14 % of its
    // time collecting them. `wholeEpoch` counts the reads into it; a LocatedMessage's content stays
    // valid while the epoch is its own. A locate() running while another holds the buffer (concurrent
    // callers) reads into its own.
    let whole: Buffer | null = null;
    let wholeBusy = false;
    let wholeEpoch = 0;
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
          let holding = false;
          try {
            const st = await fh.stat();
            // A small file (most mail) is read whole: header, body and metadata in one read, and the
            // body is then taken from it (LocatedMessage.content).
            let content: Buffer | undefined;
            let contentValid: (() => boolean) | undefined;
            if (st.size <= WHOLE_FILE_BYTES) {
              if (!wholeBusy) {
                wholeBusy = holding = true;
                const epoch = ++wholeEpoch;
                content = fh.readWhole(st.size, (whole ??= Buffer.allocUnsafeSlow(WHOLE_FILE_BYTES)));
                contentValid = () => wholeEpoch === epoch;
              } else content = fh.readWhole(st.size);
            }
            const src: PositionalFile = content !== undefined ? new BufferFile(content) : fh;
            const size = content !== undefined ? content.length : st.size;
            const hdr = await readDboxFileHeader(src, file);
            const message = await readDboxMessage(src, file, hdr, hdr.firstMessageOffset, size);
            return { file, message, saveDate: Math.floor(st.ctimeMs / 1000), guidRecord: null, stamp: fileStamp(st), ...(content !== undefined ? { content } : {}), ...(contentValid !== undefined ? { contentValid } : {}) };
          } catch (e) {
            throw fromSystemError(e, 'read a dbox message file', { path: file, mailbox, uid: m.uid });
          } finally {
            if (holding) wholeBusy = false;
            await fh.close();
          }
        }
        const file = path.join(ctx.mailDir, name);
        throw new StorageNotFoundError(`message UID ${m.uid} in mailbox "${mailbox}": ${file} is missing although the index lists it`, {
          path: file,
          mailbox,
          uid: m.uid,
          hint:
            (m.flags & FLAG_IN_ALT) !== 0 && !altDir
              ? 'the index says the message is in alternate storage, and the location has no ALT=: give the location as Dovecot\'s mail_location, ALT= included; the message is skipped'
              : `it was probably expunged while reading; otherwise run "doveadm force-resync" on the mailbox${altDir ? '' : ' (if the store keeps mail in alternate storage, give the location with ALT=)'}; the message is skipped`,
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
