/** Run the built CLI (bin/run.js) as a child process and collect exit code, stdout and stderr. */
import { spawn } from 'node:child_process';
import { cp, readdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir, type TempDirContext } from './temp.js';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = path.join(projectRoot, 'bin', 'run.js');

export interface CliResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export function runCli(args: string[], options: { input?: Buffer; cwd?: string; env?: Record<string, string | undefined> } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    // Run as a command, the way users run it: through the launcher lines of bin/run.js (sh, then Node
    // with its flags), with this Node first on PATH.
    const env = { ...process.env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`, ...options.env };
    const child = spawn(bin, args, { cwd: options.cwd ?? projectRoot, env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: err }));
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? undefined);
  });
}

/**
 * A private copy of the demo store (demo/mail) with message mtimes set from their names, as the demo
 * does, in a temp dir removed when the test `t` ends.
 */
export async function copyDemoStore(t: TempDirContext): Promise<string> {
  const dir = await tempDir(t, 'mv-cli-');
  await cp(path.join(projectRoot, 'demo', 'mail'), path.join(dir, 'mail'), { recursive: true });
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else {
        const m = /^(\d{9,10})\.M/.exec(e.name);
        if (m) await utimes(p, Number(m[1]), Number(m[1]));
      }
    }
  };
  await walk(path.join(dir, 'mail'));
  return dir;
}

/** A Dovecot passwd-file for mailvault --users-file: name, home and per-user mail location. */
export async function writeUsersFile(dir: string, users: readonly { name: string; home: string; mailLocation: string }[]): Promise<string> {
  const file = path.join(dir, `mv-users-${Math.random().toString(36).slice(2)}`);
  await writeFile(file, users.map((u) => `${u.name}:x::::${u.home}::userdb_mail=${u.mailLocation}`).join('\n') + '\n');
  return file;
}
