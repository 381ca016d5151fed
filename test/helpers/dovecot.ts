/**
 * A private Dovecot 2.3 instance for integration tests: started on 127.0.0.1 with its own config,
 * sockets, state and logs in a short temp dir (`/tmp/dv-XXXXXX`: unix socket paths are limited to 108
 * bytes), IMAP on a free TCP port, LMTP on a unix socket, a master user, and a passwd-file of users that
 * tests add one per test.
 *
 * Two ways to run (see /work/shared/reference/dovecot-test-instance.md for the traps):
 * - As root (CI): Dovecot's own users (`dovecot`, `dovenull`) run auth and login; mail belongs to a
 *   numeric uid/gid (MAILVAULT_TEST_MAIL_UID / _GID, default 5000) that needs no passwd entry, so
 *   the tests never add system users. Mail processes refuse root, and the default first_valid_uid (500)
 *   would refuse low system uids, so first/last_valid_uid are pinned to that uid.
 * - As a normal user: everything runs as the invoking user (internal, login and mail user), no chroot.
 *
 * Usage in a test file:
 *
 *   const dv = requireDovecot(test);          // skips (locally) or fails (CI=true) when missing
 *   let instance: DovecotInstance;
 *   test.before(async () => { instance = await startDovecot(); });
 *   test.after.always(async () => { await instance?.stop(); });
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestFn } from 'ava';
import { keepTestTmp } from './temp.js';

export type DovecotProfile = 'maildir' | 'maildir-fs' | 'sdbox' | 'mdbox';

/** mail_location per profile (relative to the user's home). */
export const PROFILE_LOCATIONS: Readonly<Record<DovecotProfile, string>> = {
  maildir: 'maildir:~/Maildir',
  'maildir-fs': 'maildir:~/Maildir:LAYOUT=fs:UTF-8',
  sdbox: 'sdbox:~/sdbox',
  mdbox: 'mdbox:~/mdbox',
};

export interface DovecotUser {
  readonly name: string;
  readonly password: string;
  /** Absolute home directory (exists, owned by the mail user). */
  readonly home: string;
  /** mail_location as given to Dovecot, with "~" (see PROFILE_LOCATIONS). */
  readonly mailLocation: string;
  /** mail_location with "~" replaced by the home directory. */
  readonly mailLocationAbsolute: string;
  readonly profile: DovecotProfile;
}

export interface DoveadmResult {
  readonly stdout: string;
  /** stdout as bytes (message text may not be UTF-8). */
  readonly stdoutBytes: Buffer;
  readonly stderr: string;
  readonly code: number;
}

export interface DovecotInstance {
  /** Instance directory (config, run, state, log, mail, attachments). */
  readonly dir: string;
  readonly confPath: string;
  readonly imapHost: string;
  readonly imapPort: number;
  /** Unix socket for LMTP delivery (mode 0666). */
  readonly lmtpSocket: string;
  /** Owner of the mail files (the invoking user's ids when not root). */
  readonly mailUid: number;
  readonly mailGid: number;
  /** mail_attachment_dir (absolute, shared by all users, SIS for sdbox/mdbox). */
  readonly attachmentDir: string;
  readonly masterUser: string;
  readonly masterPassword: string;
  readonly runningAsRoot: boolean;
  /**
   * Adds a user to the passwd-file; the name must be unique in this instance. `mailLocation` (with "~")
   * replaces the profile's, for options such as INDEX= or UTF-8; it must be of the profile's driver.
   */
  addUser(name: string, profile?: DovecotProfile, mailLocation?: string): Promise<DovecotUser>;
  /** Runs `doveadm -c <conf> ...args`; never throws on a non-zero exit (check `code`). */
  doveadm(args: readonly string[], input?: Buffer): Promise<DoveadmResult>;
  /** Like doveadm() but throws with stderr when the exit code is not 0. */
  doveadmOk(args: readonly string[], input?: Buffer): Promise<string>;
  /** The tail of the instance's log (for failure messages). */
  readLog(maxBytes?: number): Promise<string>;
  /** Kills the master (master.pid), waits until the IMAP port is closed, removes the directory unless keepDir (or MAILVAULT_KEEP_DOVECOT=1 / MAILVAULT_KEEP_TEST_TMP=1). */
  stop(options?: { keepDir?: boolean }): Promise<void>;
}

