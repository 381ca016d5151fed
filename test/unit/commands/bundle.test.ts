// The bundled command line (build/cli, scripts/bundle.js) keeps what the unbundled modules relied on.
// A worker whose module is not found is not always an error a test would see: the Maildir read-ahead
// falls back to reading on the main thread, silently slower. So the layout is checked here.
import test from 'ava';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { projectRoot } from '../../helpers/cli.js';

const cli = path.join(projectRoot, 'build', 'cli');

async function bundleFiles(): Promise<Array<{ name: string; text: string }>> {
  const names = (await readdir(cli)).filter((n) => n.endsWith('.js'));
  return Promise.all(names.map(async (name) => ({ name, text: await readFile(path.join(cli, name), 'utf8') })));
}

test('every module a bundle file locates relative to itself (new URL(..., import.meta.url)) is in build/cli', async (t) => {
  const files = await bundleFiles();
  const names = new Set(files.map((f) => f.name));
  const found: string[] = [];
  for (const f of files) {
    for (const m of f.text.matchAll(/new URL\(\s*["']\.\/([^"']+)["']\s*,\s*import\.meta\.url\s*\)/g)) {
      found.push(`${f.name} -> ${m[1]}`);
      t.true(names.has(m[1]!), `${f.name} starts ${m[1]}, which is not in build/cli`);
    }
  }
  // The two workers are found this way: if the pattern stops matching, this test must be revisited.
  t.true(found.some((s) => s.endsWith('-> compress-worker.js')), found.join(', '));
  t.true(found.some((s) => s.endsWith('-> read-ahead-worker.js')), found.join(', '));
});

test('the bundle imports nothing from build/src: the CLI and the library do not mix two copies of a module', async (t) => {
  for (const f of await bundleFiles()) {
    t.notRegex(f.text, /from\s+["'][./]*\/src\//, f.name);
    t.notRegex(f.text, /import\(\s*["'][./]*\/src\//, f.name);
  }
});

test('oclif finds exactly the commands of src/commands in the bundle, through the manifest', async (t) => {
  const manifest = JSON.parse(await readFile(path.join(projectRoot, 'oclif.manifest.json'), 'utf8')) as { commands: Record<string, { relativePath: string[] }> };
  const sources = (await readdir(path.join(projectRoot, 'src', 'commands'))).filter((n) => n.endsWith('.ts')).map((n) => n.slice(0, -3)).sort();
  t.deepEqual(Object.keys(manifest.commands).sort(), sources);
  for (const [id, c] of Object.entries(manifest.commands)) t.deepEqual(c.relativePath, ['build', 'cli', `${id}.js`]);
});
