import test from 'ava';
import { copyFile, cp, open, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StorageCorruptError } from '../../../../src/core/errors.js';
import { readDovecotIndex, type IndexSnapshot } from '../../../../src/storage/dovecot-index/index.js';
import { LOG_TYPE_MASK, LogType, decodeRecordSize, readLogRecords } from '../../../../src/storage/dovecot-index/transaction-log.js';
import { flagsFromByte } from '../../../../src/storage/dbox/common/mailbox-reader.js';
import { STORES } from '../dbox/fixture-copy.js';
import { loadExpected } from '../dbox/store-expectations.js';
import { tempDir, type TempDirContext } from '../../../helpers/temp.js';

const boxDir = (kind: string, box: string) => path.join(STORES, kind, 'root/mailboxes', box, 'dbox-Mails');

async function tempCopy(t: TempDirContext, kind: string, box: string): Promise<string> {
  const dir = await tempDir(t, 'mv-idx-');
  await cp(boxDir(kind, box), dir, { recursive: true });
  return dir;
}

function summary(s: IndexSnapshot) {
  return {
    uidValidity: s.uidValidity,
    uidNext: s.nextUid,
    highestModseq: s.highestModseq,
    messages: s.messages.map((m) => ({ uid: m.uid, flags: flagsFromByte(m.flags), keywords: [...m.keywords].sort(), modseq: m.modseq })),
  };
}

function expectedSummary(kind: string, box: string) {
  const e = loadExpected(path.join(STORES, kind, 'expected.json')).mailboxes[box]!;
  return {
    uidValidity: e.uidValidity,
    uidNext: e.uidNext,
    highestModseq: e.highestModseq,
    messages: e.messages.map((m) => ({ uid: m.uid, flags: m.flags, keywords: [...m.keywords].sort(), modseq: m.modseq })),
  };
}

test('record sizes use 7 bits per byte, big-endian', (t) => {
  t.is(decodeRecordSize(Buffer.from([0x80, 0x80, 0x80, 0x89]), 0), 36);
  t.is(decodeRecordSize(Buffer.from([0x80, 0x80, 0x81, 0x80]), 0), 512);
  t.is(decodeRecordSize(Buffer.from([0x00, 0x80, 0x80, 0x89]), 0), -1);
});

for (const kind of ['sdbox', 'mdbox']) {
  for (const box of ['INBOX', 'NoIndex', 'Work/Projects', 'Entwürfe']) {
    test(`${kind} ${box}: log-only replay equals doveadm (flags, >26 keywords, modseq, expunges)`, async (t) => {
      const snap = await readDovecotIndex(boxDir(kind, box === 'Entwürfe' ? 'Entw&APw-rfe' : box));
      t.truthy(snap);
      t.deepEqual(snap!.files.map((f) => path.basename(f)), ['dovecot.index.log']);
      t.deepEqual(summary(snap!), expectedSummary(kind, box));
    });
  }

  test(`${kind} Rotated: dovecot.index + log equals doveadm`, async (t) => {
    const snap = (await readDovecotIndex(boxDir(kind, 'Rotated')))!;
    t.deepEqual(snap.files.map((f) => path.basename(f)), ['dovecot.index', 'dovecot.index.log']);
    t.deepEqual(summary(snap), expectedSummary(kind, 'Rotated'));
  });

  test(`${kind} Rotated: an older snapshot pointing into .log.2 replays .log.2 then .log`, async (t) => {
    const dir = await tempCopy(t, kind, 'Rotated');
    await copyFile(path.join(dir, 'dovecot.index.backup'), path.join(dir, 'dovecot.index'));
    const snap = (await readDovecotIndex(dir))!;
    t.deepEqual(snap.files.map((f) => path.basename(f)), ['dovecot.index', 'dovecot.index.log.2', 'dovecot.index.log']);
    t.deepEqual(summary(snap), expectedSummary(kind, 'Rotated'));
  });

  test(`${kind} Rotated: without dovecot.index the history is incomplete and says so`, async (t) => {
    const dir = await tempCopy(t, kind, 'Rotated');
    await rm(path.join(dir, 'dovecot.index'));
    await t.throwsAsync(readDovecotIndex(dir), { instanceOf: StorageCorruptError, message: /dovecot\.index is missing .* does not hold the whole history/ });
  });
}

