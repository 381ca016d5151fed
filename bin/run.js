#!/bin/sh
':' //; exec node --max-semi-space-size=2 "$0" "$@"
// mailvault command-line entry point. The commands are compiled into build/ by `npm run build`.
//
// The two lines above are for sh and for JavaScript alike: run as a command, sh starts Node with a
// small young generation (2 MiB semi-spaces instead of up to 16); `node bin/run.js` skips them (the
// first is a "#!" line, the second a string and a comment). A backup or restore allocates steadily
// and keeps little: measured peak RSS of a 100k-message restore 186 MiB instead of 227, of a 10k
// backup 127-132 MiB instead of 153-160, CPU time within noise (CHANGELOG.md). `env -S` would do
// the same in the "#!" line, but BusyBox's env lacks it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

if (!existsSync(fileURLToPath(new URL('../build/src/commands/backup.js', import.meta.url)))) {
  process.stderr.write('mailvault: not built yet: run "npm run build" (or "npm ci && npm run demo") in the project directory first\n');
  process.exit(1);
}
// libuv's thread pool (4 threads by default) runs file I/O that is not synchronous: a restore keeps up
// to 64 fsyncs in flight at each commit (storage/maildir/save.ts), and dump reads must not queue behind
// them. Read once, when the pool starts: so set before anything uses it (the import below is dynamic).
process.env.UV_THREADPOOL_SIZE ??= '64';
// The subpath, not the package index: the index loads all of oclif (about 25 ms more at every start).
const { execute } = await import('@oclif/core/execute');
await execute({ dir: import.meta.url });
