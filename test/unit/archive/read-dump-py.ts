/** Running formats/examples/read_dump.py (the independent reader) on a dump, for tests. */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDirSync } from '../../helpers/temp.js';

export const hasPython = spawnSync('python3', ['--version'], { stdio: 'ignore' }).status === 0;

export interface PyResult { status: number | null; stdout: string; stderr: string }

/** read_dump.py on `dump`, written to a temp file of the test (it re-reads the file). */
export function readDumpPyBytes(t: Parameters<typeof tempDirSync>[0], dump: Buffer): PyResult {
  const file = join(tempDirSync(t, 'mailvault-py-'), 'd.mvd');
  writeFileSync(file, dump);
  return spawnSync('python3', ['formats/examples/read_dump.py', file], { encoding: 'utf8' });
}