test('mdbox: extension records (mdbox map_uid, guid) and headers (mdbox-hdr) are exposed by name', async (t) => {
  const snap = (await readDovecotIndex(boxDir('mdbox', 'INBOX')))!;
  const e = loadExpected(path.join(STORES, 'mdbox', 'expected.json')).mailboxes['INBOX']!;
  t.is(snap.extHeaders.get('mdbox-hdr')!.subarray(4, 20).toString('hex'), e.guid);
  t.deepEqual(snap.messages.map((m) => m.ext.get('guid')!.toString('hex')), e.messages.map((m) => m.guid));
  t.deepEqual(snap.messages.map((m) => m.ext.get('mdbox')!.readUInt32LE(4)), e.messages.map((m) => m.saveDate));
});

test('a log cut mid-record or mid-transaction is read up to the last whole transaction', async (t) => {
  const dir = await tempCopy(t, 'sdbox', 'INBOX');
  const log = path.join(dir, 'dovecot.index.log');
  const full = await readFile(log);
  const fh = await open(log, 'r');
  const boundaries: { offset: number; size: number }[] = [];
  for await (const r of readLogRecords(fh, log, 40, full.length)) {
    if ((r.type & LOG_TYPE_MASK) === LogType.BOUNDARY) boundaries.push({ offset: r.offset, size: r.data.readUInt32LE(0) });
  }
  await fh.close();
  const stateAt = async (len: number) => {
    await writeFile(log, full.subarray(0, len));
    return summary((await readDovecotIndex(dir))!);
  };
  // The last transaction with a BOUNDARY that changes something visible.
  let last: { offset: number; size: number } | undefined;
  for (const b of [...boundaries].reverse()) {
    if (JSON.stringify(await stateAt(b.offset)) !== JSON.stringify(await stateAt(b.offset + b.size))) {
      last = b;
      break;
    }
  }
  t.truthy(last);
  const before = await stateAt(last!.offset);
  t.deepEqual(await stateAt(last!.offset + last!.size - 1), before); // its records may be whole, the transaction is not
  t.deepEqual(await stateAt(last!.offset + 3), before);
  t.deepEqual(await stateAt(full.length), expectedSummary('sdbox', 'INBOX'));
});

test('a damaged record size is a StorageCorruptError naming file, offset and force-resync', async (t) => {
  const dir = await tempCopy(t, 'sdbox', 'NoIndex');
  const log = path.join(dir, 'dovecot.index.log');
  const buf = await readFile(log);
  buf[40] = 0x00; // first record's size bytes start at the 40-byte header
  await writeFile(log, buf);
  const err = await t.throwsAsync(readDovecotIndex(dir), { instanceOf: StorageCorruptError });
  t.regex(err!.message, /dovecot\.index\.log at offset 40/);
  t.regex(err!.hint ?? '', /doveadm force-resync/);
});

test('an unsupported index version is refused', async (t) => {
  const dir = await tempCopy(t, 'sdbox', 'Rotated');
  const idx = path.join(dir, 'dovecot.index');
  const buf = await readFile(idx);
  buf[0] = 8;
  await writeFile(idx, buf);
  await t.throwsAsync(readDovecotIndex(dir), { instanceOf: StorageCorruptError, message: /dovecot\.index at offset 0: major version 8/ });
});

test('a directory without index files gives null', async (t) => {
  const dir = await tempDir(t, 'mv-idx-');
  t.is(await readDovecotIndex(dir), null);
});

test('a log ending in zero bytes (unwritten space) is read up to there, as Dovecot does; a zero word mid-log ends it too', async (t) => {
  const dir = await tempCopy(t, 'sdbox', 'NoIndex');
  const log = path.join(dir, 'dovecot.index.log');
  const full = await readFile(log);
  await writeFile(log, Buffer.concat([full, Buffer.alloc(16)]));
  t.deepEqual(summary((await readDovecotIndex(dir))!), expectedSummary('sdbox', 'NoIndex'));
  // Zeros where the last transaction should start: the state before it, nothing more.
  const fh = await open(log, 'r');
  let lastBoundary = 0;
  for await (const r of readLogRecords(fh, log, 40, full.length)) if ((r.type & LOG_TYPE_MASK) === LogType.BOUNDARY) lastBoundary = r.offset;
  await fh.close();
  t.true(lastBoundary > 40);
  await writeFile(log, full.subarray(0, lastBoundary));
  const before = summary((await readDovecotIndex(dir))!);
  await writeFile(log, Buffer.concat([full.subarray(0, lastBoundary), Buffer.alloc(full.length - lastBoundary)]));
  t.deepEqual(summary((await readDovecotIndex(dir))!), before);
});
