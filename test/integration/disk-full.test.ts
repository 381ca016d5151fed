/**
 * Full disks, on a small tmpfs mounted by the test (root only, as in CI): a backup whose output fills
 * the disk exits 73 and leaves no dump file; a restore that fills the disk exits 73 with nothing
 * half-written (every visible message complete and recorded), and, with room again, the same restore
 * completes without duplicates.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { copyDemoStore, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

function mount(dir: string, size: string, remount = false): boolean {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `${remount ? 'remount,' : ''}size=${size}`, 'tmpfs', dir], { encoding: 'utf8' });
  return r.status === 0;
}

const isRoot = process.getuid?.() === 0;
if (!isRoot) {
  test.skip('disk-full tests need root to mount a small tmpfs', () => undefined);
} else {
  test.serial('backup onto a full disk: exit 73 naming the cause, no dump file left', async (t) => {
    const dir = await copyDemoStore(t);
    const full = await tempDir(t, 'mv-full-'); // removed after the umount below (teardowns run last first)
    t.true(mount(full, '12k'), 'mount tmpfs');
    t.teardown(() => void spawnSync('umount', [full]));
    const out = path.join(full, 'x.mvd');
    const r = await runCli(['backup', '--location', `maildir:${dir}/mail/%u/Maildir`, '--user', 'alice', '--user', 'bob', '-o', out]);
    t.is(r.code, 73, r.stderr);
    t.regex(r.stderr, /no space left/);
    t.deepEqual(await readdir(full), [], 'neither the dump nor its .partial is left');
  });

  test.serial('restore onto a full disk: exit 73, nothing half-written; with room again the rerun completes without duplicates', async (t) => {
    const dir = await copyDemoStore(t);
    const dump = path.join(dir, 'd.mvd');
    t.is((await runCli(['backup', '--location', `maildir:${dir}/mail/%u/Maildir`, '--user', 'alice', '-o', dump])).code, 0);
    const full = await tempDir(t, 'mv-full-'); // removed after the umount below (teardowns run last first)
    t.true(mount(full, '40k'));
    t.teardown(() => void spawnSync('umount', [full]));
    const target = `maildir:${full}/%u/Maildir`;
    const r = await runCli(['restore', dump, '--location', target, '--commit-every', '1']);
    t.is(r.code, 73, r.stderr);
    t.regex(r.stderr, /no space left/);
    // Every visible message file is complete (its S= size) and recorded in the uidlist.
    const check = async (): Promise<number> => {
      let n = 0;
      const root = path.join(full, 'alice', 'Maildir');
      for (const box of ['', ...(await readdir(root)).filter((d) => d.startsWith('.'))]) {
        const uidlist = await readFile(path.join(root, box, 'dovecot-uidlist'), 'utf8').catch(() => '');
        for (const sub of ['cur', 'new']) {
          for (const f of await readdir(path.join(root, box, sub)).catch(() => [] as string[])) {
            const size = Number(/,S=(\d+)/.exec(f)?.[1]);
            t.is((await stat(path.join(root, box, sub, f))).size, size, `${box}/${sub}/${f} is complete`);
            t.true(uidlist.includes(f.split(':')[0]!), `${f} is in the uidlist`);
            n++;
          }
        }
      }
      return n;
    };
    const partial = await check();
    t.true(partial < 6, `only part was restored (${partial})`);
    t.true(mount(full, '4m', true), 'remount bigger');
    const again = await runCli(['restore', dump, '--location', target]);
    t.is(again.code, 0, again.stderr);
    t.is(await check(), 6, 'all six of alice\'s messages, each once');
  });
}
