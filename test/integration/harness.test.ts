/**
 * Self-test of the test harness: a private Dovecot starts, takes users of every profile, mail arrives
 * through IMAP APPEND and LMTP, the fingerprint reports exactly what was put in, and stop() frees the port.
 */
import { readdir } from 'node:fs/promises';
import test from 'ava';
import { canConnect, dovecotAvailable, requireDovecot, dovecotForFile, startDovecot, type DovecotInstance, type DovecotProfile } from '../helpers/dovecot.js';
import { fingerprintUser, sha256, storedMessage, toCrlf } from '../helpers/fingerprint.js';
import { encodeLmtpData } from '../helpers/lmtp-client.js';
import { AWKWARD_MAILBOXES, appendMessage, connectImap, createMailboxes, deliverLmtp, expungeUids, generateMessage, generateMessages, messageIdOf, storeFlags } from '../helpers/populate.js';

test('encodeLmtpData dot-stuffs, normalises to CRLF and terminates', (t) => {
  t.is(encodeLmtpData(Buffer.from('a\n.b\r\n..c\nlast')).toString(), 'a\r\n..b\r\n...c\r\nlast\r\n.\r\n');
  t.is(encodeLmtpData(Buffer.from('x\n')).toString(), 'x\r\n.\r\n');
});

test('generated messages are deterministic and varied', (t) => {
  t.deepEqual(generateMessage(7, 3).raw, generateMessage(7, 3).raw);
  t.notDeepEqual(generateMessage(7, 3).raw, generateMessage(8, 3).raw);
  const shapes = new Set([...generateMessages(1, 16)].map((m) => m.shape));
  t.true(shapes.size >= 8);
  const ids = [...generateMessages(1, 16)].map((m) => messageIdOf(m.raw));
  t.is(new Set(ids).size, 16);
  t.false(generateMessage(1, 0, 'no-trailing-newline').raw.toString().endsWith('\n'));
  t.true(generateMessage(1, 0, 'crlf').raw.includes('\r\n'));
});

