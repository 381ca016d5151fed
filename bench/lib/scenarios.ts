/**
 * What is measured on each store: mailvault backup (zstd and none), the reference commands (tar | zstd,
 * raw tar read, doveadm backup), mailvault restore into an empty Maildir and through IMAP. Each scenario
 * prepares a fresh target before its run and removes it afterwards (untimed), and can check, on the
 * untimed warm-up run, that it really copied every message.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, rm, chown } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchInstance, BenchStore } from './store.js';
import { dovecotMessageCount } from './store.js';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const CLEAN_ENV: NodeJS.ProcessEnv = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };
const PASSWORD_ENV = 'MV_BENCH_IMAP_PASSWORD';

export type ScenarioId = 'mv-backup-zstd' | 'mv-backup-none' | 'mv-backup-incremental' | 'tar-zstd' | 'tar-read' | 'doveadm-backup' | 'mv-restore-maildir' | 'mv-restore-imap';

export interface Invocation {
  readonly argv: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

export interface Scenario {
  readonly id: ScenarioId;
  /** What runs, for the report. */
  readonly label: string;
  /** A mailvault process (counts for the RSS target). */
  readonly mailvault: boolean;
  /** Prepares a fresh target (untimed) and returns the command. */
  prepare(round: number): Promise<Invocation>;
  /** Checks the result (warm-up run only); returns an error text or null. */
  check?(round: number): Promise<string | null>;
  /** Removes what the run wrote (untimed). */
  cleanup?(round: number): Promise<void>;
}

/** mailvault run as users run it: bin/run.js as a command (its launcher lines start Node with mailvault's flags). */
export function mailvaultArgv(args: readonly string[]): string[] {
  return [path.join(projectRoot, 'bin', 'run.js'), ...args];
}

export function backupArgs(store: BenchStore, compress: string): string[] {
  return ['backup', '--users-file', store.usersFile, '--user', store.user, ...(store.attachmentDir ? ['--attachment-dir', store.attachmentDir] : []), '--compress', compress];
}

/** Message files in a Maildir++ tree (cur/ and new/ of the root and every ".folder"). */
export async function countMaildirMessages(maildir: string): Promise<number> {
  let n = 0;
  const dirs = ['.', ...(await readdir(maildir, { withFileTypes: true })).filter((e) => e.isDirectory() && e.name.startsWith('.')).map((e) => e.name)];
  for (const d of dirs) {
    for (const sub of ['cur', 'new']) {
      n += (await readdir(path.join(maildir, d, sub)).catch(() => [] as string[])).length;
    }
  }
  return n;
}

