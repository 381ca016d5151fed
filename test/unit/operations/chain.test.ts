import test from 'ava';
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { DumpWriter } from '../../../src/archive/writer.js';
import { readDump } from '../../../src/archive/reader.js';
import { ArchiveChainError } from '../../../src/core/errors.js';
import { backup, defaultBackupOptions } from '../../../src/operations/backup.js';
import { chainAt, readChainLinks, restoreChain } from '../../../src/operations/chain.js';
import { CursorRecorder, type CursorState } from '../../../src/operations/cursors.js';
import { IncrementalPlanner } from '../../../src/operations/incremental.js';
import { defaultRestoreOptions } from '../../../src/operations/restore.js';
import { MemoryStore, createMemoryStoreData, type MemoryStoreData } from '../../../src/storage/memory/index.js';
import type { MessageSource, SystemFlag } from '../../../src/storage/types.js';
import { tempDir } from '../../helpers/temp.js';

const body = (n: number): Buffer => Buffer.from(`Subject: m${n}\nMessage-ID: <m${n}@x>\n\nbody ${n}\n`);

async function addMessages(data: MemoryStoreData, box: string, uids: number[]): Promise<void> {
  const store = new MemoryStore('alice', data);
  const tx = await store.beginSave(box);
  for (const uid of uids) await tx.save({ uid, guid: `g-${box}-${uid}-${randomUUID().slice(0, 8)}`, flags: [], keywords: [], internalDate: 1_700_000_000 + uid, size: body(uid).length }, Readable.from([body(uid)]));
  await tx.commit();
}

async function populate(): Promise<MemoryStoreData> {
  const data = createMemoryStoreData();
  const store = new MemoryStore('alice', data);
  for (const [name, v] of [['INBOX', 10], ['Old', 20], ['Trash', 30]] as const) {
    await store.createMailbox({ name, guid: `${v}`.padEnd(32, 'a'), uidValidity: v });
    await addMessages(data, name, Array.from({ length: 20 }, (_, i) => i + 1));
  }
  await store.subscribe(['Old']);
  return data;
}

/** Counts body opens across every store opened on `data`. */
function counter(data: MemoryStoreData): { open: (u: string) => Promise<MessageSource>; opened: () => number } {
  const stores: MemoryStore[] = [];
  return {
    open: async (u) => {
      const s = new MemoryStore(u, data);
      stores.push(s);
      return s;
    },
    opened: () => stores.reduce((n, s) => n + s.bodiesOpened, 0),
  };
}

async function dump(dir: string, data: MemoryStoreData, base: CursorState | null, name: string, created: string, users = ['alice'], open?: (u: string) => Promise<MessageSource>): Promise<{ file: string; state: CursorState; opened: number; messages: number }> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const runId = randomUUID();
  const writer = await DumpWriter.create(out, { creator: 't', created, runId, kind: base ? 'incremental' : 'full', base: base ? { runId: base.runId, created: base.created } : null, source: { driver: 'memory', location: 'memory:', host: 't' }, options: {} });
  const recorder = new CursorRecorder(runId, created);
  const c = counter(data);
  const summary = await backup(users, open ?? c.open, writer, defaultBackupOptions({ recorder, ...(base ? { incremental: new IncrementalPlanner({ since: 0, sinceIso: '', interpretation: '', base }, true) } : {}) }));
  await writer.finish();
  const file = path.join(dir, name);
  await writeFile(file, Buffer.concat(chunks));
  return { file, state: recorder.state(), opened: c.opened(), messages: summary.messages };
}

/** Everything a restore must reproduce: names, identity, UIDs, flags, bodies, subscriptions. */
function fingerprint(data: MemoryStoreData): string[] {
  const out: string[] = [];
  for (const [name, box] of [...data.mailboxes].sort()) {
    out.push(`${name} ${box.info.guid} ${box.info.uidValidity} next=${box.info.uidNext}`);
    for (const m of box.messages) out.push(`${name} ${m.info.uid} ${m.info.guid} ${m.info.flags.join(',')} ${m.info.keywords.join(',')} ${m.body.toString('base64')}`);
  }
  return [...out, `subs ${[...data.subscriptions].sort().join(',')}`];
}

