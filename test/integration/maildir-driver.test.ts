/**
 * The Maildir driver against a real, running Dovecot 2.3 (issue "Foundation"):
 * - what Dovecot wrote (LMTP, IMAP APPEND with INTERNALDATE, STORE, EXPUNGE; Maildir++ and LAYOUT=fs:UTF-8;
 *   nested and non-ASCII folders; keywords; 8-bit headers) the driver reads with exactly Dovecot's UID,
 *   GUID, flags, keywords, INTERNALDATE, UIDVALIDITY, UIDNEXT, mailbox GUID and bytes;
 * - what the driver commits while Dovecot runs, Dovecot serves with the driver's UIDs, flags, keywords,
 *   INTERNALDATE, GUIDs and mailbox identity, byte-identical;
 * - 500 driver saves racing 500 LMTP deliveries into one INBOX lose nothing and reuse no UID;
 * - a lock held by a live process longer than lockTimeoutMs gives StorageLockTimeoutError.
 *
 * Bytes are compared two ways: the driver's bytes must equal `doveadm fetch text` (the stored bytes, LF),
 * and their LF->CRLF normalisation must hash like BODY[] as IMAP serves it.
 */
import { randomBytes } from 'node:crypto';
import { writeFile, unlink, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { StorageLockTimeoutError } from '../../src/core/errors.js';
import { parseLocation } from '../../src/storage/location.js';
import { openMaildirStore } from '../../src/storage/maildir/index.js';
import type { MailStore, SystemFlag } from '../../src/storage/types.js';
import { requireDovecot, dovecotForFile, type DovecotInstance, type DovecotProfile, type DovecotUser } from '../helpers/dovecot.js';
import { describeDifference, fingerprintUser, sha256, storedMessage, toCrlf, type MailboxFingerprint, type UserFingerprint } from '../helpers/fingerprint.js';
import { populateRealistic, LmtpClient, connectImap, createMailboxes, deliverLmtp, generateMessage, generateMessages, messageIdOf } from '../helpers/populate.js';

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(chunks);
}

function openStore(user: DovecotUser, options: { lockTimeoutMs?: number } = {}): Promise<MailStore> {
  return openMaildirStore(parseLocation(user.mailLocation, { user: user.name, home: user.home }), user.name, options);
}

/** What the driver reports, in the fingerprint's shape; also returns the stored bytes per mailbox/uid. */
async function driverFingerprint(user: DovecotUser): Promise<{ fp: UserFingerprint; bytes: Map<string, Buffer> }> {
  const store = await openStore(user);
  const bytes = new Map<string, Buffer>();
  try {
    const subscribed = new Set(await store.listSubscriptions());
    const mailboxes: MailboxFingerprint[] = [];
    for (const info of await store.listMailboxes()) {
      if (!info.selectable) {
        mailboxes.push({ name: info.name, selectable: false, subscribed: subscribed.has(info.name), uidValidity: null, uidNext: null, guid: null, messages: [] });
        continue;
      }
      const reader = await store.openMailbox(info.name);
      const messages: MailboxFingerprint['messages'] = [];
      try {
        for await (const m of reader.messages()) {
          const body = await readAll(await reader.openMessage(m));
          if (body.length !== m.size) throw new Error(`${info.name} UID ${m.uid}: driver announced ${m.size} bytes, gave ${body.length}`);
          bytes.set(`${info.name}\0${m.uid}`, body);
          const served = toCrlf(body);
          messages.push({ uid: m.uid, guid: m.guid ?? '', flags: [...m.flags].sort(), keywords: [...m.keywords], internalDate: m.internalDate, size: served.length, sha256: sha256(served) });
        }
      } finally {
        await reader.close();
      }
      mailboxes.push({ name: info.name, selectable: true, subscribed: subscribed.has(info.name), uidValidity: info.uidValidity, uidNext: info.uidNext, guid: info.guid, messages });
    }
    mailboxes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { fp: { user: user.name, mailboxes }, bytes };
  } finally {
    await store.close();
  }
}