async function freshDir(inst: BenchInstance, name: string): Promise<string> {
  const dir = path.join(inst.scratch, name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  if (inst.dv.runningAsRoot) await chown(dir, inst.dv.mailUid, inst.dv.mailGid);
  return dir;
}

function countCheck(what: string, expected: number, actual: number): string | null {
  return actual === expected ? null : `${what}: ${actual} messages, expected ${expected}`;
}

/**
 * The scenarios for one store. `dump` is an uncompressed mailvault dump of the store (made beforehand)
 * that the restores read; `imap` adds the restore through IMAP.
 */
export function scenariosFor(inst: BenchInstance, store: BenchStore, dump: string, imap: boolean): Scenario[] {
  const tarList = store.tarPaths.map((p) => `'${p}'`).join(' ');
  // Every command that reads the store starts from a warm page cache. A round writes several copies of
  // the store (doveadm backup, restores); at 100k messages (3.7 GB each) that evicts the store, and the
  // first reader of the next round (always mailvault backup --compress zstd) read it from disk while
  // the others found it cached: 44-47 s against 21 s for --compress none in the 100k run of 2026-12-04.
  // The warming read is untimed; tar's output must not be /dev/null (GNU tar then skips the contents).
  const warm = (): void => {
    const r = spawnSync('sh', ['-c', `tar -cf - ${tarList} | cat > /dev/null`], { cwd: store.tarCwd, env: CLEAN_ENV, stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`warming the page cache with tar over ${store.tarCwd} exited ${r.status}`);
  };
  const list: Scenario[] = [
    {
      id: 'mv-backup-zstd',
      label: 'mailvault backup --compress zstd (level 3) > /dev/null',
      mailvault: true,
      prepare: async () => (warm(), { argv: mailvaultArgv(backupArgs(store, 'zstd')) }),
    },
    {
      id: 'mv-backup-none',
      label: 'mailvault backup --compress none > /dev/null',
      mailvault: true,
      prepare: async () => (warm(), { argv: mailvaultArgv(backupArgs(store, 'none')) }),
    },
    {
      id: 'tar-zstd',
      label: 'tar -cf - STORE | zstd -3 -T1 > /dev/null',
      mailvault: false,
      prepare: async () => (warm(), { argv: ['sh', '-c', `tar -cf - ${tarList} | zstd -q -3 -T1 > /dev/null`], cwd: store.tarCwd, env: CLEAN_ENV }),
    },
    {
      id: 'tar-read',
      label: 'tar -cf - STORE | cat > /dev/null',
      mailvault: false,
      prepare: async () => (warm(), { argv: ['sh', '-c', `tar -cf - ${tarList} | cat > /dev/null`], cwd: store.tarCwd, env: CLEAN_ENV }),
    },
    {
      id: 'doveadm-backup',
      label: 'doveadm -o maildir_copy_with_hardlinks=no backup -u USER maildir:EMPTY',
      mailvault: false,
      prepare: async (round) => {
        warm();
        const dir = await freshDir(inst, `dsync-${store.profile}-${round}`);
        return { argv: ['doveadm', '-c', inst.dv.confPath, '-o', 'maildir_copy_with_hardlinks=no', 'backup', '-u', store.user, `maildir:${dir}/Maildir`], env: CLEAN_ENV };
      },
      check: async (round) => countCheck('doveadm backup target', store.messages, await countMaildirMessages(path.join(inst.scratch, `dsync-${store.profile}-${round}`, 'Maildir'))),
      cleanup: async (round) => rm(path.join(inst.scratch, `dsync-${store.profile}-${round}`), { recursive: true, force: true }),
    },
    {
      id: 'mv-restore-maildir',
      label: 'mailvault restore DUMP --location maildir:EMPTY/%u/Maildir',
      mailvault: true,
      prepare: async (round) => {
        const dir = await freshDir(inst, `restore-${store.profile}-${round}`);
        return { argv: mailvaultArgv(['restore', dump, '--location', `maildir:${dir}/%u/Maildir`]) };
      },
      check: async (round) => countCheck('mailvault restore target', store.messages, await countMaildirMessages(path.join(inst.scratch, `restore-${store.profile}-${round}`, store.user, 'Maildir'))),
      cleanup: async (round) => rm(path.join(inst.scratch, `restore-${store.profile}-${round}`), { recursive: true, force: true }),
    },
  ];
  if (imap) {
    const targetUser = (round: number): string => `imap-${store.profile}-${round}`;
    list.push({
      id: 'mv-restore-imap',
      label: 'mailvault restore DUMP --imap imap://127.0.0.1 --master-user M --to-user NEW (one user)',
      mailvault: true,
      prepare: async (round) => {
        await inst.dv.addUser(targetUser(round), 'maildir');
        return {
          argv: mailvaultArgv(['restore', dump, '--imap', `imap://${inst.dv.imapHost}:${inst.dv.imapPort}`, '--master-user', inst.dv.masterUser, '--password-env', PASSWORD_ENV, '--user', store.user, '--to-user', targetUser(round)]),
          env: { ...process.env, [PASSWORD_ENV]: inst.dv.masterPassword },
        };
      },
      check: async (round) => countCheck('IMAP restore target', store.messages, await dovecotMessageCount(inst.dv, targetUser(round))),
      cleanup: async (round) => rm(path.join(inst.dv.dir, 'mail', targetUser(round)), { recursive: true, force: true }),
    });
  }
  return list;
}