function setFlags(data: MemoryStoreData, box: string, uid: number, flags: SystemFlag[], keywords: string[] = []): void {
  const b = data.mailboxes.get(box)!;
  const m = b.messages.find((x) => x.info.uid === uid)!;
  m.info = { ...m.info, flags, keywords };
}

async function restoreInto(files: string[], at?: number): Promise<MemoryStoreData> {
  const target = createMemoryStoreData();
  let links = await readChainLinks(files);
  if (at !== undefined) links = chainAt(links, at);
  const summary = await restoreChain(links, async (u) => new MemoryStore(u, target), defaultRestoreOptions());
  if (summary.missingCount > 0) throw new Error(`missing ${JSON.stringify(summary.missing)}`);
  return target;
}

test('full + incremental restore to the live state: new, flag changes, expunges, rename, delete, create', async (t) => {
  const dir = await tempDir(t, 'mv-chain-');
  const data = await populate();
  const full = await dump(dir, data, null, 'full.mvd', '2026-11-28T00:00:00Z');
  // Changes: 5 new in INBOX, flags on 4, expunge 3, rename Old -> Archive/New, delete Trash, create Fresh.
  await addMessages(data, 'INBOX', [21, 22, 23, 24, 25]);
  for (const uid of [1, 2, 3, 4]) setFlags(data, 'INBOX', uid, ['\\Seen'], ['$Done']);
  const inbox = data.mailboxes.get('INBOX')!;
  inbox.messages = inbox.messages.filter((m) => ![5, 6, 25].includes(m.info.uid));
  const old = data.mailboxes.get('Old')!;
  data.mailboxes.delete('Old');
  data.mailboxes.set('Archive/New', { ...old, info: { ...old.info, name: 'Archive/New' } });
  data.subscriptions.delete('Old');
  data.subscriptions.add('Archive/New');
  data.mailboxes.delete('Trash');
  const live = new MemoryStore('alice', data);
  await live.createMailbox({ name: 'Fresh', guid: 'f'.repeat(32), uidValidity: 99 });
  await addMessages(data, 'Fresh', [1, 2]);
  const inc = await dump(dir, data, full.state, 'inc1.mvd', '2026-11-28T01:00:00Z');
  t.is(inc.messages, 4 + 2, 'INBOX 21-24 and Fresh 1-2 only');
  t.is(inc.opened, 6, 'only the new bodies were read');
  const restored = await restoreInto([full.file, inc.file]);
  t.deepEqual(fingerprint(restored), fingerprint(data));
});

test('an incremental of an unchanged store holds no body; 1 % new reads only those bodies', async (t) => {
  const dir = await tempDir(t, 'mv-chain-');
  const data = createMemoryStoreData();
  await new MemoryStore('alice', data).createMailbox({ name: 'INBOX', guid: 'a'.repeat(32), uidValidity: 5 });
  await addMessages(data, 'INBOX', Array.from({ length: 500 }, (_, i) => i + 1));
  const full = await dump(dir, data, null, 'full.mvd', '2026-11-28T00:00:00Z');
  const same = await dump(dir, data, full.state, 'same.mvd', '2026-11-28T01:00:00Z');
  t.is(same.messages, 0);
  t.is(same.opened, 0);
  let bodies = 0;
  for await (const e of readDump(createReadStream(same.file), { wantBody: () => false })) if (e.type === 'message') bodies++;
  t.is(bodies, 0);
  await addMessages(data, 'INBOX', [501, 502, 503, 504, 505]);
  const inc = await dump(dir, data, same.state, 'inc.mvd', '2026-11-28T02:00:00Z');
  t.is(inc.opened, 5);
  t.deepEqual(fingerprint(await restoreInto([full.file, same.file, inc.file])), fingerprint(data));
});

