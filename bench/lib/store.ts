/**
 * The stores under test: one private Dovecot 2.3 per corpus size (test/helpers/dovecot.ts), one user per
 * storage profile, filled by `doveadm import` from a generated source Maildir (bench/lib/corpus.ts), so
 * Dovecot writes every file itself: Maildir files with S=/W= names, dovecot-uidlist and indexes; sdbox
 * files with single-instance attachments in mail_attachment_dir. Afterwards Dovecot is asked how many
 * messages it sees, and the count must match.
 */
import { execFile } from 'node:child_process';
import { chown, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { startDovecot, type DovecotInstance, type DovecotProfile } from '../../test/helpers/dovecot.js';
import { writeSourceMaildir, type CorpusSummary } from './corpus.js';

const run = promisify(execFile);

export type BenchProfile = Extract<DovecotProfile, 'maildir' | 'sdbox' | 'mdbox'>;

export interface BenchStore {
  readonly profile: BenchProfile;
  readonly user: string;
  /** The user's passwd-file (home, uid, userdb_mail), for `mailvault --users-file`. */
  readonly usersFile: string;
  /** The user's mail directory (Maildir, sdbox or mdbox root). */
  readonly mailDir: string;
  /** mail_attachment_dir for sdbox and mdbox (SIS), null for Maildir. */
  readonly attachmentDir: string | null;
  /** What tar reads for this store: paths relative to `tarCwd` (the store plus, for SIS, the attachments). */
  readonly tarCwd: string;
  readonly tarPaths: readonly string[];
  /** Bytes on disk as `du -sb` counts them (hard-linked SIS files once). */
  readonly diskBytes: number;
  readonly messages: number;
}

export interface BenchInstance {
  readonly dv: DovecotInstance;
  readonly corpus: CorpusSummary;
  readonly stores: readonly BenchStore[];
  /** Scratch space inside the instance (dumps, restore targets), owned by the mail user. */
  readonly scratch: string;
}

async function duBytes(cwd: string, paths: readonly string[]): Promise<number> {
  const { stdout } = await run('du', ['-sbc', ...paths], { cwd });
  const total = /^(\d+)\s+total$/m.exec(stdout);
  return total ? Number(total[1]) : 0;
}

/** Sum of `messages` over all of the user's mailboxes, as Dovecot reports it. */
export async function dovecotMessageCount(dv: DovecotInstance, user: string): Promise<number> {
  const out = await dv.doveadmOk(['-f', 'flow', 'mailbox', 'status', '-u', user, 'messages', '*']);
  let n = 0;
  for (const m of out.matchAll(/messages=(\d+)/g)) n += Number(m[1]);
  return n;
}

export async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await run('chown', ['-R', `${uid}:${gid}`, dir]);
}

/** Starts Dovecot, writes the corpus once, imports it into one user per profile, and checks the counts. */
export async function buildInstance(count: number, profiles: readonly BenchProfile[], log: (line: string) => void): Promise<BenchInstance> {
  const dv = await startDovecot();
  try {
    const source = path.join(dv.dir, 'source', 'Maildir');
    let t = Date.now();
    const corpus = await writeSourceMaildir(source, count);
    log(`  corpus: ${count} messages, ${(corpus.bytes / 1e6).toFixed(1)} MB (${corpus.byKind['shared-attachment']} with a shared attachment, ${corpus.byKind['big-attachment']} with 1-4 MB) written in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    if (dv.runningAsRoot) await chownTree(path.join(dv.dir, 'source'), dv.mailUid, dv.mailGid);
    const stores: BenchStore[] = [];
    for (const profile of profiles) {
      const user = await dv.addUser(`bench-${profile}`, profile);
      t = Date.now();
      await dv.doveadmOk(['import', '-u', user.name, `maildir:${source}`, '', 'all']);
      const seen = await dovecotMessageCount(dv, user.name);
      if (seen !== count) throw new Error(`doveadm import into ${profile} user ${user.name}: Dovecot sees ${seen} messages, expected ${count}\n${await dv.readLog(2000)}`);
      const mailDir = user.mailLocationAbsolute.replace(/^[a-z]+:/, '');
      const tarCwd = dv.dir;
      const tarPaths = [path.relative(tarCwd, mailDir), ...(profile !== 'maildir' ? [path.relative(tarCwd, dv.attachmentDir)] : [])];
      const diskBytes = await duBytes(tarCwd, tarPaths);
      log(`  ${profile}: doveadm import ${((Date.now() - t) / 1000).toFixed(1)} s, Dovecot sees ${seen} messages, ${(diskBytes / 1e6).toFixed(1)} MB on disk`);
      stores.push({
        profile,
        user: user.name,
        usersFile: path.join(dv.dir, 'etc', 'users', user.name),
        mailDir,
        attachmentDir: profile !== 'maildir' ? dv.attachmentDir : null,
        tarCwd,
        tarPaths,
        diskBytes,
        messages: seen,
      });
    }
    // The source Maildir stays until the instance is removed: deleting its files here, just before the
    // scenarios, made every file the next minutes' runs created (restores, doveadm backup) scan past
    // the freed inodes on ext4 without a journal (recently_deleted(): up to 360 s while the inode
    // table is dirty), measured 11-315 us per create instead of about 11.
    const scratch = path.join(dv.dir, 'mail', 'scratch');
    await mkdir(scratch);
    if (dv.runningAsRoot) await chown(scratch, dv.mailUid, dv.mailGid);
    return { dv, corpus, stores, scratch };
  } catch (e) {
    await dv.stop();
    throw e;
  }
}
