import test from 'ava';
import { ArchiveCorruptError, ArchiveOrderError, ArchiveTruncatedError, ArchiveVersionError } from '../../../src/core/errors.js';
import { encodeRecord } from '../../../src/archive/record-codec.js';
import { chunked, packMembers, readAll, splitMembers, writeSample, type RawMember } from './sample-dump.js';

const good = writeSample();

async function members(): Promise<RawMember[]> {
  return splitMembers(await good);
}

function find(list: RawMember[], suffix: string): RawMember {
  const m = list.find((x) => x.name.endsWith(suffix));
  if (!m) throw new Error(`no member ${suffix}`);
  return m;
}

function flip(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at] = copy[at]! ^ 0x01;
  return copy;
}

/** Re-encode a record member with a change (valid check), keeping everything else. */
function editRecord(m: RawMember, change: (o: Record<string, unknown>) => void): RawMember {
  const o = JSON.parse(m.data.toString()) as Record<string, unknown>;
  delete o['check'];
  change(o);
  return { ...m, data: encodeRecord(o) };
}

test('truncated inside a body: ArchiveTruncatedError with offset and last complete member', async (t) => {
  const bytes = await good;
  const body = find(await members(), 'INBOX/7.eml');
  const cut = body.dataOffset + 100;
  const err = await t.throwsAsync(readAll(chunked(bytes.subarray(0, cut), 64)), { instanceOf: ArchiveTruncatedError });
  t.regex(err!.message, new RegExp(`offset ${cut}`));
  t.regex(err!.message, /inside the data of member "users\/alice@example.org\/mailboxes\/INBOX\/7.eml"/);
  t.regex(err!.message, /last complete member is "users\/alice@example.org\/mailboxes\/INBOX\/1.json"/);
  t.regex(err!.hint ?? '', /mailvault verify/);
});

test('truncated inside a tar header', async (t) => {
  const bytes = await good;
  const m = find(await members(), 'Sent/mailbox.json');
  const err = await t.throwsAsync(readAll(chunked(bytes.subarray(0, m.offset + 200))), { instanceOf: ArchiveTruncatedError });
  t.regex(err!.message, /inside a tar header/);
  t.regex(err!.message, new RegExp(`offset ${m.offset + 200}`));
});

test('truncated right before the trailer, and right after it', async (t) => {
  const bytes = await good;
  const trailer = find(await members(), 'trailer.json');
  const e1 = await t.throwsAsync(readAll(chunked(bytes.subarray(0, trailer.offset))), { instanceOf: ArchiveTruncatedError });
  t.regex(e1!.message, /last complete member is "mailvault\/toc.jsonl"/);
  const e2 = await t.throwsAsync(readAll(chunked(bytes.subarray(0, bytes.length - 1024))), { instanceOf: ArchiveTruncatedError });
  t.regex(e2!.message, /end-of-archive/);
});

test('an empty stream is truncated at offset 0', async (t) => {
  await t.throwsAsync(readAll(chunked(Buffer.alloc(0))), { instanceOf: ArchiveTruncatedError, message: /offset 0/ });
});

test('a flipped byte in a body: ArchiveCorruptError naming member, offset, user, mailbox and UID; no entry for it', async (t) => {
  const bytes = await good;
  const body = find(await members(), 'INBOX/7.eml');
  const seen: number[] = [];
  const err = await t.throwsAsync(async () => {
    for await (const e of (await import('../../../src/archive/reader.js')).readDump(chunked(flip(bytes, body.dataOffset + 5)))) {
      if (e.type === 'message') seen.push(e.record.uid);
    }
  }, { instanceOf: ArchiveCorruptError });
  t.deepEqual(seen, [1], 'the damaged message is never yielded');
  t.regex(err!.message, /member "users\/alice@example.org\/mailboxes\/INBOX\/7.eml" at offset \d+/);
  t.regex(err!.message, /UID 7 of mailbox "INBOX" \(user "alice@example.org"\)/);
  t.is(err!.context.uid, 7);
  t.is(err!.context.offset, body.offset);
});

test('a flipped byte in a tar header: ArchiveCorruptError "Invalid tar header" with offset', async (t) => {
  const bytes = await good;
  const m = find(await members(), 'Sent/3.eml');
  const err = await t.throwsAsync(readAll(chunked(flip(bytes, m.offset + 10))), { instanceOf: ArchiveCorruptError });
  t.regex(err!.message, new RegExp(`offset ${m.offset}: Invalid tar header: checksum mismatch`));
  t.regex(err!.message, /last complete member is "users\/alice@example.org\/mailboxes\/Sent\/mailbox.json"/);
});