export interface StartDovecotOptions {
  /** Parent of the instance dir (default os.tmpdir(), must keep socket paths short). */
  readonly parentDir?: string;
  /** Extra lines appended to dovecot.conf (e.g. settings a test needs). */
  readonly extraConfig?: string;
}

/** Where dovecot and doveadm are looked up; MAILVAULT_TEST_DOVECOT_PATH overrides it (e.g. to check the skip path). */
const CLEAN_PATH = process.env.MAILVAULT_TEST_DOVECOT_PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** The environment for dovecot/doveadm: nothing inherited (a parent doveadm's exported config would win over -c). */
const CLEAN_ENV: NodeJS.ProcessEnv = { PATH: CLEAN_PATH, LANG: 'C.UTF-8' };

function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { env: CLEAN_ENV, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Whether a Dovecot 2.3 server and doveadm are installed; `why` says what is missing. */
export function dovecotAvailable(): { ok: boolean; why: string } {
  const dovecot = which('dovecot');
  const doveadm = which('doveadm');
  if (!dovecot || !doveadm) {
    const missing = [dovecot ? null : 'dovecot', doveadm ? null : 'doveadm'].filter(Boolean).join(' and ');
    return { ok: false, why: `${missing} not found in ${CLEAN_PATH} (install dovecot-imapd and dovecot-lmtpd)` };
  }
  const v = spawnSync(dovecot, ['--version'], { env: CLEAN_ENV, encoding: 'utf8' });
  const version = (v.stdout ?? '').trim();
  if (v.status !== 0 || !/^2\.3\./.test(version)) {
    return { ok: false, why: `dovecot --version says "${version || v.stderr?.trim()}"; these tests need Dovecot 2.3` };
  }
  if (!existsSync('/usr/lib/dovecot/lmtp')) {
    return { ok: false, why: 'the Dovecot LMTP server (/usr/lib/dovecot/lmtp) is missing (install dovecot-lmtpd)' };
  }
  return { ok: true, why: `dovecot ${version}` };
}

/**
 * Call at the top of an integration test file. With Dovecot present, returns true. Without it: when
 * CI=true, registers a failing test (integration tests must run in CI); otherwise prints the reason and
 * registers a skipped test, and returns false so the file registers nothing else.
 */
/**
 * One private Dovecot for all the tests of a file: started before them, stopped after them (after a
 * failure too). `use` receives it, for the file's own variable:
 *   let dv!: DovecotInstance;
 *   dovecotForFile(test, (started) => (dv = started));
 */
export function dovecotForFile(test: TestFn<unknown>, use: (dv: DovecotInstance) => void, options: StartDovecotOptions = {}): void {
  let dv: DovecotInstance | undefined;
  test.before(async () => {
    dv = await startDovecot(options);
    use(dv);
  });
  test.after.always(async () => {
    await dv?.stop();
  });
}

export function requireDovecot(test: TestFn<unknown>): boolean {
  const { ok, why } = dovecotAvailable();
  if (ok) return true;
  if (process.env.CI === 'true') {
    test('Dovecot is installed (required when CI=true)', (t) => {
      t.fail(`integration tests cannot run: ${why}`);
    });
  } else {
    console.warn(`[skip] integration tests skipped: ${why}`);
    test.skip(`Dovecot missing: ${why}`, () => undefined);
  }
  return false;
}

/** A free TCP port on 127.0.0.1 (bind port 0, read it, close). */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** True if something accepts TCP connections on 127.0.0.1:port. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function run(cmd: string, args: readonly string[], input?: Buffer): Promise<DoveadmResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: CLEAN_ENV, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ stdout: Buffer.concat(out).toString('utf8'), stdoutBytes: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8'), code: code ?? -1 }));
    child.stdin.on('error', () => undefined); // doveadm may exit before reading everything
    child.stdin.end(input ?? Buffer.alloc(0));
  });
}

