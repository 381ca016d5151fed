#!/usr/bin/env node
// Runs the whole test suite: unit tests, then integration tests (real Dovecot, started by the tests),
// each through ava's TAP reporter, and prints the totals alone on the last line:
//   N passed, N failed, N skipped
// Exit status: 0 only if nothing failed and at least one test ran.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

const suites = [
  { name: 'unit', args: ['build/test/unit/**/*.test.js'] },
  { name: 'integration', args: ['--serial', 'build/test/integration/**/*.test.js'] },
];

function runSuite(suite) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['node_modules/ava/entrypoints/cli.mjs', '--tap', ...suite.args], { stdio: ['ignore', 'pipe', 'inherit'] });
    const counts = { pass: 0, fail: 0, skip: 0, todo: 0 };
    let buf = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      buf += chunk.toString();
    });
    child.on('close', (code) => {
      for (const line of buf.split('\n')) {
        const m = /^# (pass|fail|skip|todo) (\d+)/.exec(line);
        if (m) counts[m[1]] = Number(m[2]);
      }
      // ava exits non-zero on failures, and also when a test file crashed (no TAP totals for it).
      if (code !== 0 && counts.fail === 0) counts.fail = 1;
      resolve(counts);
    });
  });
}

const total = { pass: 0, fail: 0, skip: 0, todo: 0 };
for (const suite of suites) {
  const dir = `build/test/${suite.name}`;
  if (!existsSync(dir)) continue;
  process.stdout.write(`\n=== ${suite.name} tests ===\n`);
  const c = await runSuite(suite);
  for (const k of Object.keys(total)) total[k] += c[k];
}
const skipped = total.skip + total.todo;
process.stdout.write(`\n${total.pass} passed, ${total.fail} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exit(total.fail > 0 || total.pass === 0 ? 1 : 0);
