/**
 * New UIDVALIDITY values from `dovecot-uidvalidity` in the root control directory, exactly as Dovecot's
 * mailbox_uidvalidity_next() (lib-storage/mailbox-uidvalidity.c):
 *
 * - The file holds the last value handed out, 8 lowercase hex digits, no newline.
 * - An empty marker `dovecot-uidvalidity.<8hex>` (mode 0444) carries the same value. Taking the next
 *   value renames the marker from <v> to <v+1> (the rename is the atomic step), then rewrites the file.
 * - Without a usable file or marker: rescan for markers (use the highest, delete the lowest); with none,
 *   start at the current time.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createFile, type CreatePermissions } from './permissions.js';

const RETRY_COUNT = 10;
let fallbackValue = 0;

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function fallback(): number {
  const now = Math.floor(Date.now() / 1000) >>> 0;
  fallbackValue = fallbackValue < now ? now : (fallbackValue + 1) >>> 0;
  if (fallbackValue === 0) fallbackValue = 1;
  return fallbackValue;
}

function inc(n: number): number {
  const v = (n + 1) >>> 0;
  return v === 0 ? 1 : v;
}

async function writeValue(file: string, value: number, perms: CreatePermissions): Promise<void> {
  let h: fs.promises.FileHandle;
  try {
    h = await fs.promises.open(file, 'r+');
  } catch {
    try {
      h = await createFile(file, perms);
    } catch {
      return; // Dovecot logs and goes on: the marker rename already reserved the value
    }
  }
  try {
    await h.write(hex8(value), 0, 'ascii');
  } finally {
    await h.close();
  }
}

/** Rename marker <v> -> <v+1>, retrying with later values on ENOENT. Returns the new value or null. */
async function renameMarker(file: string, start: number): Promise<number | null> {
  let v = start;
  for (let i = 0; i < RETRY_COUNT; i++) {
    const next = inc(v);
    try {
      await fs.promises.rename(`${file}.${hex8(v)}`, `${file}.${hex8(next)}`);
      return next;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return null;
    }
    v = next;
  }
  return null;
}

async function rescan(file: string, perms: CreatePermissions): Promise<number> {
  const dir = path.dirname(file);
  const prefix = `${path.basename(file)}.`;
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch {
    return fallback();
  }
  let min = 0xffffffff;
  let max = 0;
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const hex = n.slice(prefix.length);
    if (!/^[0-9a-fA-F]{1,8}$/.test(hex)) continue;
    const v = parseInt(hex, 16);
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  if (max === 0) {
    let value = fallback();
    for (let i = 0; i < RETRY_COUNT; i++) {
      try {
        const h = await createFile(`${file}.${hex8(value)}`, perms, 0o444);
        await h.close();
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return value;
        value = fallback();
      }
    }
    await writeValue(file, value, perms);
    return value;
  }
  if (min !== max) await fs.promises.unlink(`${file}.${hex8(min)}`).catch(() => undefined);
  const next = await renameMarker(file, max);
  if (next === null) return fallback();
  await writeValue(file, next, perms);
  return next;
}

/** The next UIDVALIDITY for a new mailbox; `file` is `<root control dir>/dovecot-uidvalidity`. */
export async function nextUidValidity(file: string, perms: CreatePermissions): Promise<number> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'ascii');
  } catch {
    return rescan(file, perms);
  }
  const cur = /^[0-9a-fA-F]{1,8}/.exec(text.slice(0, 8));
  const value = cur ? parseInt(cur[0], 16) : 0;
  if (value === 0) return rescan(file, perms);
  const next = await renameMarker(file, value);
  if (next === null) return rescan(file, perms);
  await writeValue(file, next, perms);
  return next;
}
