// Shared by the restore*.test.ts files: a small memory store, its dump (plain or internally zstd
// compressed) on disk, and an IMAP-like sink (no GUIDs or UIDs kept, countExisting, commits that can
// die after some appends).
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { DumpWriter } from '../../../src/archive/writer.js';
import { parseCompressionOption } from '../../../src/archive/compression/index.js';
import { ServerUnavailableError } from '../../../src/core/errors.js';
import { backup, defaultBackupOptions } from '../../../src/operations/backup.js';
import { MemoryStore, createMemoryStoreData, type MemoryStoreData } from '../../../src/storage/memory/index.js';
import type { CommitResult, CreateMailboxOptions, DriverCapabilities, ExistenceProbe,
  ExistingCopies, MailboxInfo, MessageSink, MessageSource, SaveMetadata, SaveTransaction, SystemFlag } from '../../../src/storage/types.js';
import { makeTempDir, removeTempDir } from '../../helpers/temp.js';

export const T = 1_764_000_000;

export function eml(n: number, subject: string): Buffer {
  return Buffer.from(`From: Sender ${n} <s${n}@example.org>\nSubject: ${subject}\nMessage-ID: <m${n}@example.org>\n\nBody of message ${n}.\n${'x'.repeat(n * 37)}\n`);
}

/** alice: INBOX (UIDs 1, 2, 5), Archive/2025 (UID 3), Twins (two byte-identical messages with the same INTERNALDATE). */
export async function populate(): Promise<MemoryStoreData> {
  const data = createMemoryStoreData();
  const store = new MemoryStore('alice', data);
  const add = async (box: string, uidValidity: number, msgs: { uid: number; body: Buffer; flags: SystemFlag[]; keywords: string[]; date?: number }[]) => {
    await store.createMailbox({ name: box, guid: `${uidValidity.toString(16).padStart(8, '0')}${'ab'.repeat(12)}`, uidValidity });
    const tx = await store.beginSave(box);
    for (const m of msgs) await tx.save({ uid: m.uid, guid: `guid-${box}-${m.uid}`, flags: m.flags, keywords: m.keywords, internalDate: m.date ?? T + m.uid * 60, size: m.body.length }, Readable.from([m.body]));
    await tx.commit();
  };
  await add('INBOX', 1001, [
    { uid: 1, body: eml(1, 'Hello'), flags: ['\\Seen'], keywords: [] },
    { uid: 2, body: eml(2, 'Invoice 2025'), flags: ['\\Flagged', '\\Seen'], keywords: ['$Label1', 'Important'] },
    { uid: 5, body: eml(5, 'Gap before me'), flags: [], keywords: [] },
  ]);
  await add('Archive/2025', 1002, [{ uid: 3, body: eml(3, 'Old invoice'), flags: ['\\Answered', '\\Seen'], keywords: ['Important'] }]);
  await add('Twins', 1003, [
    { uid: 1, body: eml(7, 'Twin'), flags: [], keywords: [], date: T },
    { uid: 2, body: eml(7, 'Twin'), flags: [], keywords: [], date: T },
  ]);
  await store.subscribe(['Archive/2025', 'Twins']);
  return data;
}

export async function dumpOf(data: MemoryStoreData, compress = 'none'): Promise<Buffer> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const writer = await DumpWriter.create(
    out,
    { creator: 'mailvault test', created: '2026-11-28T00:00:00Z', runId: '00000000-0000-4000-8000-000000000001', kind: 'full', base: null, source: { driver: 'memory', location: 'memory:', host: 'test' }, options: {} },
    { compression: parseCompressionOption(compress) },
  );
  await backup(['alice'], async () => new MemoryStore('alice', data) as MessageSource, writer, defaultBackupOptions());
  await writer.finish();
  return Buffer.concat(chunks);
}

const tempDirs: string[] = [];

/** Removes the directories dumpFile made (register with test.after.always). */
export async function removeDumpFiles(): Promise<void> {
  await Promise.all(tempDirs.splice(0).map((d) => removeTempDir(d)));
}

export async function dumpFile(data: MemoryStoreData, compress = 'none'): Promise<string> {
  const dir = await makeTempDir('mv-rff-');
  tempDirs.push(dir);
  const file = path.join(dir, compress === 'none' ? 'd.mvd' : 'd.mvd.zst');
  await writeFile(file, await dumpOf(data, compress));
  return file;
}

