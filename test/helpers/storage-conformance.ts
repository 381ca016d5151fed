/**
 * The contract of src/storage/types.ts as tests: every writable driver runs this suite through a
 * factory (`storageConformance('maildir', factory)`), and so does the memory driver, which keeps the
 * suite itself honest and fast.
 */
import test, { type ExecutionContext } from 'ava';
import { Readable } from 'node:stream';
import type { MailStore, MessageInfo, SaveMetadata } from '../../src/storage/types.js';
import { IntegrityError, MailvaultError } from '../../src/core/errors.js';

export interface ConformanceFixture {
  /** A fresh, empty store for one user. */
  store: MailStore;
  /** Opens the same store again (a second, independent handle: another process's view). */
  reopen(): Promise<MailStore>;
}

const T = 1_764_000_000;
const body = (n: number): Buffer => Buffer.from(`From: a@example.org\nSubject: message ${n}\nMessage-ID: <c${n}@example.org>\n\nline one ${n}\n${'y'.repeat(n * 11)}\n`);

function meta(n: number, extra: Partial<SaveMetadata> = {}): SaveMetadata {
  return { flags: [], keywords: [], internalDate: T + n, size: body(n).length, ...extra };
}

async function all(store: MailStore, box: string): Promise<{ info: MessageInfo; bytes: Buffer }[]> {
  const reader = await store.openMailbox(box);
  const out = [];
  try {
    for await (const m of reader.messages()) {
      const chunks: Buffer[] = [];
      for await (const c of await reader.openMessage(m)) chunks.push(c as Buffer);
      const bytes = Buffer.concat(chunks);
      // readMessage, where the driver has it, gives the same bytes or declines (null).
      const whole = reader.readMessage ? await reader.readMessage(m) : null;
      if (whole !== null && !whole.equals(bytes)) throw new Error(`${box} UID ${m.uid}: readMessage differs from openMessage`);
      out.push({ info: m, bytes });
    }
  } finally {
    await reader.close();
  }
  return out;
}

