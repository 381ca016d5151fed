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
  /**
   * True if a file created with mode fileMode gets exactly that mode (the umask clears none of its
   * bits), so no chmod is needed after the open. False when unknown.
   */
  readonly fileModeOnCreate?: boolean;
}

export const DEFAULT_PERMISSIONS: CreatePermissions = { dirMode: 0o700, fileMode: 0o600, owner: null };

/** The process's umask from /proc/self/status (Linux), or null; process.umask() without an argument is deprecated. */
export function currentUmask(status: () => string = () => fs.readFileSync('/proc/self/status', 'latin1')): number | null {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(status());
    return m ? parseInt(m[1]!, 8) : null;
  } catch {
    return null;
  }
}

export function permissionsFromRoot(st: fs.Stats, umask: number | null = currentUmask()): CreatePermissions {
  const dirMode = st.mode & 0o7777;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const fileMode = (dirMode & 0o666) | 0o600;
  return {
    dirMode: (dirMode & 0o777) | 0o700,
    fileMode,
    owner: isRoot ? { uid: st.uid, gid: st.gid } : null,
    fileModeOnCreate: umask !== null && (fileMode & umask) === 0,
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