/** One line per message: mailbox, flags, keywords, date, sha256 of the bytes (no UIDs or GUIDs: an IMAP sink assigns them). */
export function contents(data: MemoryStoreData): string[] {
  const out: string[] = [];
  for (const [name, box] of data.mailboxes) {
    for (const m of box.messages) out.push(`${name} ${m.info.flags.join(',')} ${m.info.keywords.join(',')} ${m.info.internalDate} ${createHash('sha256').update(m.body).digest('hex').slice(0, 16)}`);
  }
  return out.sort();
}

const IMAP_LIKE: DriverCapabilities = { preservesUids: false, preservesMailboxIdentity: false, hasMessageGuids: false, hasModseq: false, hasSaveDate: false, sis: false, filePerMessage: true, writable: true };

async function readAll(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/**
 * Behaves like the IMAP driver: the server assigns UIDs and GUIDs, nothing is visible before commit,
 * commit appends one message at a time, and `failAfterAppends` makes a commit die (connection lost)
 * after that many appends in total, leaving the ones before it in place.
 */
export class ImapLikeSink implements MessageSink {
  readonly driverName = 'imap-like';
  readonly capabilities = IMAP_LIKE;
  private readonly store: MemoryStore;
  appends = 0;
  probes = 0;
  /**
   * `alter`: what the server stores of the bytes it is given (a server that re-encodes base64, say);
   * countExisting then answers copies equal to `alter(probe)` but not to the probe as `altered`.
   */
  constructor(
    readonly user: string,
    readonly data: MemoryStoreData,
    private readonly failAfterAppends = Infinity,
    private readonly alter: (body: Buffer) => Buffer = (b) => b,
  ) {
    this.store = new MemoryStore(user, data);
  }
  getMailbox(name: string): Promise<MailboxInfo | null> {
    return this.store.getMailbox(name);
  }
  createMailbox(o: CreateMailboxOptions): Promise<MailboxInfo> {
    return this.store.createMailbox({ name: o.name });
  }
  listMessageGuids(name: string) {
    return this.store.listMessageGuids(name);
  }
  async countExisting(mailbox: string, probe: ExistenceProbe): Promise<ExistingCopies> {
    this.probes++;
    const box = this.data.mailboxes.get(mailbox);
    if (!box) return { same: 0, altered: [] };
    const probed = await readAll(probe.openBody());
    const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
    const want = sha(probed);
    const changed = sha(this.alter(probed));
    const dated = box.messages.filter((m) => m.info.internalDate === probe.internalDate);
    return { same: dated.filter((m) => sha(m.body) === want).length, altered: dated.filter((m) => sha(m.body) !== want && sha(m.body) === changed).map((m) => m.info.uid) };
  }
  async beginSave(mailbox: string): Promise<SaveTransaction> {
    const info = await this.store.getMailbox(mailbox);
    if (!info) throw new Error(`no mailbox ${mailbox}`);
    const spooled: { meta: SaveMetadata; body: Buffer }[] = [];
    let done = false;
    return {
      mailbox: info,
      save: async (meta, body) => {
        spooled.push({ meta: { flags: meta.flags, keywords: meta.keywords, internalDate: meta.internalDate, size: meta.size }, body: body instanceof Uint8Array ? Buffer.from(body) : await readAll(body) });
        return { uid: null, guid: null };
      },
      commit: async (): Promise<CommitResult> => {
        if (done) throw new Error('already committed');
        done = true;
        const uids: number[] = [];
        for (const s of spooled) {
          if (this.appends >= this.failAfterAppends) throw new ServerUnavailableError('connection lost in the middle of the commit (test)');
          const tx = await this.store.beginSave(mailbox);
          const stored = this.alter(s.body);
          await tx.save({ ...s.meta, size: stored.length, guid: `server-${this.appends}` }, Readable.from([stored]));
          uids.push(...(await tx.commit()).uids);
          this.appends++;
        }
        return { uids, uidValidity: info.uidValidity };
      },
      rollback: async () => {
        done = true;
      },
    };
  }
  subscribe(names: readonly string[]): Promise<void> {
    return this.store.subscribe(names);
  }
  async close(): Promise<void> {}
}