/**
 * Runs `dovecot -c conf`, which daemonizes: the daemon keeps the inherited stdio open, so output goes to
 * a file and we wait for the launcher's exit, not for its pipes to close.
 */
async function launchMaster(confPath: string, errPath: string): Promise<DoveadmResult> {
  const fd = openSync(errPath, 'w');
  try {
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn('dovecot', ['-c', confPath], { env: CLEAN_ENV, stdio: ['ignore', fd, fd] });
      child.once('error', reject);
      child.once('exit', (c) => resolve(c ?? -1));
    });
    return { stdout: '', stdoutBytes: Buffer.alloc(0), stderr: await readFile(errPath, 'utf8').catch(() => ''), code };
  } finally {
    closeSync(fd);
  }
}

function groupName(gid: number): string {
  const r = spawnSync('getent', ['group', String(gid)], { env: CLEAN_ENV, encoding: 'utf8' });
  const name = r.status === 0 ? r.stdout.split(':')[0] : '';
  if (!name) throw new Error(`group ${gid} has no name (getent group ${gid} failed); Dovecot needs default_internal_group to resolve`);
  return name;
}

/** Live masters, killed on process exit if a test file forgets stop() or crashes. */
const liveMasters = new Set<number>();
let exitHookInstalled = false;
function trackMaster(pid: number): void {
  liveMasters.add(pid);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const p of liveMasters) {
      try {
        process.kill(p, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
  });
}

function renderConfig(o: {
  dir: string;
  imapPort: number;
  root: boolean;
  mailUid: number;
  mailGid: number;
  user: string;
  group: string;
  attachmentDir: string;
  instanceName: string;
  extra: string;
}): string {
  const d = o.dir;
  const common = `# mailvault test instance (generated by test/helpers/dovecot.ts)
protocols = imap lmtp
listen = 127.0.0.1
base_dir = ${d}/run
state_dir = ${d}/state
log_path = ${d}/log/dovecot.log
info_log_path = ${d}/log/dovecot.log
debug_log_path = ${d}/log/dovecot.log
instance_name = ${o.instanceName}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
auth_master_user_separator = *
mail_location = maildir:~/Maildir
mail_attachment_dir = ${o.attachmentDir}
mail_attachment_min_size = 1k
lmtp_save_to_detail_mailbox = no
namespace inbox {
  inbox = yes
  separator = /
  prefix =
}
passdb {
  driver = passwd-file
  master = yes
  args = scheme=PLAIN username_format=%n ${d}/etc/master-users
  result_success = continue
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n ${d}/etc/users/%n
}
userdb {
  driver = passwd-file
  args = username_format=%n ${d}/etc/users/%n
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${o.imapPort}
  }
  inet_listener imaps {
    port = 0
  }
${o.root ? '' : '  chroot =\n'}}
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
}
`;
  const privileges = o.root
    ? `default_internal_user = dovecot
default_login_user = dovenull
mail_uid = ${o.mailUid}
mail_gid = ${o.mailGid}
first_valid_uid = ${o.mailUid}
last_valid_uid = ${o.mailUid}
first_valid_gid = ${o.mailGid}
last_valid_gid = ${o.mailGid}
`
    : `default_internal_user = ${o.user}
default_internal_group = ${o.group}
default_login_user = ${o.user}
first_valid_uid = 1
last_valid_uid = 0
first_valid_gid = 1
last_valid_gid = 0
service anvil {
  chroot =
}
service pop3-login {
  chroot =
}
service submission-login {
  chroot =
}
service imap-urlauth-login {
  chroot =
}
`;
  return `${common}${privileges}${o.extra}\n`;
}

