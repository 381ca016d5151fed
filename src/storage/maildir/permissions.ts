/**
 * Modes and ownership for what the Maildir writer creates, following Dovecot's
 * mailbox_list_get_root_permissions(): directories get the mail root's mode, files that mode & 0666
 * (a 0700 root gives 0700 dirs and 0600 files). When running as root, everything created is chowned to
 * the mail root's owner and group, never left to root.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fromSystemError } from '../../core/errors.js';

export interface CreatePermissions {
  readonly dirMode: number;
  readonly fileMode: number;
  /** Owner to give new files and directories, or null to keep the process's own. */
  readonly owner: { uid: number; gid: number } | null;
}

export const DEFAULT_PERMISSIONS: CreatePermissions = { dirMode: 0o700, fileMode: 0o600, owner: null };

export function permissionsFromRoot(st: fs.Stats): CreatePermissions {
  const dirMode = st.mode & 0o7777;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  return {
    dirMode: (dirMode & 0o777) | 0o700,
    fileMode: (dirMode & 0o666) | 0o600,
    owner: isRoot ? { uid: st.uid, gid: st.gid } : null,
  };
}

/** mkdir -p with our modes and owner on every directory created. Returns true if `dir` was created. */
export async function makeDirs(dir: string, perms: CreatePermissions): Promise<boolean> {
  const missing: string[] = [];
  let cur = path.resolve(dir);
  for (;;) {
    try {
      const st = await fs.promises.stat(cur);
      if (!st.isDirectory()) throw Object.assign(new Error(`${cur} is not a directory`), { code: 'ENOTDIR', path: cur });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fromSystemError(e, 'create the directory', { path: cur });
      missing.push(cur);
      const parent = path.dirname(cur);
      if (parent === cur) break;
      cur = parent;
    }
  }
  for (const d of missing.reverse()) {
    try {
      await fs.promises.mkdir(d, { mode: perms.dirMode });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw fromSystemError(e, 'create the directory', { path: d });
    }
    try {
      await fs.promises.chmod(d, perms.dirMode);
      if (perms.owner) await fs.promises.chown(d, perms.owner.uid, perms.owner.gid);
    } catch (e) {
      throw fromSystemError(e, 'set the owner and mode of the directory', { path: d });
    }
  }
  return missing.length > 0;
}

/** Create a new file (O_EXCL) with our mode and owner. */
export async function createFile(file: string, perms: CreatePermissions, mode: number = perms.fileMode): Promise<fs.promises.FileHandle> {
  const h = await fs.promises.open(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode);
  try {
    await h.chmod(mode);
    if (perms.owner) await h.chown(perms.owner.uid, perms.owner.gid);
  } catch (e) {
    await h.close().catch(() => undefined);
    await fs.promises.unlink(file).catch(() => undefined);
    throw e;
  }
  return h;
}

/** Write `data` to `file` atomically: `<file>.tmp` (O_EXCL, fsync), then rename. */
export async function writeFileAtomic(file: string, data: string | Buffer, perms: CreatePermissions): Promise<void> {
  const tmp = `${file}.tmp`;
  await fs.promises.unlink(tmp).catch(() => undefined);
  const h = await createFile(tmp, perms);
  try {
    await h.writeFile(data);
    await h.sync();
  } catch (e) {
    await h.close().catch(() => undefined);
    await fs.promises.unlink(tmp).catch(() => undefined);
    throw e;
  }
  await h.close();
  await fs.promises.rename(tmp, file);
}
