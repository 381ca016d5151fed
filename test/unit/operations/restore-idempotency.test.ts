// The idempotency rule for sinks that cannot keep GUIDs (IMAP): "same bytes + same INTERNALDATE", counted
// per target mailbox. A commit that dies after some APPENDs, then a rerun, ends with every mail exactly
// once, whatever the batch size and wherever the crash happens.
import test from 'ava';
import { Readable } from 'node:stream';
import { ServerUnavailableError } from '../../../src/core/errors.js';
import { defaultRestoreOptions, restore, restoreSummaryOf } from '../../../src/operations/restore.js';
import { createMemoryStoreData } from '../../../src/storage/memory/index.js';
import { contents, dumpOf, ImapLikeSink, populate } from './restore-fixtures.js';

test('a crash in the middle of a commit, then a rerun: every message exactly once (all crash points, two batch sizes)', async (t) => {
  const source = await populate();
  const dump = await dumpOf(source);
  const want = contents(source);
  for (const commitEvery of [1, 3, 500]) {
    for (let crashAfter = 0; crashAfter < want.length; crashAfter++) {
      const data = createMemoryStoreData();
      const err = await t.throwsAsync(restore(Readable.from([dump]), async (u) => new ImapLikeSink(u, data, crashAfter), defaultRestoreOptions({ commitEvery })), { instanceOf: ServerUnavailableError });
      t.truthy(restoreSummaryOf(err));
      t.is(contents(data).length, crashAfter, `commitEvery ${commitEvery}: ${crashAfter} appends happened before the crash`);
      const rerun = await restore(Readable.from([dump]), async (u) => new ImapLikeSink(u, data), defaultRestoreOptions({ commitEvery }));
      t.deepEqual(contents(data), want, `commitEvery ${commitEvery}, crash after ${crashAfter}`);
      t.is(rerun.messages + rerun.alreadyPresent, want.length);
      t.is(rerun.alreadyPresent, crashAfter);
    }
  }
});

test('a mailbox the run created or found empty is not probed; a non-empty one is', async (t) => {
  const dump = await dumpOf(await populate());
  const data = createMemoryStoreData();
  const sink = new ImapLikeSink('alice', data);
  await restore(Readable.from([dump]), async () => sink, defaultRestoreOptions());
  t.is(sink.probes, 0, 'every mailbox was created by the run');
  const again = new ImapLikeSink('alice', data);
  const summary = await restore(Readable.from([dump]), async () => again, defaultRestoreOptions());
  t.is(again.probes, 6);
  t.is(summary.alreadyPresent, 6);
  t.is(summary.messages, 0);
});

test('several source mailboxes into one --to-mailbox count together (twins in two mailboxes stay two)', async (t) => {
  const dump = await dumpOf(await populate());
  const data = createMemoryStoreData();
  const options = defaultRestoreOptions({ toMailbox: 'Restored', commitEvery: 1 });
  await restore(Readable.from([dump]), async (u) => new ImapLikeSink(u, data), options);
  t.is(data.mailboxes.get('Restored')!.messages.length, 6);
  const again = await restore(Readable.from([dump]), async (u) => new ImapLikeSink(u, data), options);
  t.is(again.messages, 0);
  t.is(data.mailboxes.get('Restored')!.messages.length, 6);
});

test('copies the server changed when it saved them: each counts once as present, for the dump message it stands for', async (t) => {
  // The server stores "Twin" mail with one letter changed (as Dovecot re-encodes a base64 ending).
  const alter = (b: Buffer): Buffer => Buffer.from(b.toString('latin1').replace('Subject: Twin', 'Subject: TwiN'), 'latin1');
  const source = await populate();
  const dump = await dumpOf(source);
  const data = createMemoryStoreData();
  const first = await restore(Readable.from([dump]), async (u) => new ImapLikeSink(u, data, Infinity, alter), defaultRestoreOptions({ commitEvery: 1 }));
  t.is(first.messages, 6);
  t.is(data.mailboxes.get('Twins')!.messages.length, 2);
  // A rerun: the two twins are both there (changed): nothing is sent again, both are named.
  const again = await restore(Readable.from([dump]), async (u) => new ImapLikeSink(u, data, Infinity, alter), defaultRestoreOptions({ commitEvery: 1 }));
  t.is(again.messages, 0);
  t.is(again.alreadyPresent, 6);
  t.deepEqual(again.mailboxes.find((m) => m.mailbox === 'Twins')!.alteredByServer, [1, 2]);
  t.is(data.mailboxes.get('Twins')!.messages.length, 2);
  // One changed copy left: it stands for one twin; the other is sent again.
  data.mailboxes.get('Twins')!.messages.pop();
  const third = await restore(Readable.from([dump]), async (u) => new ImapLikeSink(u, data, Infinity, alter), defaultRestoreOptions({ commitEvery: 1 }));
  t.is(third.messages, 1);
  t.is(data.mailboxes.get('Twins')!.messages.length, 2);
});
