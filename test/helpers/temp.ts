/**
 * Temporary directories for tests, removed when they are no longer needed, pass or fail: tempDir /
 * tempDirSync for one test (t.teardown); makeTempDir / makeTempDirSync with removeTempDir for a
 * directory that a file's tests share (made in test.before or at load time: remove it in
 * test.after.always, as t.teardown is not allowed in hooks).
 */
import type { ExecutionContext } from 'ava';
import { mkdtempSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

// MAILVAULT_KEEP_TEST_TMP=1 keeps every test temp directory (its path is logged) for debugging.
export const keepTestTmp = process.env.MAILVAULT_KEEP_TEST_TMP === '1';

/** What tempDir needs of a test's `t`. */
export type TempDirContext = Pick<ExecutionContext<unknown>, 'teardown' | 'log'>;

/** A new directory under os.tmpdir() for one test, removed when the test ends (pass or fail). */
export async function tempDir(t: TempDirContext, prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  register(t, dir);
  return dir;
}

/** tempDir for synchronous call sites. */
export function tempDirSync(t: TempDirContext, prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  register(t, dir);
  return dir;
}

function register(t: TempDirContext, dir: string): void {
  if (keepTestTmp) t.log(`kept temp dir ${dir} (MAILVAULT_KEEP_TEST_TMP=1)`);
  else t.teardown(() => rm(dir, { recursive: true, force: true }));
}

/** A new directory under os.tmpdir() with no test to own it: the caller removes it with removeTempDir. */
export async function makeTempDir(prefix: string): Promise<string> {
  return await mkdtemp(path.join(os.tmpdir(), prefix));
}

/** makeTempDir for synchronous call sites (e.g. at module load). */
export function makeTempDirSync(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Removes a directory made by makeTempDir (nothing when dir is empty or unset, or when kept). */
export async function removeTempDir(dir: string | null | undefined): Promise<void> {
  if (!dir) return;
  if (keepTestTmp) {
    console.error(`kept temp dir ${dir} (MAILVAULT_KEEP_TEST_TMP=1)`);
    return;
  }
  await rm(dir, { recursive: true, force: true });
}
