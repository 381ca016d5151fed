/**
 * The one-pass reader checks section 13's rules for a mailbox's flag tables, which the writer has
 * always kept: numbered 1, 2, ...; 1 to 2000 entries each; UIDs ascending across all of them (a UID
 * in two tables would get two flag sets on restore). Before, each table was checked alone, so a dump
 * with UIDs going backwards from one table to the next passed `verify` (found by read_dump.py, the
 * spec's independent reader). Each damaged dump is resealed: the broken rule is its only defect.
 */
import test from 'ava';
import { ArchiveCorruptError, ArchiveOrderError } from '../../../src/core/errors.js';
import { chunked, incrementalWithTwoFlagTables as twoTables, readAll } from './sample-dump.js';
import { editRecord, reseal, sealRecord } from './reseal.js';

const USER = 'alice@example.org';
const DIR = `users/${USER}/mailboxes/INBOX`;

test('the undamaged dump reads, and resealing without a change keeps it readable', async (t) => {
  const good = await twoTables();
  t.deepEqual((await readAll(chunked(good))).entries.map((e) => e.type), ['header', 'user', 'mailbox', 'flags', 'flags', 'message', 'trailer']);
  const same = await reseal(good, { [`${DIR}/flags.2.json`]: editRecord(() => undefined) });
  t.deepEqual(same, good);
});

test('UIDs going backwards from one flag table to the next are an order error naming the table', async (t) => {
  const dump = await reseal(await twoTables(), { [`${DIR}/flags.2.json`]: editRecord((o) => ((o['entries'] as Array<{ uid: number }>)[0]!.uid = 2)) });
  const err = await t.throwsAsync(readAll(chunked(dump)), { instanceOf: ArchiveOrderError });
  t.regex(err!.message, /flags\.2\.json.*UID 2 comes after UID 2: UIDs must ascend across the flag tables of a mailbox/);
});

test('a flag table without entries is corrupt', async (t) => {
  // The second table emptied; the record keeps its length with spaces (allowed before the newline).
  const dump = await reseal(await twoTables(), {
    [`${DIR}/flags.2.json`]: (m) => {
      const o = JSON.parse(m.data.toString('utf8')) as Record<string, unknown>;
      o['entries'] = [];
      return sealRecord(o, m.data.length, true);
    },
  });
  const err = await t.throwsAsync(readAll(chunked(dump)), { instanceOf: ArchiveCorruptError });
  t.regex(err!.message, /flags\.2\.json.*0 entries: a flag table holds 1 to 2000/);
});

test('flag tables numbered out of sequence are an order error', async (t) => {
  // The second table's record says seq 3: the member name must say 3 too (same length), so both change.
  const good = await twoTables();
  const renamed = Buffer.from(good.toString('latin1').replaceAll(`${DIR}/flags.2.json`, `${DIR}/flags.3.json`), 'latin1');
  const fixedHeader = fixTarChecksums(renamed);
  const dump = await reseal(fixedHeader, { [`${DIR}/flags.3.json`]: editRecord((o) => (o['seq'] = 3)) });
  const err = await t.throwsAsync(readAll(chunked(dump)), { instanceOf: ArchiveOrderError });
  t.regex(err!.message, /flag table 3 follows table 1 of this mailbox: tables are numbered 1, 2, \.\.\./);
});

/** Recompute every ustar header's checksum (after a same-length change to a member name). */
function fixTarChecksums(dump: Buffer): Buffer {
  const out = Buffer.from(dump);
  let pos = 0;
  while (pos + 512 <= out.length) {
    const block = out.subarray(pos, pos + 512);
    if (block.every((b) => b === 0)) break;
    block.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of block) sum += b;
    block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    const size = parseInt(block.toString('latin1', 124, 136).replace(/\0.*$/, '').trim(), 8);
    pos += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}
