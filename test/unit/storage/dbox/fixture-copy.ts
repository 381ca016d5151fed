/** Copy a committed fixture store into a temp dir, for tests that damage it. */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (works from the source tree and from build-* output). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../..');
export const STORES = path.join(REPO_ROOT, 'test/fixtures/stores');

export async function copyFixture(kind: 'sdbox' | 'mdbox'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `mv-${kind}-`));
  await cp(path.join(STORES, kind), dir, { recursive: true });
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
