/**
 * The two numbers the Maildir writer wants from `dovecot.index` (section 4.2): uid_validity (offset 24)
 * and next_uid (offset 28) of the base header. The file is a snapshot that may lag its log, so next_uid
 * is only a lower bound; the uidlist stays authoritative for Maildir. Absent or unknown files give null.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readDovecotIndex } from '../dovecot-index/index.js';

export async function readIndexHeader(indexDir: string | null): Promise<{ uidValidity: number; nextUid: number } | null> {
  if (indexDir === null) return null;
  let h: fs.promises.FileHandle;
  try {
    h = await fs.promises.open(path.join(indexDir, 'dovecot.index'), 'r');
  } catch {
    return null;
  }
  try {
    const buf = Buffer.alloc(32);
    const { bytesRead } = await h.read(buf, 0, 32, 0);
    if (bytesRead < 32 || buf[0] !== 7 || (buf[12]! & 0x01) === 0) return null;
    return { uidValidity: buf.readUInt32LE(24), nextUid: buf.readUInt32LE(28) };
  } catch {
    return null;
  } finally {
    await h.close().catch(() => undefined);
  }
}

/**
 * uid_validity and next_uid as Dovecot knows them: the snapshot with its transaction log replayed
 * (the snapshot alone may lag the log). For a mailbox whose uidlist is missing, where these are the
 * only record of the UIDs Dovecot gave. null if there is no index, or it cannot be read (the caller
 * then starts a new UIDVALIDITY, which makes Dovecot renumber the mailbox but never reuse a UID).
 */
export async function readIndexHeaderReplayed(indexDir: string | null): Promise<{ uidValidity: number; nextUid: number } | null> {
  if (indexDir === null) return null;
  try {
    const snapshot = await readDovecotIndex(indexDir);
    return snapshot === null || snapshot.uidValidity === 0 ? null : { uidValidity: snapshot.uidValidity, nextUid: snapshot.nextUid };
  } catch {
    return null;
  }
}