/** Starts a private Dovecot; the caller must `stop()` it (test.after.always). */
export async function startDovecot(options: StartDovecotOptions = {}): Promise<DovecotInstance> {
  const avail = dovecotAvailable();
  if (!avail.ok) throw new Error(`cannot start Dovecot: ${avail.why}`);
  const root = process.getuid?.() === 0;
  const me = os.userInfo();
  const mailUid = root ? Number(process.env.MAILVAULT_TEST_MAIL_UID ?? 5000) : me.uid;
  const mailGid = root ? Number(process.env.MAILVAULT_TEST_MAIL_GID ?? mailUid) : me.gid;
  const dir = await mkdtemp(path.join(options.parentDir ?? os.tmpdir(), 'dv-'));
  if (Buffer.byteLength(`${dir}/run/imap-hibernate-master`) > 100) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`instance dir ${dir} is too long for unix socket paths (108 bytes); pass a shorter parentDir`);
  }
  const confPath = path.join(dir, 'dovecot.conf');
  const attachmentDir = path.join(dir, 'attachments');
  const masterUser = 'mvmaster';
  const masterPassword = randomBytes(9).toString('base64url');
  for (const sub of ['run', 'state', 'log', 'etc', 'mail', 'attachments']) await mkdir(path.join(dir, sub));
  await chmod(dir, 0o755);
  // One passwd-file per user (etc/users/<name>): Dovecot re-reads a changed passwd-file at most once per
  // second, so a user appended to a shared file can be "unknown" for up to a second; a new file is read at once.
  await mkdir(path.join(dir, 'etc', 'users'), { mode: 0o755 });
  await writeFile(path.join(dir, 'etc', 'master-users'), `${masterUser}:{PLAIN}${masterPassword}\n`, { mode: 0o644 });
  await chmod(path.join(dir, 'etc', 'users'), 0o755);
  await chmod(path.join(dir, 'etc', 'master-users'), 0o644);
  if (root) {
    await chown(path.join(dir, 'mail'), mailUid, mailGid);
    await chown(attachmentDir, mailUid, mailGid);
  }
  const instanceName = `mvtest-${path.basename(dir).slice(3)}`;
  let imapPort = 0;
  let started = false;
  let lastError = '';
  // The port may be taken between freePort() and Dovecot's bind: retry a few times.
  for (let attempt = 0; attempt < 3 && !started; attempt++) {
    imapPort = await freePort();
    await writeFile(
      confPath,
      renderConfig({ dir, imapPort, root, mailUid, mailGid, user: me.username, group: root ? 'dovecot' : groupName(me.gid), attachmentDir, instanceName, extra: options.extraConfig ?? '' }),
    );
    const r = await launchMaster(confPath, path.join(dir, 'log', 'startup.err'));
    if (r.code !== 0) {
      lastError = `dovecot -c ${confPath} exited ${r.code}: ${r.stderr.trim()}`;
      if (/in use/i.test(r.stderr)) continue;
      break;
    }
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const pid = await readMasterPid(dir);
      if (pid !== null && (await canConnect(imapPort))) {
        trackMaster(pid);
        started = true;
        break;
      }
      await sleep(50);
    }
    if (!started) lastError = `Dovecot did not listen on 127.0.0.1:${imapPort} within 15 s`;
  }
  if (!started) {
    const log = await readFile(path.join(dir, 'log', 'dovecot.log'), 'utf8').catch(() => '');
    await killMaster(dir);
    await killLeftovers(instanceName);
    if (!keepInstanceDir()) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    throw new Error(`cannot start Dovecot in ${dir}: ${lastError}\n--- log ---\n${log.slice(-4000)}`);
  }

  const users = new Set<string>();
  const doveadm = (args: readonly string[], input?: Buffer): Promise<DoveadmResult> => run('doveadm', ['-c', confPath, ...args], input);
  const instance: DovecotInstance = {
    dir,
    confPath,
    imapHost: '127.0.0.1',
    imapPort,
    lmtpSocket: path.join(dir, 'run', 'lmtp'),
    mailUid,
    mailGid,
    attachmentDir,
    masterUser,
    masterPassword,
    runningAsRoot: root,
    async addUser(name, profile = 'maildir', locationOverride) {
      if (!/^[a-z0-9][a-z0-9._-]*$/i.test(name)) throw new Error(`test user name "${name}" must be [a-z0-9._-]`);
      if (users.has(name) || name === masterUser) throw new Error(`test user "${name}" already exists in ${dir}: use a fresh name per test`);
      users.add(name);
      const home = path.join(dir, 'mail', name);
      await mkdir(home, { mode: 0o700 });
      if (root) await chown(home, mailUid, mailGid);
      const password = randomBytes(9).toString('base64url');
      const mailLocation = locationOverride ?? PROFILE_LOCATIONS[profile];
      const ids = root ? `${mailUid}:${mailGid}` : ':';
      await writeFile(path.join(dir, 'etc', 'users', name), `${name}:{PLAIN}${password}:${ids}::${home}::userdb_mail=${mailLocation}\n`, { mode: 0o644, flag: 'wx' });
      return { name, password, home, mailLocation, mailLocationAbsolute: mailLocation.replace(/(^|[:=])~(?=\/|:|$)/g, (_m, before: string) => before + home), profile };
    },
    doveadm,
    async doveadmOk(args, input) {
      const r = await doveadm(args, input);
      if (r.code !== 0) throw new Error(`doveadm ${args.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
      return r.stdout;
    },
    async readLog(maxBytes = 8000) {
      const log = await readFile(path.join(dir, 'log', 'dovecot.log'), 'utf8').catch(() => '');
      return log.slice(-maxBytes);
    },
    async stop(stopOptions = {}) {
      // Connections first (an imap process serving a client outlives the master's SIGTERM), then the
      // master, which stops the rest cleanly, then anything still left.
      await killLeftovers(instanceName, (service) => service === 'imap' || service === 'imap-login');
      await killMaster(dir);
      await killLeftovers(instanceName);
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && (await canConnect(imapPort))) await sleep(50);
      if (!stopOptions.keepDir && !keepInstanceDir()) await rm(dir, { recursive: true, force: true });
    },
  };
  return instance;
}

/** Instance directories are kept for debugging with MAILVAULT_KEEP_DOVECOT=1 or MAILVAULT_KEEP_TEST_TMP=1. */
function keepInstanceDir(): boolean {
  return process.env.MAILVAULT_KEEP_DOVECOT === '1' || keepTestTmp;
}

async function readMasterPid(dir: string): Promise<number | null> {
  const text = await readFile(path.join(dir, 'run', 'master.pid'), 'utf8').catch(() => '');
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Processes of the instance that outlive the master's SIGTERM (an imap process still serving a client
 * connection does), found by the process title Dovecot gives them: "dovecot-<instance_name>/...".
 * Without this, a stopped test server keeps answering its open connections.
 */
async function killLeftovers(instanceName: string, only: (service: string) => boolean = () => true): Promise<void> {
  const title = `dovecot-${instanceName}/`;
  const killed: number[] = [];
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.startsWith(title)) continue;
    const service = cmdline.slice(title.length).split(/[\s\0]/)[0] ?? '';
    if (!only(service)) continue;
    try {
      process.kill(Number(pid), 'SIGKILL');
      killed.push(Number(pid));
    } catch {
      /* gone already */
    }
  }
  // SIGKILL is asynchronous: wait until they are gone, so a restart in the same directory finds no
  // old process holding its sockets or its master.pid.
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && killed.some((pid) => isAlive(pid) && !isZombie(pid))) await sleep(20);
}

function isZombie(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

/** SIGTERM to the master (it stops all its children), then SIGKILL after 5 s. */
async function killMaster(dir: string): Promise<void> {
  const pid = await readMasterPid(dir);
  if (pid === null) return;
  liveMasters.delete(pid);
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && isAlive(pid)) await sleep(25);
  if (isAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    const killDeadline = Date.now() + 5_000;
    while (Date.now() < killDeadline && isAlive(pid) && !isZombie(pid)) await sleep(20);
  }
}
