// The README command reference and man/mailvault-<command>.1 are generated from the commands' metadata;
// this fails when someone changes a command without regenerating them (npm run docs).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../helpers/cli.js';

test('README and man pages are in step with the CLI metadata', (t) => {
  const r = spawnSync(process.execPath, [path.join(projectRoot, 'scripts', 'gen-docs.js'), '--check'], { cwd: projectRoot, encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
});

test('every command has a man page, and the hand-written pages exist', (t) => {
  for (const page of ['mailvault.1', 'mailvault-dump.5', 'mailvault-backup.1', 'mailvault-restore.1', 'mailvault-list.1', 'mailvault-verify.1', 'mailvault-extract.1']) {
    t.true(existsSync(path.join(projectRoot, 'man', page)), `man/${page} is missing`);
  }
});
