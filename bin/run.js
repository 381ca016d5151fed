#!/usr/bin/env node
// mailvault command-line entry point. The commands are compiled into build/ by `npm run build`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execute } from '@oclif/core';

if (!existsSync(fileURLToPath(new URL('../build/src/commands/backup.js', import.meta.url)))) {
  process.stderr.write('mailvault: not built yet: run "npm run build" (or "npm ci && npm run demo") in the project directory first\n');
  process.exit(1);
}
await execute({ dir: import.meta.url });
