#!/usr/bin/env node
// Bundles the command line (run by `npm run build`, after tsc): build/src -> build/cli.
//
// Why: a command spent most of its start-up loading modules, not running: about 100 CommonJS modules of
// oclif and its dependencies, then about 90 of mailvault's own, each resolved, read and compiled on
// its own. Node 20 has no compile cache. One bundle with the commands as entries (esbuild, code
// splitting: what several commands share is a chunk, a store driver or luxon loads only when used)
// brings `mailvault --version` from 0.25 to 0.20 s and a 1 %-change incremental backup of a
// 100k-message Maildir from 0.82 to 0.78 s (medians of 8 interleaved runs each, 2-core machine).
//
// Layout: everything in one flat directory, build/cli/: main.js (oclif's execute, imported by
// bin/run.js), one file per command (backup.js, list.js, ...: oclif finds them through the manifest,
// package.json "oclif.commands"), the worker threads' modules (compress-worker.js,
// read-ahead-worker.js) and the shared chunks (chunk-*.js). Flat because the code that starts a worker
// finds its module relative to its own file (new URL('./compress-worker.js', import.meta.url)): that
// holds in build/src and here alike, whichever chunk the code lands in.
//
// Left outside (imported from node_modules at run time): zstd-napi (a native addon), imapflow (loaded
// only for IMAP stores; its dependencies load files of their own), and what oclif would load only in
// development (typescript, ts-node).
import { build } from 'esbuild';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'build', 'src');
const outdir = path.join(root, 'build', 'cli');
rmSync(outdir, { recursive: true, force: true });

const commands = readdirSync(path.join(src, 'commands')).filter((f) => f.endsWith('.js'));
if (commands.length === 0) throw new Error('no compiled commands in build/src/commands: run tsc first');
const entryPoints = [
  path.join(src, 'cli', 'main.js'),
  ...commands.map((f) => path.join(src, 'commands', f)),
  path.join(src, 'archive', 'compression', 'compress-worker.js'),
  path.join(src, 'storage', 'maildir', 'read-ahead-worker.js'),
];

// oclif sorts the command list with String.prototype.localeCompare, and the first call in a process
// sets up ICU's collator: 8 ms of every command's start-up (profiled: 7.8 ms for one call, 0.006 ms for
// the next). The ids are ASCII ("backup", "list", ...), for which plain code-unit order is the same, so
// the bundle compares them with < instead. The build fails if oclif's line changes, rather than bundle
// something not checked.
const OCLIF_SORT = '.sort((a, b) => a.id.localeCompare(b.id))';
const oclifSortPlugin = {
  name: 'oclif-command-sort',
  setup(b) {
    b.onLoad({ filter: /[\\/]@oclif[\\/]core[\\/]lib[\\/]config[\\/]plugin\.js$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      if (!text.includes(OCLIF_SORT)) throw new Error(`${args.path}: the command sort (${OCLIF_SORT}) is not there any more: check scripts/bundle.js`);
      return { contents: text.replace(OCLIF_SORT, '.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))'), loader: 'js' };
    });
  },
};

const result = await build({
  plugins: [oclifSortPlugin],
  entryPoints,
  outdir,
  entryNames: '[name]',
  chunkNames: 'chunk-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['zstd-napi', 'imapflow', 'typescript', 'ts-node'],
  // oclif is CommonJS: in an ES module bundle it needs require, __filename and __dirname.
  banner: {
    js: "import { createRequire as __mvCreateRequire } from 'node:module'; import { fileURLToPath as __mvFileURLToPath } from 'node:url'; const require = __mvCreateRequire(import.meta.url); const __filename = __mvFileURLToPath(import.meta.url); const __dirname = __mvFileURLToPath(new URL('.', import.meta.url));",
  },
  sourcemap: 'linked',
  sourcesContent: false,
  legalComments: 'linked',
  logLevel: 'warning',
  metafile: true,
});
const outputs = Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js'));
process.stderr.write(`bundled ${commands.length} commands into ${path.relative(process.cwd(), outdir)}: ${outputs.length} files\n`);