/** `factory` gets the running test's `t` (e.g. for a temp dir removed when that test ends). */
export function storageConformance(name: string, factory: (t: ExecutionContext) => Promise<ConformanceFixture>): void {
  const t0 = (title: string): string => `${name} conformance › ${title}`;

  test(t0('a created mailbox keeps the GUID and UIDVALIDITY it was given, nested and non-ASCII names included'), async (t) => {
    const { store, reopen } = await factory(t);
    for (const [i, n] of ['INBOX', 'Archive/2025', 'Entwürfe/Sub', 'R&D', 'Ünïcødé ✓'].entries()) {
      await store.createMailbox({ name: n, guid: `${(i + 1).toString(16).padStart(2, '0')}${'5a'.repeat(15)}`, uidValidity: 1000 + i });
    }
    const again = await reopen();
    const listed = await again.listMailboxes();
    for (const [i, n] of ['INBOX', 'Archive/2025', 'Entwürfe/Sub', 'R&D', 'Ünïcødé ✓'].entries()) {
      const box = listed.find((b) => b.name === n);
      t.truthy(box, `mailbox ${n} is listed: got ${listed.map((b) => b.name).join(', ')}`);
      t.is(box?.uidValidity, 1000 + i);
      t.is(box?.guid, `${(i + 1).toString(16).padStart(2, '0')}${'5a'.repeat(15)}`);
      t.is(box?.uidNext, 1);
    }
    const names = listed.map((b) => b.name);
    t.deepEqual(names, [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))), 'sorted by UTF-8 bytes');
  });

  test(t0('saved messages appear after commit with the chosen UID, GUID, flags, keywords, INTERNALDATE and bytes'), async (t) => {
    const { store, reopen } = await factory(t);
    await store.createMailbox({ name: 'INBOX', uidValidity: 7 });
    const tx = await store.beginSave('INBOX');
    await tx.save(meta(1, { uid: 3, guid: 'g-three', flags: ['\\Seen', '\\Flagged'], keywords: ['$Label1', 'Work'] }), Readable.from([body(1)]));
    await tx.save(meta(2, { uid: 10, guid: 'g-ten', flags: ['\\Draft'] }), Readable.from([body(2)]));
    const other = await reopen();
    t.is((await all(other, 'INBOX')).length, 0, 'nothing visible before commit');
    const result = await tx.commit();
    t.deepEqual(result.uids, [3, 10]);
    const got = await all(await reopen(), 'INBOX');
    t.deepEqual(
      got.map((m) => ({ uid: m.info.uid, guid: m.info.guid, flags: m.info.flags, keywords: m.info.keywords, date: m.info.internalDate, size: m.info.size })),
      [
        { uid: 3, guid: 'g-three', flags: ['\\Flagged', '\\Seen'], keywords: ['$Label1', 'Work'], date: T + 1, size: body(1).length },
        { uid: 10, guid: 'g-ten', flags: ['\\Draft'], keywords: [], date: T + 2, size: body(2).length },
      ],
    );
    t.deepEqual(got[0]!.bytes, body(1));
    t.deepEqual(got[1]!.bytes, body(2));
    t.is((await (await reopen()).getMailbox('INBOX'))?.uidNext, 11);
  });

  test(t0('a body given as bytes is saved like a stream; the bytes are used during save() only; a wrong size is an IntegrityError'), async (t) => {
    const { store, reopen } = await factory(t);
    await store.createMailbox({ name: 'INBOX', uidValidity: 7 });
    const tx = await store.beginSave('INBOX');
    // A view at an offset into a larger buffer, as a reader's spool hands out.
    const backing = Buffer.concat([Buffer.from('xxxxxxx'), body(1), Buffer.from('yyy')]);
    const lent = backing.subarray(7, 7 + body(1).length);
    await tx.save(meta(1, { uid: 4, guid: 'g-bytes' }), lent);
    lent.fill(0x2a); // the caller reuses its buffer after save() returned
    await t.throwsAsync(tx.save(meta(2, { size: body(2).length + 1 }), new Uint8Array(body(2))), { instanceOf: IntegrityError });
    await tx.save(meta(2, { uid: 5 }), new Uint8Array(body(2)));
    t.deepEqual((await tx.commit()).uids, [4, 5]);
    const got = await all(await reopen(), 'INBOX');
    t.deepEqual(got.map((m) => m.info.uid), [4, 5]);
    t.deepEqual(got[0]!.bytes, body(1));
    t.deepEqual(got[1]!.bytes, body(2));
    t.is(got[0]!.info.size, body(1).length);
  });

  test(t0('a requested UID below UIDNEXT is not reused: the message gets a new one'), async (t) => {
    const { store, reopen } = await factory(t);
    await store.createMailbox({ name: 'INBOX', uidValidity: 7 });
    let tx = await store.beginSave('INBOX');
    await tx.save(meta(1, { uid: 5 }), Readable.from([body(1)]));
    await tx.commit();
    tx = await store.beginSave('INBOX');
    await tx.save(meta(2, { uid: 2 }), Readable.from([body(2)]));
    const r = await tx.commit();
    t.true(r.uids[0]! >= 6, `got UID ${r.uids[0]}`);
    const uids = (await all(await reopen(), 'INBOX')).map((m) => m.info.uid);
    t.deepEqual(uids, [5, r.uids[0]!]);
  });

  test(t0('rollback leaves nothing, and a consumed transaction refuses further use'), async (t) => {
    const { store, reopen } = await factory(t);
    await store.createMailbox({ name: 'INBOX' });
    const tx = await store.beginSave('INBOX');
    await tx.save(meta(1), Readable.from([body(1)]));
    await tx.rollback();
    t.is((await all(await reopen(), 'INBOX')).length, 0);
    await t.throwsAsync(tx.commit());
    await t.throwsAsync(tx.save(meta(2), Readable.from([body(2)])));
  });

  test(t0('a body shorter or longer than declared is an IntegrityError and is not saved'), async (t) => {
    const { store, reopen } = await factory(t);
    await store.createMailbox({ name: 'INBOX' });
    const tx = await store.beginSave('INBOX');
    await t.throwsAsync(tx.save(meta(1, { size: body(1).length + 5 }), Readable.from([body(1)])), { instanceOf: IntegrityError });
    await t.throwsAsync(tx.save(meta(1, { size: body(1).length - 5 }), Readable.from([body(1)])), { instanceOf: IntegrityError });
    await tx.save(meta(2), Readable.from([body(2)]));
    await tx.commit();
    const got = await all(await reopen(), 'INBOX');
    t.is(got.length, 1);
    t.deepEqual(got[0]!.bytes, body(2));
  });

  test(t0('an empty mailbox can take a new identity; UIDNEXT can be raised, never lowered'), async (t) => {
    const { store, reopen } = await factory(t);
    await store.createMailbox({ name: 'INBOX', uidValidity: 1 });
    if (store.resetMailboxIdentity) {
      await store.resetMailboxIdentity('INBOX', { uidValidity: 4242, guid: 'c0ffee'.padEnd(32, '0') });
      const box = await (await reopen()).getMailbox('INBOX');
      t.is(box?.uidValidity, 4242);
      t.is(box?.guid, 'c0ffee'.padEnd(32, '0'));
    }
    const tx = await store.beginSave('INBOX');
    await tx.save(meta(1, { uid: 2 }), Readable.from([body(1)]));
    await tx.commit();
    t.deepEqual((await all(await reopen(), 'INBOX')).map((m) => m.info.uid), [2]);
    if (store.resetMailboxIdentity) { const e = await t.throwsAsync(store.resetMailboxIdentity('INBOX', { uidValidity: 9 })); t.true(e instanceof MailvaultError, `got ${e?.constructor.name}`); }
    if (store.raiseUidNext) {
      await store.raiseUidNext('INBOX', 20);
      t.is((await (await reopen()).getMailbox('INBOX'))?.uidNext, 20);
      await store.raiseUidNext('INBOX', 4);
      t.is((await (await reopen()).getMailbox('INBOX'))?.uidNext, 20);
      const tx2 = await store.beginSave('INBOX');
      await tx2.save(meta(2), Readable.from([body(2)]));
      t.deepEqual((await tx2.commit()).uids, [20]);
    }
  });

  test(t0('subscriptions are added, kept and listed sorted; GUIDs are listed per message'), async (t) => {
    const { store, reopen } = await factory(t);
    await store.createMailbox({ name: 'INBOX' });
    await store.createMailbox({ name: 'Work/Projects' });
    await store.subscribe(['Work/Projects', 'Entwürfe']);
    await store.subscribe(['INBOX', 'Work/Projects']);
    t.deepEqual(await (await reopen()).listSubscriptions(), ['Entwürfe', 'INBOX', 'Work/Projects']);
    const tx = await store.beginSave('INBOX');
    await tx.save(meta(1, { guid: 'guid-one' }), Readable.from([body(1)]));
    await tx.commit();
    const guids = [];
    for await (const g of (await reopen()).listMessageGuids('INBOX')) guids.push(g.guid);
    t.deepEqual(guids, ['guid-one']);
  });
}
