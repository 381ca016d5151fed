/**
 * Recording new uidlist records, under the uidlist lock (the caller holds it): appended in place, as
 * Dovecot appends (maildir_uidlist_sync_update: the header's N may go stale, readers take
 * max(N, last UID + 1)), or, when there is no uidlist yet or it is version 1, the whole file written
 * as version 3 (tmp + rename, maildir_uidlist_recreate). Used by saves (save.ts) and by giving UIDs to
 * files Dovecot has not listed yet (assign-uids.ts).
 */
import fs from 'node:fs';
import type { CreatePermissions } from './permissions.js';
import { writeFileAtomic } from './permissions.js';
import { formatUidlistHeader, formatUidlistRecord, readUidlist, type UidlistContext, type UidlistHeader, type UidlistRecord } from './uidlist.js';
import { nextUidValidity } from './uidvalidity.js';

export async function writeUidlistRecords(
  uidlistPath: string,
  current: { readonly header: UidlistHeader; readonly endsWithNewline: boolean } | null,
  records: readonly UidlistRecord[],
  header: { readonly uidValidity: number; readonly nextUid: number; readonly guid: string },
  perms: CreatePermissions,
  ctx: UidlistContext,
): Promise<void> {
  const lines = records.map(formatUidlistRecord).join('');
  if (current === null || current.header.version !== 3) {
    // A version 1 file (or none) is rewritten whole as version 3: its records are read here only.
    const old = current === null ? '' : ((await readUidlist(uidlistPath, ctx))?.records ?? []).map(formatUidlistRecord).join('');
    await writeFileAtomic(uidlistPath, formatUidlistHeader({ ...header, extensions: current?.header.extensions ?? [] }) + old + lines, perms);
    return;
  }
  const h = await fs.promises.open(uidlistPath, 'a');
  try {
    await h.write((current.endsWithNewline ? '' : '\n') + lines, null, 'utf8');
    await h.sync();
  } finally {
    await h.close();
  }
}

/**
 * The UIDVALIDITY for records about to be written: the uidlist's; where there is none yet, the
 * index's (Dovecot keeps it when only the uidlist was lost: maildir_uidlist_generate_uid_validity),
 * else the next value of the root's dovecot-uidvalidity.
 */
export async function uidValidityFor(
  uidlist: { readonly header: UidlistHeader } | null,
  index: { readonly uidValidity: number } | null,
  uidValidityPath: string,
  perms: CreatePermissions,
): Promise<number> {
  return uidlist?.header.uidValidity || index?.uidValidity || (await nextUidValidity(uidValidityPath, perms));
}

/** The first UID free for new records: the uidlist's next UID, or the index's when it is higher (same UIDVALIDITY). */
export function firstFreeUid(uidlist: { readonly nextUid: number } | null, index: { readonly uidValidity: number; readonly nextUid: number } | null, uidValidity: number): number {
  const next = uidlist?.nextUid ?? 1;
  return index !== null && index.uidValidity === uidValidity && index.nextUid > next ? index.nextUid : next;
}