test('a flipped byte in a JSON record: check mismatch naming member and offset', async (t) => {
  const bytes = await good;
  const m = find(await members(), 'INBOX/mailbox.json');
  const at = m.dataOffset + m.data.indexOf('uidNext') + 12;
  const err = await t.throwsAsync(readAll(chunked(flip(bytes, at))), { instanceOf: ArchiveCorruptError });
  t.regex(err!.message, new RegExp(`record "users/alice@example.org/mailboxes/INBOX/mailbox.json" at offset ${m.dataOffset}: check mismatch`));
});

test('a flipped byte in the trailer, and in the TOC', async (t) => {
  const bytes = await good;
  const list = await members();
  const trailer = find(list, 'trailer.json');
  const e1 = await t.throwsAsync(readAll(chunked(flip(bytes, trailer.dataOffset + 30))), { instanceOf: ArchiveCorruptError });
  t.regex(e1!.message, /record "mailvault\/trailer.json" at offset \d+: check mismatch/);
  const toc = find(list, 'toc.jsonl');
  const at = toc.dataOffset + toc.data.indexOf('"offset":1024') + 10;
  const e2 = await t.throwsAsync(readAll(chunked(flip(bytes, at))), { instanceOf: ArchiveCorruptError });
  t.regex(e2!.message, new RegExp(`member "mailvault/toc.jsonl" at offset ${toc.offset}: the table of contents`));
});

test('a wrong trailer digest or count is reported', async (t) => {
  const list = await members();
  const edited = list.map((m) => (m.name.endsWith('trailer.json') ? editRecord(m, (o) => { (o['counts'] as Record<string, number>)['messages'] = 99; }) : m));
  const err = await t.throwsAsync(readAll(chunked(packMembers(edited))), { instanceOf: ArchiveCorruptError });
  t.regex(err!.message, /counts.messages is 99, read 5/);
  // The digest covers everything before the trailer member (its header blocks included; bodies and
  // blobs by their sha256): one that differs is named with what was read.
  const wrong = list.map((m) => (m.name.endsWith('trailer.json') ? editRecord(m, (o) => { (o['digest'] as Record<string, string>)['value'] = '0'.repeat(64); }) : m));
  const e2 = await t.throwsAsync(readAll(chunked(packMembers(wrong))), { instanceOf: ArchiveCorruptError });
  t.regex(e2!.message, new RegExp(`digest 0{64} does not match the \\d+ bytes read before it \\(sha256-hashed-content: [0-9a-f]{64}\\)`));
  // The algorithm goes with the version: a version 4 trailer naming the plain sha256 is corrupt.
  const plain = list.map((m) => (m.name.endsWith('trailer.json') ? editRecord(m, (o) => { (o['digest'] as Record<string, string>)['algorithm'] = 'sha256'; }) : m));
  await t.throwsAsync(readAll(chunked(packMembers(plain))), { instanceOf: ArchiveCorruptError, message: /digest algorithm "sha256", but format version 4 uses "sha256-hashed-content"/ });
});

test('version 4: a body enters the digest as its sha256, so its padding must be zeros', async (t) => {
  const bytes = await good;
  const body = find(await members(), 'INBOX/7.eml');
  const padAt = body.dataOffset + body.data.length;
  t.true(padAt % 512 !== 0, 'the sample body needs padding');
  const err = await t.throwsAsync(readAll(chunked(flip(bytes, padAt + 3))), { instanceOf: ArchiveCorruptError });
  t.regex(err!.message, new RegExp(`member "users/alice@example.org/mailboxes/INBOX/7.eml" at offset ${padAt}: the padding after the data is not zero bytes`));
});

