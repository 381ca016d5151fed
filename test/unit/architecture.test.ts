// The dependency arrows of src/, checked over the import statements of every source file:
// commands, agent -> operations -> archive, storage -> core; archive and storage never import each
// other; operations never import a concrete driver.
import test from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const src = path.join(root, 'src');

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
  });
}

interface Edge {
  from: string;
  to: string;
  typeOnly: boolean;
}

const edges: Edge[] = [];
for (const file of walk(src)) {
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/^\s*(import|export)\s+(type\s+)?[^'";]*?from\s+['"](\.[^'"]+)['"]/gm)) {
    const target = path.resolve(path.dirname(file), m[3]!);
    edges.push({ from: path.relative(src, file), to: path.relative(src, target), typeOnly: Boolean(m[2]) });
  }
}

const area = (p: string): string => p.split(path.sep)[0]!;

test('the import scan finds imports (the rule checks below are not vacuous)', (t) => {
  t.true(edges.length > 20, `only ${edges.length} imports found`);
});

test('core imports nothing of ours outside core', (t) => {
  const bad = edges.filter((e) => area(e.from) === 'core' && area(e.to) !== 'core');
  t.deepEqual(bad, []);
});

test('storage and archive never import each other', (t) => {
  const bad = edges.filter((e) => (area(e.from) === 'storage' && area(e.to) === 'archive') || (area(e.from) === 'archive' && area(e.to) === 'storage'));
  t.deepEqual(bad, []);
});

test('storage and archive import only core and themselves', (t) => {
  const bad = edges.filter((e) => ['storage', 'archive'].includes(area(e.from)) && ![area(e.from), 'core'].includes(area(e.to)));
  t.deepEqual(bad, []);
});

test('operations never import a concrete storage driver or a front end', (t) => {
  const driverDirs = ['maildir', 'dbox', 'imap', 'memory', 'dovecot-index'];
  const bad = edges.filter(
    (e) =>
      area(e.from) === 'operations' &&
      (['cli', 'commands', 'agent'].includes(area(e.to)) ||
        (area(e.to) === 'storage' && (driverDirs.includes(e.to.split(path.sep)[1] ?? '') || e.to.includes('open-store')))),
  );
  t.deepEqual(bad, []);
});

test('nothing below the front ends imports them', (t) => {
  const bad = edges.filter((e) => ['core', 'storage', 'archive', 'operations'].includes(area(e.from)) && ['cli', 'commands', 'agent'].includes(area(e.to)));
  t.deepEqual(bad, []);
});
