/** Copy a committed fixture store into a temp dir, for tests that damage it. */
import { cp } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir, removeTempDir } from '../../../helpers/temp.js';

/** The repository root (works from the source tree and from build-* output). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../..');
export const STORES = path.join(REPO_ROOT, 'test/fixtures/stores');

/** The copy is the caller's: register `cleanup` (t.teardown, or a finally) as soon as it is returned. */
export async function copyFixture(kind: 'sdbox' | 'mdbox'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await makeTempDir(`mv-${kind}-`);
  const cleanup = (): Promise<void> => removeTempDir(dir);
  try {
    await cp(path.join(STORES, kind), dir, { recursive: true });
  } catch (e) {
    await cleanup();
    throw e;
  }
  return { dir, cleanup };
}
