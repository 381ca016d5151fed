#!/usr/bin/env node
// mailvault command-line entry point. The commands are compiled into build/ by `npm run build`.
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
const { execute } = await import('@oclif/core');
await execute({ dir: import.meta.url });
