#!/usr/bin/env node
// Writes oclif.manifest.json from the built commands (run by `npm run build`). With a manifest, oclif
// loads only the command that runs instead of importing every command to learn its flags: about a
// third of a short run's start-up. The manifest is derived from build/, so a build keeps it current.
import { writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Config } from '@oclif/core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const file = path.join(root, 'oclif.manifest.json');
rmSync(file, { force: true }); // never build the manifest from a stale manifest
const config = await Config.load(root);
const plugin = config.plugins.get(config.pjson.name);
if (!plugin) throw new Error(`oclif did not load the root plugin ${config.pjson.name}`);
const manifest = plugin.manifest;
if (Object.keys(manifest.commands).length === 0) throw new Error('no commands found: build first (npm run build)');
writeFileSync(file, JSON.stringify(manifest, null, 2) + '\n');
process.stderr.write(`wrote ${path.relative(process.cwd(), file)}: ${Object.keys(manifest.commands).sort().join(', ')}\n`);