test('reordered members: ArchiveOrderError naming both members', async (t) => {
  const list = await members();
  const swap = (a: number, b: number): RawMember[] => { const c = [...list]; [c[a], c[b]] = [c[b]!, c[a]!]; return c; };
  const i1 = list.findIndex((m) => m.name.endsWith('INBOX/1.eml'));
  // record before its body
  const e1 = await t.throwsAsync(readAll(chunked(packMembers(swap(i1, i1 + 1)))), { instanceOf: ArchiveOrderError });
  t.regex(e1!.message, /member "users\/alice@example.org\/mailboxes\/INBOX\/1.json" at offset \d+: a message record must come immediately after its body "users\/alice@example.org\/mailboxes\/INBOX\/1.eml"; the previous member is "users\/alice@example.org\/mailboxes\/INBOX\/mailbox.json"/);
  // message before its mailbox
  const iMb = list.findIndex((m) => m.name.endsWith('INBOX/mailbox.json'));
  const e2 = await t.throwsAsync(readAll(chunked(packMembers(swap(iMb, i1)))), { instanceOf: ArchiveOrderError });
  t.regex(e2!.message, /INBOX\/1.eml" at offset \d+: a message must come after its mailbox record "users\/alice@example.org\/mailboxes\/INBOX\/mailbox.json"; the previous member is "users\/alice@example.org\/user.json"/);
  // header not first
  const e3 = await t.throwsAsync(readAll(chunked(packMembers(swap(0, 1)))), { instanceOf: ArchiveOrderError, message: /first member must be "mailvault\/header.json"/ });
  t.truthy(e3);
  // users out of order
  const iA = list.findIndex((m) => m.name === 'users/alice@example.org/user.json');
  const bob = list.filter((m) => m.name.startsWith('users/bob/'));
  const rest = list.filter((m) => !m.name.startsWith('users/bob/'));
  const reordered = [...rest.slice(0, iA), ...bob, ...rest.slice(iA)];
  const e4 = await t.throwsAsync(readAll(chunked(packMembers(reordered))), { instanceOf: ArchiveOrderError });
  t.regex(e4!.message, /member "users\/alice@example.org\/user.json" at offset \d+: user "alice@example.org" comes after "users\/bob\/user.json"/);
  // something after the trailer
  const e5 = await t.throwsAsync(readAll(chunked(packMembers([...list, list[1]!]))), { instanceOf: ArchiveOrderError, message: /nothing may follow the trailer/ });
  t.truthy(e5);
});

test('a header with a higher version: ArchiveVersionError telling to upgrade', async (t) => {
  const list = await members();
  const edited = [editRecord(list[0]!, (o) => { o['version'] = 5; }), ...list.slice(1)];
  const err = await t.throwsAsync(readAll(chunked(packMembers(edited))), { instanceOf: ArchiveVersionError });
  t.is(err!.message, 'dump written by a newer mailvault (format 5); this one reads up to 4: upgrade mailvault');
});

test('a record whose member name does not match its fields is corrupt', async (t) => {
  const list = await members();
  const edited = list.map((m) => (m.name.endsWith('Sent/mailbox.json') ? editRecord(m, (o) => { o['name'] = 'Other'; }) : m));
  const err = await t.throwsAsync(readAll(chunked(packMembers(edited))), { instanceOf: ArchiveCorruptError });
  t.regex(err!.message, /the record is for mailbox "Other" of user "alice@example.org", the member name says "Sent"/);
});

test('".." , absolute and unknown member names are corrupt (never used as paths)', async (t) => {
  const list = await members();
  for (const [name, words] of [
    ['users/../../etc/passwd', /"\." , "\.\." and empty path components/],
    ['/etc/passwd', /absolute member names/],
    ['mailvault/extra.json', /unknown member/],
    ['README', /unknown member/],
    ['users/alice@example.org/mailboxes/IN.BOX/mailbox.json', /not percent-encoded/],
  ] as const) {
    const bad = [list[0]!, { name, data: Buffer.from('{}\n') }, ...list.slice(1)];
    const err = await t.throwsAsync(readAll(chunked(packMembers(bad))), { instanceOf: ArchiveCorruptError }, name);
    t.regex(err!.message, words, name);
    t.regex(err!.message, /at offset 1024/, name);
  }
});

test('absurd declared sizes are corrupt before anything is buffered', async (t) => {
  const bytes = await good;
  const list = await members();
  // a user record declared at 2 MiB (over the 1 MiB record limit)
  const user = find(list, 'alice@example.org/user.json');
  const big = Buffer.from(bytes.subarray(0, user.offset + 512));
  const { encodeFileHeader } = await import('../../../src/archive/tar-header.js');
  encodeFileHeader(user.name, 2 * 1024 * 1024, 0).copy(big, user.offset);
  const e1 = await t.throwsAsync(readAll(chunked(Buffer.concat([big, Buffer.alloc(4096)]))), { instanceOf: ArchiveCorruptError });
  t.regex(e1!.message, /member "users\/alice@example.org\/user.json" at offset 1024: declared size 2097152 is absurd/);
  // a body declared over 2^40 (pax size)
  const body = find(list, 'INBOX/1.eml');
  const head = Buffer.from(bytes.subarray(0, body.offset));
  const e2 = await t.throwsAsync(readAll(chunked(Buffer.concat([head, encodeFileHeader(body.name, 2 ** 41, 0), Buffer.alloc(4096)]))), { instanceOf: ArchiveCorruptError });
  t.regex(e2!.message, new RegExp(`member "${body.name}" at offset ${body.offset}: declared size ${2 ** 41} is absurd`));
});

test('non-zero bytes after the end-of-archive marker are corrupt', async (t) => {
  const bytes = await good;
  const err = await t.throwsAsync(readAll(chunked(Buffer.concat([bytes, Buffer.from('garbage')]))), { instanceOf: ArchiveCorruptError });
  t.regex(err!.message, new RegExp(`offset ${bytes.length}: data after the end-of-archive marker`));
  // zero padding (as tar's 10240-byte records) is fine
  const { entries } = await readAll(chunked(Buffer.concat([bytes, Buffer.alloc(9000)])));
  t.is(entries.at(-1)!.type, 'trailer');
});