if (requireDovecot(test)) {
  let dv!: DovecotInstance;
  dovecotForFile(test, (started) => (dv = started));

  test('dovecotAvailable reports the version', (t) => {
    t.regex(dovecotAvailable().why, /^dovecot 2\.3\./);
  });

  const profiles: DovecotProfile[] = ['maildir', 'maildir-fs', 'sdbox', 'mdbox'];
  for (const profile of profiles) {
    test(`${profile}: APPEND, STORE, EXPUNGE and LMTP show up in the fingerprint`, async (t) => {
      const user = await dv.addUser(`h-${profile}`, profile);
      const client = await connectImap(dv, user);
      const date = new Date('2024-01-05T10:00:00Z');
      const appended = new Map<string, { raw: Buffer; uid: number }>();
      try {
        await createMailboxes(client, AWKWARD_MAILBOXES);
        let i = 0;
        for (const box of ['INBOX', ...AWKWARD_MAILBOXES]) {
          const m = generateMessage(11, i++);
          const uid = await appendMessage(client, box, m.raw, { flags: ['\\Seen', 'Project-X'], internalDate: date });
          appended.set(box, { raw: m.raw, uid });
        }
        const extra = await appendMessage(client, 'R&D', generateMessage(11, 99).raw, { internalDate: date });
        await storeFlags(client, 'R&D', [appended.get('R&D')!.uid], { add: ['\\Flagged', '$Label1'], remove: ['\\Seen'] });
        await expungeUids(client, 'R&D', [extra]);
      } finally {
        await client.logout();
      }
      const lmtp = [...generateMessages(12, 5)];
      t.is(await deliverLmtp(dv.lmtpSocket, user.name, lmtp.map((m) => m.raw)), 5);

      const fp = await fingerprintUser(dv, user.name);
      const names = fp.mailboxes.map((b) => b.name);
      for (const box of ['INBOX', ...AWKWARD_MAILBOXES]) t.true(names.includes(box), `${box} missing in ${names.join(', ')}`);
      for (const box of AWKWARD_MAILBOXES) t.true(fp.mailboxes.find((b) => b.name === box)!.subscribed, `${box} subscribed`);
      for (const b of fp.mailboxes.filter((x) => x.selectable)) {
        t.regex(b.guid ?? '', /^[0-9a-f]{32}$/);
        t.true((b.uidValidity ?? 0) > 0);
      }
      const archive = fp.mailboxes.find((b) => b.name === 'Archive/2025')!;
      t.is(archive.messages.length, 1);
      const am = archive.messages[0]!;
      t.is(am.uid, appended.get('Archive/2025')!.uid);
      t.deepEqual(am.flags, ['\\Seen']);
      t.deepEqual(am.keywords, ['Project-X']);
      t.is(am.internalDate, date.getTime() / 1000);
      t.is(am.sha256, sha256(toCrlf(appended.get('Archive/2025')!.raw)));
      t.is(am.size, toCrlf(appended.get('Archive/2025')!.raw).length);
      t.true(am.guid.length > 0);

      const rd = fp.mailboxes.find((b) => b.name === 'R&D')!;
      t.deepEqual(rd.messages.map((m) => [m.flags, m.keywords]), [[['\\Flagged'], ['$Label1', 'Project-X']]]);
      t.is(rd.uidNext, appended.get('R&D')!.uid + 2, 'the expunged UID stays used');

      const inbox = fp.mailboxes.find((b) => b.name === 'INBOX')!;
      t.is(inbox.messages.length, 6);
      // Stored bytes: LF line ends for an APPENDed LF message.
      const stored = await storedMessage(dv, user.name, 'INBOX', appended.get('INBOX')!.uid);
      t.deepEqual(stored, appended.get('INBOX')!.raw);
    });
  }

  test('LMTP delivers 200 messages, none lost, unique UIDs', async (t) => {
    const user = await dv.addUser('h-bulk');
    const msgs = [...generateMessages(21, 200)];
    const started = Date.now();
    t.is(await deliverLmtp(dv.lmtpSocket, user.name, msgs.map((m) => m.raw)), 200);
    t.log(`200 LMTP deliveries in ${Date.now() - started} ms`);
    const client = await connectImap(dv, user);
    try {
      await client.mailboxOpen('INBOX', { readOnly: true });
      const ids = new Set<string>();
      const uids = new Set<number>();
      for await (const m of client.fetch('1:*', { uid: true, headers: ['message-id'] }, { uid: true })) {
        uids.add(m.uid);
        const id = /<([^>]+)>/.exec(m.headers?.toString() ?? '')?.[1];
        if (id) ids.add(id);
      }
      t.is(uids.size, 200);
      t.deepEqual([...ids].sort(), msgs.map((m) => m.messageId).sort());
    } finally {
      await client.logout();
    }
  });

  test('a message without a trailing newline and a CRLF message round-trip byte-exactly over IMAP', async (t) => {
    const user = await dv.addUser('h-edge');
    const client = await connectImap(dv, user, { asMaster: false });
    const nonl = generateMessage(5, 1, 'no-trailing-newline').raw;
    const crlf = generateMessage(5, 2, 'crlf').raw;
    let u1: number;
    let u2: number;
    try {
      u1 = await appendMessage(client, 'INBOX', nonl);
      u2 = await appendMessage(client, 'INBOX', crlf);
    } finally {
      await client.logout();
    }
    const fp = await fingerprintUser(dv, user.name);
    const inbox = fp.mailboxes.find((b) => b.name === 'INBOX')!;
    t.is(inbox.messages.find((m) => m.uid === u1)!.sha256, sha256(toCrlf(nonl)));
    t.is(inbox.messages.find((m) => m.uid === u2)!.sha256, sha256(crlf));
    t.deepEqual(await storedMessage(dv, user.name, 'INBOX', u1), nonl);
  });

  test('mdbox and sdbox users store repeated attachments once in mail_attachment_dir (SIS)', async (t) => {
    const a = await dv.addUser('h-sis-a', 'mdbox');
    const b = await dv.addUser('h-sis-b', 'sdbox');
    const msgs = [0, 1, 2].map((i) => generateMessage(31, i * 5, 'mixed-attachment').raw);
    await deliverLmtp(dv.lmtpSocket, [a.name, b.name], msgs);
    const files = await listFiles(dv.attachmentDir);
    t.true(files.length > 0, 'attachments were externalised');
    // Each distinct attachment body is stored as one hash file (plus per-message hard links).
    const hashes = new Set(files.map((f) => f.split('/').pop()!.split('-')[0]!));
    t.true(hashes.size <= 6, `at most the 6 distinct pool attachments, got ${hashes.size}`);
    const fa = await fingerprintUser(dv, a.name);
    const fb = await fingerprintUser(dv, b.name);
    t.deepEqual(
      fa.mailboxes[0]!.messages.map((m) => m.sha256),
      fb.mailboxes[0]!.messages.map((m) => m.sha256),
    );
  });

  test('stop() closes the port; a second instance runs beside the first', async (t) => {
    const other = await startDovecot();
    let stopped = false;
    t.teardown(async () => {
      if (!stopped) await other.stop(); // when the test fails before its own stop()
    });
    t.not(other.imapPort, dv.imapPort);
    t.not(other.dir, dv.dir);
    const u = await other.addUser('h-other');
    await deliverLmtp(other.lmtpSocket, u.name, [generateMessage(1, 1).raw]);
    await other.stop();
    stopped = true;
    t.false(await canConnect(other.imapPort));
  });
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(`${e.parentPath ?? e.path}/${e.name}`);
  return out;
}