test('UIDVALIDITY change makes the mailbox whole again; --at picks the prefix of the chain', async (t) => {
  const dir = await tempDir(t, 'mv-chain-');
  const data = await populate();
  const full = await dump(dir, data, null, 'full.mvd', '2026-11-28T00:00:00Z');
  setFlags(data, 'Old', 7, ['\\Flagged']);
  const inc1 = await dump(dir, data, full.state, 'inc1.mvd', '2026-11-28T01:00:00Z');
  const after1 = fingerprint(data);
  const trash = data.mailboxes.get('Trash')!;
  trash.info = { ...trash.info, uidValidity: 31 };
  trash.messages = trash.messages.slice(0, 3);
  await addMessages(data, 'INBOX', [30]);
  const inc2 = await dump(dir, data, inc1.state, 'inc2.mvd', '2026-11-28T02:00:00Z');
  t.is(inc2.messages, 3 + 1, 'Trash whole again, and INBOX 30');
  await addMessages(data, 'INBOX', [31]);
  const inc3 = await dump(dir, data, inc2.state, 'inc3.mvd', '2026-11-28T03:00:00Z');
  const after3 = fingerprint(data);
  t.deepEqual(fingerprint(await restoreInto([full.file, inc1.file, inc2.file, inc3.file])), after3);
  t.deepEqual(fingerprint(await restoreInto([full.file, inc1.file, inc2.file, inc3.file], Date.parse('2026-11-28T01:30:00Z') / 1000)), after1);
});

test('a gap, a wrong order or a chain not starting with a full dump is an error naming the dump; nothing restored', async (t) => {
  const dir = await tempDir(t, 'mv-chain-');
  const data = await populate();
  const full = await dump(dir, data, null, 'full.mvd', '2026-11-28T00:00:00Z');
  const inc1 = await dump(dir, data, full.state, 'inc1.mvd', '2026-11-28T01:00:00Z');
  const inc2 = await dump(dir, data, inc1.state, 'inc2.mvd', '2026-11-28T02:00:00Z');
  const target = createMemoryStoreData();
  const run = async (files: string[]) => restoreChain(await readChainLinks(files), async (u) => new MemoryStore(u, target), defaultRestoreOptions());
  const gap = await t.throwsAsync(run([full.file, inc2.file]), { instanceOf: ArchiveChainError });
  t.true(gap!.message.includes('inc2.mvd') && gap!.message.includes(inc1.state.runId) && gap!.message.includes('gap'));
  const order = await t.throwsAsync(run([full.file, inc2.file, inc1.file]), { instanceOf: ArchiveChainError });
  t.regex(order!.message, /out of order/);
  await t.throwsAsync(run([inc1.file, inc2.file]), { instanceOf: ArchiveChainError, message: /starts with a full dump/ });
  t.is(target.mailboxes.size, 0, 'nothing restored');
});

test('a user of the full dump that no incremental holds (they were made for other users) is restored as the full dump has it', async (t) => {
  const dir = await tempDir(t, 'mv-chain-users-');
  const live: Record<string, MemoryStoreData> = { alice: await populate(), bob: await populate() };
  const run = (users: string[], base: CursorState | null, name: string, created: string): ReturnType<typeof dump> => dump(dir, live['alice']!, base, name, created, users, async (u) => new MemoryStore(u, live[u]!));
  const full = await run(['alice', 'bob'], null, 'full.mvd', '2026-11-28T00:00:00Z');
  await addMessages(live['alice']!, 'INBOX', [21, 22]);
  const inc = await run(['alice'], full.state, 'inc.mvd', '2026-11-28T01:00:00Z');
  const targets: Record<string, MemoryStoreData> = { alice: createMemoryStoreData(), bob: createMemoryStoreData() };
  const warnings: string[] = [];
  const summary = await restoreChain(await readChainLinks([full.file, inc.file]), async (u) => new MemoryStore(u, targets[u]!), defaultRestoreOptions({ onWarning: (w) => warnings.push(w) }));
  t.is(summary.missingCount, 0);
  t.deepEqual(fingerprint(targets['alice']!), fingerprint(live['alice']!));
  t.deepEqual(fingerprint(targets['bob']!), fingerprint(live['bob']!), 'bob as the full dump has him');
  t.true(warnings.some((w) => /user "bob" is in no incremental of the chain: restored as .*full\.mvd has it/.test(w)), warnings.join('\n'));
});
