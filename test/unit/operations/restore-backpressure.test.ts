// A restore whose dump reads faster than the sink commits holds at most two batches: the one being
// committed and the one being filled. Before, every full batch queued its commit and the restore read
// on, so a restore of 100k small messages held 89k pending messages (and 520 MiB of RSS) at once.
import test from 'ava';
import { Readable } from 'node:stream';
import { QuotaExceededError } from '../../../src/core/errors.js';
import { defaultRestoreOptions, keywordsNotStoredWarnings, restore, type RestoreSummary } from '../../../src/operations/restore.js';
import { MemoryStore, createMemoryStoreData, type MemoryStoreData } from '../../../src/storage/memory/index.js';
import type { CommitResult, SaveTransaction } from '../../../src/storage/types.js';
import { contents, dumpOf, eml, T } from './restore-fixtures.js';

/** A store whose commits take `delayMs`; counts the transactions begun and not yet committed. */
class SlowCommitStore extends MemoryStore {
  open = 0;
  maxOpen = 0;
  constructor(
    user: string,
    data: MemoryStoreData,
    private readonly delayMs: number,
  ) {
    super(user, data);
  }

  override async beginSave(name: string): Promise<SaveTransaction> {
    const tx = await super.beginSave(name);
    this.open++;
    this.maxOpen = Math.max(this.maxOpen, this.open);
    const commit = tx.commit.bind(tx);
    return Object.assign(tx, {
      commit: async (): Promise<CommitResult> => {
        await new Promise((r) => setTimeout(r, this.delayMs));
        try {
          return await commit();
        } finally {
          this.open--;
        }
      },
    });
  }
}

test('a slow sink holds at most two batches: the dump is read no faster than commits finish', async (t) => {
  const source = createMemoryStoreData();
  const store = new MemoryStore('alice', source);
  await store.createMailbox({ name: 'INBOX', guid: 'ab'.repeat(16), uidValidity: 7 });
  const tx = await store.beginSave('INBOX');
  for (let uid = 1; uid <= 60; uid++) await tx.save({ uid, guid: `g${uid}`, flags: [], keywords: [], internalDate: T + uid, size: eml(uid, `m${uid}`).length }, Readable.from([eml(uid, `m${uid}`)]));
  await tx.commit();
  const dump = await dumpOf(source);

  const target = createMemoryStoreData();
  const sink = new SlowCommitStore('alice', target, 15);
  const summary = await restore(Readable.from([dump]), async () => sink, defaultRestoreOptions({ commitEvery: 5 }));
  t.is(summary.messages, 60);
  t.true(sink.maxOpen <= 2, `${sink.maxOpen} transactions were open at once`);
  t.is(sink.open, 0);
  t.deepEqual(contents(target), contents(source));
});

/** A store whose commits fail from the third on; the third after keeping its first `kept` messages (as an IMAP commit does). */
class FailingCommitStore extends MemoryStore {
  commits = 0;
  constructor(
    user: string,
    data: MemoryStoreData,
    private readonly kept: number | null,
  ) {
    super(user, data);
  }

  override async beginSave(name: string): Promise<SaveTransaction> {
    const tx = await super.beginSave(name);
    const commit = tx.commit.bind(tx);
    return Object.assign(tx, {
      commit: async (): Promise<CommitResult> => {
        this.commits++;
        if (this.commits < 3) return await commit();
        // The third keeps its first `kept` messages (then the quota is full); later ones keep none.
        throw Object.assign(new QuotaExceededError('quota exceeded (test)'), this.kept === null || this.commits > 3 ? {} : { keptBeforeFailure: this.kept });
      },
    });
  }
}

for (const kept of [null, 2] as const) {
  test(`a failed commit takes back what the target did not keep from the counts (${kept === null ? 'nothing kept, as Maildir' : `${kept} kept, as IMAP`})`, async (t) => {
    const source = createMemoryStoreData();
    const store = new MemoryStore('alice', source);
    await store.createMailbox({ name: 'INBOX', guid: 'ab'.repeat(16), uidValidity: 7 });
    const tx = await store.beginSave('INBOX');
    for (let uid = 1; uid <= 20; uid++) await tx.save({ uid, guid: `g${uid}`, flags: [], keywords: [], internalDate: T + uid, size: eml(uid, `m${uid}`).length }, Readable.from([eml(uid, `m${uid}`)]));
    await tx.commit();
    const dump = await dumpOf(source);
    const sink = new FailingCommitStore('alice', createMemoryStoreData(), kept);
    const err = await t.throwsAsync(restore(Readable.from([dump]), async () => sink, defaultRestoreOptions({ commitEvery: 5 })), { instanceOf: QuotaExceededError });
    const summary = (err as unknown as { restoreSummary: RestoreSummary }).restoreSummary;
    // Two batches of 5 committed; the third failed, keeping `kept` of its 5.
    const expected = 10 + (kept ?? 0);
    t.is(summary.messages, expected);
    t.is(summary.mailboxes[0]!.restored, expected);
    t.is(summary.bytes, Array.from({ length: expected }, (_, i) => eml(i + 1, `m${i + 1}`).length).reduce((a, b) => a + b, 0));
  });
}

/** A store that assigns its own UIDs (from 1001, as an IMAP server does) and reports the keywords of its second message of each batch as not stored. */
class KeywordRefusingStore extends MemoryStore {
  override async beginSave(name: string): Promise<SaveTransaction> {
    const tx = await super.beginSave(name);
    const commit = tx.commit.bind(tx);
    return Object.assign(tx, {
      commit: async (): Promise<CommitResult> => {
        const r = await commit();
        return { ...r, keywordsNotStored: [{ index: 1, uid: 1001 + 1, keywords: ['$Refused'] }], keywordsNotStoredWhy: 'the server cannot store these (test)' };
      },
    });
  }
}

test('keywords a target did not store are reported by the messages\' UIDs in the dump, not by the UIDs the target gave them', async (t) => {
  const source = createMemoryStoreData();
  const store = new MemoryStore('alice', source);
  await store.createMailbox({ name: 'INBOX', guid: 'ab'.repeat(16), uidValidity: 7 });
  const tx = await store.beginSave('INBOX');
  for (let uid = 11; uid <= 16; uid++) await tx.save({ uid, guid: `g${uid}`, flags: [], keywords: ['$Refused'], internalDate: T + uid, size: eml(uid, `m${uid}`).length }, Readable.from([eml(uid, `m${uid}`)]));
  await tx.commit();
  const dump = await dumpOf(source);
  const summary = await restore(Readable.from([dump]), async () => new KeywordRefusingStore('alice', createMemoryStoreData()), defaultRestoreOptions({ commitEvery: 3 }));
  // batches 11-13 and 14-16: the second of each
  t.deepEqual(summary.mailboxes[0]!.keywordsNotStored, [
    { uid: 12, keywords: ['$Refused'] },
    { uid: 15, keywords: ['$Refused'] },
  ]);
  t.regex(keywordsNotStoredWarnings(summary)[0]!, /2 messages \(UID 12, 15 in the dump\) restored without the keyword \$Refused: the server cannot store these \(test\)/);
});