function assertSameState(t: ExecutionContext, got: UserFingerprint, want: UserFingerprint, what: string): void {
  const diff = describeDifference(got, want);
  if (diff.length) t.log(`${what}: driver (got) vs Dovecot (want):\n  ${diff.join('\n  ')}`);
  t.deepEqual(got, want, what);
}

if (requireDovecot(test)) {
  let dv!: DovecotInstance;
  dovecotForFile(test, (started) => (dv = started));

  for (const profile of ['maildir', 'maildir-fs'] as DovecotProfile[]) {
    test(`${profile}: the driver reads what Dovecot wrote, exactly as Dovecot reports it (2 users)`, async (t) => {
      const users = [await dv.addUser(`r1-${profile}`, profile), await dv.addUser(`r2-${profile}`, profile)];
      await Promise.all(users.map((u, n) => populateRealistic(dv, u, 100 + n * 10)));
      for (const user of users) {
        const want = await fingerprintUser(dv, user.name);
        const { fp: got, bytes } = await driverFingerprint(user);
        assertSameState(t, got, want, `${user.name} (${profile})`);
        t.true(want.mailboxes.filter((b) => b.selectable).length >= 6);
        t.true(want.mailboxes.reduce((n, b) => n + b.messages.length, 0) >= 25);
        // Stored bytes: what doveadm fetch text prints, byte for byte.
        for (const box of want.mailboxes.filter((b) => b.selectable)) {
          for (const m of box.messages) {
            const stored = await storedMessage(dv, user.name, box.name, m.uid);
            const mine = bytes.get(`${box.name}\0${m.uid}`);
            t.true(mine !== undefined && stored.equals(mine), `${user.name} ${box.name} UID ${m.uid}: driver bytes differ from doveadm fetch text`);
          }
        }
      }
    });
  }

  test('messages the driver commits while Dovecot runs are served with the driver-chosen identity', async (t) => {
    const user = await dv.addUser('w-maildir', 'maildir');
    // Dovecot creates the store and some history first.
    await deliverLmtp(dv.lmtpSocket, user.name, [...generateMessages(300, 3)].map((m) => m.raw));
    const client = await connectImap(dv, user);
    try {
      await createMailboxes(client, ['Archive/2025']);
    } finally {
      await client.logout();
    }
    const before = await fingerprintUser(dv, user.name);
    const inboxBefore = before.mailboxes.find((b) => b.name === 'INBOX')!;

    const newBox = { name: 'Restored/Ünïcødé ✓', guid: randomBytes(16).toString('hex'), uidValidity: 1_600_000_123 };
    type Planned = { box: string; uid: number; guid: string; flags: SystemFlag[]; keywords: string[]; internalDate: number; raw: Buffer };
    const planned: Planned[] = [];
    const plan = (box: string, uid: number, i: number, flags: SystemFlag[], keywords: string[]): void => {
      const raw = generateMessage(301, i).raw;
      planned.push({ box, uid, guid: randomBytes(16).toString('hex'), flags, keywords, internalDate: 1_500_000_000 + i * 86_401, raw });
    };
    plan(newBox.name, 5, 0, ['\\Seen'], []);
    plan(newBox.name, 7, 1, ['\\Answered', '\\Flagged'], ['$Label1', 'Restored']);
    plan(newBox.name, 100, 2, [], []);
    plan(newBox.name, 101, 3, ['\\Deleted', '\\Draft', '\\Seen'], ['Zeta']);
    plan('INBOX', inboxBefore.uidNext! + 10, 4, ['\\Seen'], ['Imported']);
    plan('INBOX', inboxBefore.uidNext! + 11, 5, [], []);
    plan('Archive/2025', 42, 6, ['\\Flagged'], ['Project-X']);

    const store = await openStore(user);
    try {
      const created = await store.createMailbox(newBox);
      t.is(created.guid, newBox.guid);
      t.is(created.uidValidity, newBox.uidValidity);
      for (const box of [newBox.name, 'INBOX', 'Archive/2025']) {
        const tx = await store.beginSave(box);
        for (const p of planned.filter((x) => x.box === box)) {
          await tx.save({ uid: p.uid, guid: p.guid, flags: p.flags, keywords: p.keywords, internalDate: p.internalDate, size: p.raw.length }, Readable.from([p.raw]));
        }
        const result = await tx.commit();
        t.deepEqual(result.uids, planned.filter((x) => x.box === box).map((x) => x.uid), `${box}: UIDs as requested`);
      }
      await store.subscribe([newBox.name]);
    } finally {
      await store.close();
    }

    const after = await fingerprintUser(dv, user.name);
    const served = after.mailboxes.find((b) => b.name === newBox.name);
    t.truthy(served, `Dovecot lists the new mailbox (got ${after.mailboxes.map((b) => b.name).join(', ')})`);
    t.is(served?.guid, newBox.guid);
    t.is(served?.uidValidity, newBox.uidValidity);
    t.true(served?.subscribed);
    for (const p of planned) {
      const box = after.mailboxes.find((b) => b.name === p.box)!;
      const m = box.messages.find((x) => x.uid === p.uid);
      if (!m) {
        t.fail(`${p.box}: UID ${p.uid} not served; served UIDs ${box.messages.map((x) => x.uid).join(',')}`);
        continue;
      }
      t.deepEqual(
        { guid: m.guid, flags: m.flags, keywords: m.keywords, internalDate: m.internalDate, sha256: m.sha256, size: m.size },
        { guid: p.guid, flags: [...p.flags].sort(), keywords: [...p.keywords].sort(), internalDate: p.internalDate, sha256: sha256(toCrlf(p.raw)), size: toCrlf(p.raw).length },
        `${p.box} UID ${p.uid}`,
      );
      t.deepEqual(await storedMessage(dv, user.name, p.box, p.uid), p.raw, `${p.box} UID ${p.uid}: stored bytes`);
    }
    // Dovecot's own messages are untouched, and Dovecot continues after the driver's UIDs.
    const inboxAfter = after.mailboxes.find((b) => b.name === 'INBOX')!;
    t.deepEqual(inboxAfter.messages.filter((m) => m.uid < inboxBefore.uidNext!), inboxBefore.messages);
    await deliverLmtp(dv.lmtpSocket, user.name, [generateMessage(302, 0).raw]);
    const last = (await fingerprintUser(dv, user.name)).mailboxes.find((b) => b.name === 'INBOX')!;
    t.is(last.messages.at(-1)!.uid, inboxBefore.uidNext! + 12);
  });

  test('500 driver saves race 500 LMTP deliveries into one INBOX: 1000 messages, no UID twice, nothing lost', async (t) => {
    const user = await dv.addUser('c-maildir', 'maildir');
    await deliverLmtp(dv.lmtpSocket, user.name, [generateMessage(400, 9999).raw]); // Dovecot creates INBOX
    const lmtpMsgs = [...generateMessages(401, 500)];
    const driverMsgs = [...generateMessages(402, 500)];
    const driverUids = new Map<number, string>();
    const started = Date.now();
    const viaDriver = (async () => {
      const store = await openStore(user);
      try {
        for (let batch = 0; batch < 50; batch++) {
          const tx = await store.beginSave('INBOX');
          const ids: string[] = [];
          for (const m of driverMsgs.slice(batch * 10, batch * 10 + 10)) {
            await tx.save({ flags: batch % 2 ? ['\\Seen'] : [], keywords: batch % 3 ? [] : ['Batch'], internalDate: 1_700_000_000 + batch, size: m.raw.length }, Readable.from([m.raw]));
            ids.push(m.messageId);
          }
          const r = await tx.commit();
          r.uids.forEach((uid, k) => driverUids.set(uid, ids[k]!));
        }
      } finally {
        await store.close();
      }
    })();
    const viaLmtp = (async () => {
      const client = await LmtpClient.connect(dv.lmtpSocket);
      try {
        for (const m of lmtpMsgs) await client.deliver(m.raw, [user.name]);
      } finally {
        await client.quit();
      }
    })();
    await Promise.all([viaDriver, viaLmtp]);
    t.log(`500 + 500 concurrent saves in ${Date.now() - started} ms`);
    t.is(driverUids.size, 500, 'the driver reported 500 distinct UIDs');

    const client = await connectImap(dv, user);
    const byUid = new Map<number, string>();
    const seen = new Map<string, number>();
    try {
      const box = await client.mailboxOpen('INBOX', { readOnly: true });
      t.is(box.exists, 1001);
      for await (const m of client.fetch('1:*', { uid: true, headers: ['message-id'] }, { uid: true })) {
        const id = messageIdOf(m.headers ?? Buffer.alloc(0)) ?? '';
        byUid.set(m.uid, id);
        seen.set(id, (seen.get(id) ?? 0) + 1);
      }
    } finally {
      await client.logout();
    }
    t.is(byUid.size, 1001);
    const missing = [...lmtpMsgs, ...driverMsgs].filter((m) => seen.get(m.messageId) !== 1).map((m) => `${m.messageId} x${seen.get(m.messageId) ?? 0}`);
    t.deepEqual(missing.slice(0, 10), [], `every Message-ID exactly once (${missing.length} wrong)`);
    const renumbered = [...driverUids].filter(([uid, id]) => byUid.get(uid) !== id);
    t.deepEqual(renumbered.slice(0, 10), [], 'Dovecot serves each driver message under the UID the driver committed');
    // And the driver agrees with Dovecot on the final state.
    const store = await openStore(user);
    try {
      const reader = await store.openMailbox('INBOX');
      const uids: number[] = [];
      for await (const m of reader.messages()) uids.push(m.uid);
      await reader.close();
      t.deepEqual(uids, [...byUid.keys()].sort((a, b) => a - b));
    } finally {
      await store.close();
    }
  });

  test('a uidlist lock held by a live process longer than lockTimeoutMs gives StorageLockTimeoutError', async (t) => {
    const user = await dv.addUser('l-maildir', 'maildir');
    await deliverLmtp(dv.lmtpSocket, user.name, [generateMessage(500, 0).raw]);
    const lockPath = path.join(user.home, 'Maildir', 'dovecot-uidlist.lock');
    await writeFile(lockPath, `${process.pid}:${os.hostname()}`, { flag: 'wx' });
    const store = await openStore(user, { lockTimeoutMs: 700 });
    const started = Date.now();
    try {
      const raw = generateMessage(500, 1).raw;
      const err = await t.throwsAsync(
        (async () => {
          const tx = await store.beginSave('INBOX');
          try {
            await tx.save({ flags: [], keywords: [], internalDate: 1_700_000_000, size: raw.length }, Readable.from([raw]));
            await tx.commit();
          } catch (e) {
            await tx.rollback().catch(() => undefined);
            throw e;
          }
        })(),
        { instanceOf: StorageLockTimeoutError },
      );
      t.true(Date.now() - started >= 600, `waited ${Date.now() - started} ms`);
      t.regex(err?.message ?? '', /lock/i);
      t.is((await stat(lockPath)).isFile(), true, 'the live lock was not stolen');
    } finally {
      await unlink(lockPath).catch(() => undefined);
      await store.close();
    }
    // Nothing became visible.
    const fp = await fingerprintUser(dv, user.name);
    t.is(fp.mailboxes.find((b) => b.name === 'INBOX')!.messages.length, 1);
  });
}
