// The IMAP driver against a private Dovecot 2.3 (sdbox + SIS, master user): read, write through the
// master user, idempotency probe, IDLE notification, and failures mapped to typed errors.
//
// The instance is started here (not through test/helpers/dovecot.ts, which was being written at the
// same time): `dovecot -F` as a child process, so stopping it is killing that child.
import test from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { Readable } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import { ImapFlow } from 'imapflow';
import { AuthenticationError, ServerUnavailableError, StorageNotFoundError } from '../../src/core/errors.js';
import { openImapStore } from '../../src/storage/imap/index.js';
import type { ExistenceProbe, ExistingCopies, MailStore } from '../../src/storage/types.js';
import { keepTestTmp } from '../helpers/temp.js';

const MAIL_UID = 5000;
const MASTER = 'mvmaster';

interface Instance {
  dir: string;
  port: number;
  masterPassword: string;
  addUser(name: string): Promise<string>;
  stop(): Promise<void>;
}

function dovecotMissing(): string | null {
  const r = spawnSync('sh', ['-c', 'command -v dovecot'], { encoding: 'utf8' });
  if (r.status !== 0) return 'dovecot is not installed';
  if (process.getuid?.() !== 0) return 'this private instance runs mail as uid 5000 and needs root';
  return null;
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

async function canConnect(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function startDovecot(): Promise<Instance> {
  const dir = await mkdtemp('/tmp/dvi-');
  const port = await freePort();
  const masterPassword = randomBytes(9).toString('base64url');
  for (const sub of ['run', 'log', 'etc', 'mail', 'att']) await mkdir(`${dir}/${sub}`);
  await chmod(dir, 0o755);
  await chown(`${dir}/mail`, MAIL_UID, MAIL_UID);
  await chown(`${dir}/att`, MAIL_UID, MAIL_UID);
  await writeFile(`${dir}/etc/master`, `${MASTER}:{PLAIN}${masterPassword}\n`, { mode: 0o644 });
  // One passwd-file per user: Dovecot re-reads a changed passwd-file at most once a second, so a user
  // appended to a shared file can be "unknown" for up to a second (test/helpers/dovecot.ts does the same).
  await mkdir(`${dir}/etc/users`, { mode: 0o755 });
  await writeFile(
    `${dir}/dovecot.conf`,
    `protocols = imap
listen = 127.0.0.1
base_dir = ${dir}/run
state_dir = ${dir}/run
log_path = ${dir}/log/dovecot.log
instance_name = mvimap-${dir.slice(-6)}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_master_user_separator = *
mail_location = sdbox:~/sdbox
mail_attachment_dir = ${dir}/att
mail_attachment_min_size = 1k
mail_uid = ${MAIL_UID}
mail_gid = ${MAIL_UID}
first_valid_uid = ${MAIL_UID}
last_valid_uid = ${MAIL_UID}
first_valid_gid = ${MAIL_UID}
last_valid_gid = ${MAIL_UID}
default_internal_user = dovecot
default_login_user = dovenull
mail_plugins = $mail_plugins quota
protocol imap {
  mail_plugins = $mail_plugins imap_quota
}
plugin {
  quota = count:User quota
  quota_rule = *:storage=1M
  quota_vsizes = yes
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \\Sent
  }
}
passdb {
  driver = passwd-file
  master = yes
  args = scheme=PLAIN username_format=%n ${dir}/etc/master
  result_success = continue
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n ${dir}/etc/users/%n
}
userdb {
  driver = passwd-file
  args = username_format=%n ${dir}/etc/users/%n
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${port}
  }
  inet_listener imaps {
    port = 0
  }
}
`,
  );
  const child: ChildProcess = spawn('dovecot', ['-F', '-c', `${dir}/dovecot.conf`], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 15_000;
  while (!(await canConnect(port))) {
    if (Date.now() > deadline || child.exitCode !== null) {
      // Not started: stop the child and remove its directory (the log's tail goes into the error).
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        child.kill('SIGKILL');
        await exited;
      }
      const log = await readFile(`${dir}/log/dovecot.log`, 'utf8').catch(() => '');
      if (!keepTestTmp) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw new Error(`Dovecot did not start on 127.0.0.1:${port} (log ${dir}/log/dovecot.log)\n--- log ---\n${log.slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  process.once('exit', () => child.kill('SIGKILL'));
  return {
    dir,
    port,
    masterPassword,
    async addUser(name) {
      const password = randomBytes(9).toString('base64url');
      await writeFile(`${dir}/etc/users/${name}`, `${name}:{PLAIN}${password}:${MAIL_UID}:${MAIL_UID}::${dir}/mail/${name}::\n`, { mode: 0o644 });
      return password;
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      if (!keepTestTmp) await rm(dir, { recursive: true, force: true });
    },
  };
}

const missing = dovecotMissing();
if (missing !== null) {
  if (process.env.CI === 'true') test('Dovecot is available (required when CI=true)', (t) => t.fail(`IMAP integration tests cannot run: ${missing}`));
  else {
    console.warn(`[skip] IMAP driver integration tests: ${missing}`);
    test.skip(`IMAP driver integration (${missing})`, () => undefined);
  }
} else {
  registerTests();
}

function registerTests(): void {
  let dv: Instance;
  let userCounter = 0;
  test.before(async () => {
    dv = await startDovecot();
  });
  test.after.always(async () => {
    await dv?.stop();
  });

  const url = (): string => `imap://127.0.0.1:${dv.port}`;
  async function freshUser(): Promise<{ name: string; password: string }> {
    const name = `u${++userCounter}-${randomBytes(3).toString('hex')}`;
    return { name, password: await dv.addUser(name) };
  }
  async function userClient(user: { name: string; password: string }): Promise<ImapFlow> {
    const c = new ImapFlow({ host: '127.0.0.1', port: dv.port, secure: false, auth: { user: user.name, pass: user.password }, logger: false, disableAutoIdle: true });
    c.on('error', () => undefined);
    await c.connect();
    return c;
  }
  const asMaster = (user: string): Promise<MailStore> => openImapStore({ url: url(), user, masterUser: MASTER, password: dv.masterPassword, tls: false });

  function message(subject: string, body = 'hello\n', extraHeaders = ''): Buffer {
    return Buffer.from(`From: a@example.org\nTo: b@example.org\nSubject: ${subject}\nMessage-ID: <${subject.replace(/\W/g, '')}@example.org>\n${extraHeaders}\n${body}`);
  }
  async function readAll(s: Readable): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const c of s) parts.push(c as Buffer);
    return Buffer.concat(parts);
  }
  function probeOf(bytes: Buffer, internalDate: number, messageId: string): ExistenceProbe {
    return { guid: null, size: bytes.length, internalDate, sha256: createHash('sha256').update(bytes).digest('hex'), messageId, openBody: () => Readable.from([bytes]) };
  }

  test('reads mailboxes and messages as another IMAP client sees them', async (t) => {
    const user = await freshUser();
    const c = await userClient(user);
    await c.mailboxCreate('Sent');
    await c.mailboxCreate('Arbeit/Bücher & Co');
    const big = message('big', `${'x'.repeat(76)}\n`.repeat(8000)); // > one 256 KiB chunk
    await c.append('INBOX', message('one'), ['\\Seen', '\\Flagged', 'Project_X'], new Date(1_600_000_000_000));
    await c.append('INBOX', big, [], new Date(1_500_000_000_000));
    await c.append('Arbeit/Bücher & Co', message('two'), ['\\Answered'], new Date(1_400_000_000_000));
    const store = await openImapStore({ url: url(), user: user.name, password: user.password, tls: false });
    try {
      const boxes = await store.listMailboxes();
      t.deepEqual(
        boxes.map((b) => b.name),
        ['Arbeit', 'Arbeit/Bücher & Co', 'INBOX', 'Sent'],
      );
      t.deepEqual(boxes.find((b) => b.name === 'Sent')?.specialUse, ['\\Sent']);
      const inbox = boxes.find((b) => b.name === 'INBOX')!;
      t.is(inbox.messageCount, 2);
      t.is(inbox.uidNext, 3);
      t.true(inbox.uidValidity > 0);
      t.regex(inbox.highestModseq ?? '', /^\d+$/);
      t.true((await store.listSubscriptions()).includes('Arbeit/Bücher & Co'));

      const reader = await store.openMailbox('INBOX');
      const msgs = [];
      for await (const m of reader.messages()) msgs.push(m);
      t.deepEqual(
        msgs.map((m) => [m.uid, m.flags, m.keywords, m.internalDate]),
        [
          [1, ['\\Flagged', '\\Seen'], ['Project_X'], 1_600_000_000],
          [2, [], [], 1_500_000_000],
        ],
      );
      t.regex(msgs[0]!.guid ?? '', /^[0-9a-f]{32}$/);
      t.is(typeof msgs[0]!.saveDate, 'number');
      const changed = [];
      for await (const m of reader.messages({ changedSinceModseq: msgs[0]!.modseq! })) changed.push(m.uid);
      t.deepEqual(changed, [2]);
      const fromUid = [];
      for await (const m of reader.messages({ minUid: 5 })) fromUid.push(m.uid);
      t.deepEqual(fromUid, []);
      await c.mailboxOpen('INBOX', { readOnly: true });
      for (const m of msgs) {
        const served = (await c.fetchOne(String(m.uid), { source: true }, { uid: true })) as { source: Buffer };
        const got = await readAll(await reader.openMessage(m));
        t.is(got.length, m.size);
        t.true(got.equals(served.source), `UID ${m.uid}: bytes differ from what FETCH BODY[] serves`);
      }
      // served form: CRLF where the message was appended with LF
      t.true((await readAll(await reader.openMessage(msgs[0]!))).includes('Subject: one\r\n'));
      const sub = await store.openMailbox('Arbeit/Bücher & Co');
      const subMsgs = [];
      for await (const m of sub.messages({ minUid: 1 })) subMsgs.push(m);
      t.deepEqual(subMsgs.map((m) => m.flags), [['\\Answered']]);
      await t.throwsAsync(store.openMailbox('Nope'), { instanceOf: StorageNotFoundError });
    } finally {
      await store.close();
      await c.logout();
    }
  });

  test('a message with NUL bytes is read back with its NULs (BINARY), not with the 0x80 BODY[] serves', async (t) => {
    const user = await freshUser();
    const c = await userClient(user);
    await c.append('INBOX', Buffer.from('Subject: nul\n\nhello\0world\n'), [], new Date());
    // 0x80 in UTF-8 ("\u00c0" = C3 80) in a base64 single-part message: BINARY[] decodes the body, so it must not be used
    const utf8 = Buffer.from('Subject: \u00c0 la carte\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\nw4AgbGEgY2FydGUK\n');
    await c.append('INBOX', utf8, [], new Date());
    await c.logout();
    const store = await openImapStore({ url: url(), user: user.name, password: user.password, tls: false });
    try {
      const reader = await store.openMailbox('INBOX');
      const [m, u] = await (async () => {
        const a = [];
        for await (const x of reader.messages()) a.push(x);
        return a;
      })();
      const got = await readAll(await reader.openMessage(m!));
      t.true(got.equals(Buffer.from('Subject: nul\r\n\r\nhello\0world\r\n')), JSON.stringify(got.toString('latin1')));
      t.is(got.length, m!.size);
      const gotUtf8 = await readAll(await reader.openMessage(u!));
      t.true(gotUtf8.equals(Buffer.from(utf8.toString('latin1').replace(/\n/g, '\r\n'), 'latin1')), JSON.stringify(gotUtf8.toString('latin1')));
    } finally {
      await store.close();
    }
  });

  test('bodies are fetched ahead in batches: every body as served, a large one in chunks, one expunged after listing reported, far fewer FETCH commands than messages', async (t) => {
    const user = await freshUser();
    const c = await userClient(user);
    const sent: Buffer[] = [];
    for (let i = 0; i < 50; i++) {
      const body = i === 20 ? `${'L'.repeat(99)}\n`.repeat(4000) : `message ${i}\n${'x'.repeat((i * 997) % 20000)}\n`; // #20: 400 KB, over one 256 KiB chunk
      const m = message(`pre-${i}`, body);
      sent.push(m);
      await c.append('INBOX', m, [], new Date(1_600_000_000_000 + i * 1000));
    }
    const store = await openImapStore({ url: url(), user: user.name, password: user.password, tls: false });
    // Count the FETCH commands of the store's own session (its client is internal to the driver).
    const client = (store as unknown as { session: { client: ImapFlow } }).session.client;
    let fetches = 0;
    const { fetch, fetchOne } = client;
    client.fetch = ((...a: Parameters<ImapFlow['fetch']>) => (fetches++, fetch.apply(client, a))) as ImapFlow['fetch'];
    client.fetchOne = ((...a: Parameters<ImapFlow['fetchOne']>) => (fetches++, fetchOne.apply(client, a))) as ImapFlow['fetchOne'];
    try {
      const reader = await store.openMailbox('INBOX');
      const listed = [];
      for await (const m of reader.messages()) listed.push(m);
      t.is(listed.length, 50);
      // Another session expunges #40 after the listing and before it is read.
      await c.mailboxOpen('INBOX');
      await c.messageDelete(String(listed[40]!.uid), { uid: true });
      fetches = 0;
      for (const [i, m] of listed.entries()) {
        if (i === 40) {
          await t.throwsAsync(async () => readAll(await reader.openMessage(m)), { message: /expunged/ });
          continue;
        }
        const got = await readAll(await reader.openMessage(m));
        t.true(got.equals(Buffer.from(sent[i]!.toString('latin1').replace(/\n/g, '\r\n'), 'latin1')), `message ${i}`);
        t.is(got.length, m.size);
      }
      t.true(fetches <= 10, `${fetches} FETCH commands for 50 messages`);
    } finally {
      await store.close();
      await c.logout();
    }
  });

  test('a reader that opens only some messages (every 40th) gets fewer bodies fetched ahead for nothing: the batch shrinks while its bodies go unused', async (t) => {
    const user = await freshUser();
    const c = await userClient(user);
    for (let i = 0; i < 120; i++) await c.append('INBOX', message(`sparse-${i}`, `message ${i}\n`), [], new Date(1_600_000_000_000 + i * 1000));
    await c.logout();
    const store = await openImapStore({ url: url(), user: user.name, password: user.password, tls: false });
    const client = (store as unknown as { session: { client: ImapFlow } }).session.client;
    let bodies = 0;
    const { fetch } = client;
    client.fetch = async function* (...a: Parameters<ImapFlow['fetch']>) {
      for await (const row of fetch.apply(client, a)) {
        if (row.source) bodies++;
        yield row;
      }
    } as ImapFlow['fetch'];
    try {
      const reader = await store.openMailbox('INBOX');
      const listed = [];
      for await (const m of reader.messages()) listed.push(m);
      for (const i of [0, 40, 80]) {
        const got = await readAll(await reader.openMessage(listed[i]!));
        t.regex(got.toString(), new RegExp(`message ${i}\r\n$`));
      }
      // A full batch each time would be 3 x 32 bodies for 3 opened.
      t.true(bodies <= 32 + 16 + 8, `${bodies} bodies fetched for 3 messages opened`);
    } finally {
      await store.close();
    }
  });

  test('writes through the master user: APPEND with flags, keywords and INTERNALDATE', async (t) => {
    const user = await freshUser();
    const store = await asMaster(user.name);
    const c = await userClient(user);
    try {
      const box = await store.createMailbox({ name: 'Restored/Deep' });
      t.is(box.name, 'Restored/Deep');
      t.is(box.uidNext, 1);
      await t.throwsAsync(store.createMailbox({ name: 'Restored/Deep' }), { message: /already exists/ });
      const a = message('restored-a');
      const b = message('restored-b', 'second\n');
      const tx = await store.beginSave('Restored/Deep');
      await tx.save({ flags: ['\\Seen', '\\Draft'], keywords: ['$Label1', 'custom'], internalDate: 1_300_000_000, size: a.length }, Readable.from([a]));
      await tx.save({ flags: [], keywords: [], internalDate: 1_300_000_100, size: b.length }, Readable.from([b]));
      // nothing is on the server before commit
      t.is(((await c.status('Restored/Deep', { messages: true })) as { messages?: number }).messages, 0);
      const result = await tx.commit();
      t.deepEqual(result.uids, [1, 2]);
      t.is(result.uidValidity, box.uidValidity);
      await t.throwsAsync(tx.commit(), { message: /already committed/ });

      await c.mailboxOpen('Restored/Deep', { readOnly: true });
      const rows = await c.fetchAll('1:*', { uid: true, flags: true, internalDate: true, source: true }, { uid: true });
      t.deepEqual(rows.map((r) => [r.uid, [...(r.flags ?? [])].filter((f) => f !== '\\Recent').sort(), (r.internalDate as Date).getTime() / 1000]), [
        [1, ['$Label1', '\\Draft', '\\Seen', 'custom'], 1_300_000_000],
        [2, [], 1_300_000_100],
      ]);
      t.true(rows[0]!.source!.equals(Buffer.from(a.toString('latin1').replace(/\n/g, '\r\n'), 'latin1')));

      const rolled = await store.beginSave('Restored/Deep');
      await rolled.save({ flags: [], keywords: [], internalDate: 1, size: a.length }, Readable.from([a]));
      await rolled.rollback();
      t.is(((await c.status('Restored/Deep', { messages: true })) as { messages?: number }).messages, 2);
      await t.throwsAsync(store.beginSave('Missing'), { instanceOf: StorageNotFoundError });
      await store.subscribe(['Restored/Deep']);
      t.true((await store.listSubscriptions()).includes('Restored/Deep'));
    } finally {
      await store.close();
      await c.logout();
    }
  });

  /** What countExisting counts (without the keywords of the copies). */
  const counts = (c: ExistingCopies): { same: number; altered: readonly number[] } => ({ same: c.same, altered: c.altered });

  test('countExisting finds an APPENDed message (LF probe, CRLF server) and not a different one', async (t) => {
    const user = await freshUser();
    const store = await asMaster(user.name);
    try {
      const date = 1_350_000_000;
      const m = message('probe-me', 'body line\nsecond line\n');
      const noId = Buffer.from('From: x@example.org\nSubject: no id\n\nplain\n');
      const tx = await store.beginSave('INBOX');
      await tx.save({ flags: ['\\Seen'], keywords: ['$Forwarded'], internalDate: date, size: m.length }, Readable.from([m]));
      await tx.save({ flags: [], keywords: [], internalDate: date, size: noId.length }, Readable.from([noId]));
      await tx.commit();
      t.deepEqual(counts(await store.countExisting!('INBOX', probeOf(m, date, '<probeme@example.org>'))), { same: 1, altered: [] });
      t.deepEqual((await store.countExisting!('INBOX', probeOf(m, date, '<probeme@example.org>'))).sameKeywords, [['$Forwarded']], 'the keywords of the copy found');
      t.deepEqual(counts(await store.countExisting!('INBOX', probeOf(noId, date, ''))), { same: 1, altered: [] });
      // same Message-ID, different bytes
      const changed = message('probe-me', 'body line\nother line\n');
      t.deepEqual(counts(await store.countExisting!('INBOX', probeOf(changed, date, '<probeme@example.org>'))), { same: 0, altered: [] });
      // same headers, size and INTERNALDATE, other text: another message, not one the server changed
      const other = message('probe-me', 'body line\nsecond lime\n');
      t.deepEqual(counts(await store.countExisting!('INBOX', probeOf(other, date, '<probeme@example.org>'))), { same: 0, altered: [] });
      // a base64 line that decodes to the same bytes ("QR==" and "QQ==" are both "A"): the server's re-encoding
      const b64 = (last: string): Buffer => message('b64-pad', `Content-Transfer-Encoding: base64\n\nAAAA\n${last}\n`);
      const tx2 = await store.beginSave('INBOX');
      await tx2.save({ flags: [], keywords: [], internalDate: date, size: b64('QQ==').length }, Readable.from([b64('QQ==')]));
      const { uids } = await tx2.commit();
      t.deepEqual(counts(await store.countExisting!('INBOX', probeOf(b64('QR=='), date, '<b64pad@example.org>'))), { same: 0, altered: uids });
      t.deepEqual(counts(await store.countExisting!('INBOX', probeOf(b64('QQ=='), date, '<b64pad@example.org>'))), { same: 1, altered: [] });
      t.deepEqual(counts(await store.countExisting!('INBOX', probeOf(b64('Qg=='), date, '<b64pad@example.org>'))), { same: 0, altered: [] }, '"Qg==" is "B": other content');
      // same bytes, different INTERNALDATE
      t.deepEqual(counts(await store.countExisting!('INBOX', probeOf(m, date + 60, '<probeme@example.org>'))), { same: 0, altered: [] });
      t.deepEqual(counts(await store.countExisting!('INBOX', probeOf(Buffer.from('Subject: nope\n\nx\n'), date, ''))), { same: 0, altered: [] });
      t.deepEqual(counts(await store.countExisting!('NoSuchBox', probeOf(m, date, ''))), { same: 0, altered: [] });
      // Many messages of one size and date (an import that stamped one date): narrowed by Message-ID
      // among them before bytes are compared; the answer is the same.
      const twin = (i: number): Buffer => message(`twin-${i}`, `same size ${i}\n`);
      const tx3 = await store.beginSave('INBOX');
      for (let i = 0; i < 8; i++) await tx3.save({ flags: [], keywords: [], internalDate: date + 600, size: twin(i).length }, Readable.from([twin(i)]));
      await tx3.commit();
      t.deepEqual(counts(await store.countExisting!('INBOX', probeOf(twin(5), date + 600, '<twin5@example.org>'))), { same: 1, altered: [] });
      t.deepEqual(counts(await store.countExisting!('INBOX', probeOf(twin(5), date + 600, '<twin9@example.org>'))), { same: 0, altered: [] }, 'a Message-ID none of them has');
    } finally {
      await store.close();
    }
  });

  test('an IMAP client in IDLE on the mailbox sees the restored message (EXISTS)', async (t) => {
    const user = await freshUser();
    const watcher = await userClient(user);
    await watcher.mailboxOpen('INBOX');
    const seen = new Promise<number>((resolve) => watcher.on('exists', (e: { count: number }) => resolve(e.count)));
    const idling = watcher.idle();
    const store = await asMaster(user.name);
    try {
      const m = message('for-idle');
      const tx = await store.beginSave('INBOX');
      await tx.save({ flags: [], keywords: [], internalDate: 1_360_000_000, size: m.length }, Readable.from([m]));
      await tx.commit();
      const count = await Promise.race([seen, new Promise<number>((_, reject) => setTimeout(() => reject(new Error('no EXISTS within 10 s')), 10_000))]);
      t.is(count, 1);
    } finally {
      await store.close();
      await watcher.logout().catch(() => undefined);
      await idling.catch(() => undefined);
    }
  });

  test('NO [OVERQUOTA] becomes QuotaExceededError', async (t) => {
    const user = await freshUser();
    const store = await asMaster(user.name);
    try {
      const big = message('too-big', `${'q'.repeat(70)}\n`.repeat(16000)); // ~1.1 MB > 1 MB quota
      const tx = await store.beginSave('INBOX');
      await tx.save({ flags: [], keywords: [], internalDate: 1_370_000_000, size: big.length }, Readable.from([big]));
      const err = await t.throwsAsync(tx.commit());
      t.is((err as { code?: string }).code, 'QUOTA_EXCEEDED', String(err));
      t.regex(err!.message, /quota/i);
    } finally {
      await store.close();
    }
  });

  test('a MULTIAPPEND batch over quota stores nothing; its messages go again one by one, as many as fit, each once, then QuotaExceededError names how many stay', async (t) => {
    const user = await freshUser();
    const store = await asMaster(user.name);
    const messages = Array.from({ length: 20 }, (_, i) => message(`fill-${i}`, `${'f'.repeat(76)}\n`.repeat(1300))); // ~100 KB each, 2 MB > 1 MB quota
    let err: unknown;
    try {
      const tx = await store.beginSave('INBOX');
      for (const [i, m] of messages.entries()) await tx.save({ flags: ['\\Seen'], keywords: ['Batch'], internalDate: 1_370_000_000 + i, size: m.length }, Readable.from([m]));
      err = await t.throwsAsync(tx.commit());
    } finally {
      await store.close();
    }
    t.is((err as { code?: string }).code, 'QUOTA_EXCEEDED', String(err));
    const c = await userClient(user);
    try {
      await c.mailboxOpen('INBOX', { readOnly: true });
      const ids: string[] = [];
      for await (const m of c.fetch('1:*', { envelope: true, internalDate: true })) ids.push(`${m.envelope?.messageId} ${(m.internalDate as Date).getTime() / 1000}`);
      const kept = (err as { keptBeforeFailure?: number }).keptBeforeFailure;
      t.true(ids.length > 0 && ids.length < 20, `${ids.length} stored`);
      t.is(kept, ids.length, 'keptBeforeFailure is what the server holds');
      t.deepEqual(ids, messages.slice(0, ids.length).map((_, i) => `<fill${i}@example.org> ${1_370_000_000 + i}`), 'the first ones, in order, each once');
    } finally {
      await c.logout();
    }
  });

  test('a wrong master password is an AuthenticationError naming user and master user', async (t) => {
    const user = await freshUser();
    const err = await t.throwsAsync(openImapStore({ url: url(), user: user.name, masterUser: MASTER, password: 'wrong', tls: false }), { instanceOf: AuthenticationError });
    t.regex(err!.message, new RegExp(`${user.name}.*${MASTER}`));
    t.is(err!.exitCode, 77);
  });

  test('connection refused is a ServerUnavailableError with a retry hint', async (t) => {
    const port = await freePort();
    const err = await t.throwsAsync(openImapStore({ url: `imap://127.0.0.1:${port}`, user: 'x', password: 'y', tls: false, connectTimeoutMs: 5000 }), { instanceOf: ServerUnavailableError });
    t.is(err!.exitCode, 75);
    t.regex(err!.hint ?? '', /nothing is duplicated/);
  });

  test('the server stopped in the middle of a transaction gives ServerUnavailableError', async (t) => {
    const own = await startDovecot();
    try {
      const name = 'stopme';
      await own.addUser(name);
      const store = await openImapStore({ url: `imap://127.0.0.1:${own.port}`, user: name, masterUser: MASTER, password: own.masterPassword, tls: false });
      const m = message('lost');
      const tx = await store.beginSave('INBOX');
      await tx.save({ flags: [], keywords: [], internalDate: 1_380_000_000, size: m.length }, Readable.from([m]));
      await own.stop();
      const err = await t.throwsAsync(tx.commit(), { instanceOf: ServerUnavailableError });
      t.regex(err!.hint ?? '', /run the same command again/);
      await store.close();
    } finally {
      await own.stop().catch(() => undefined);
    }
  });
}
