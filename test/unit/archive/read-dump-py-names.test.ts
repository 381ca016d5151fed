/**
 * Member names must be in canonical encoded form (formats/dump-v1.md section 4, "Reading a name"):
 * both readers reject a segment that decoding then encoding does not give back. The dump is written
 * sound (mailbox "a.b", stored as "a%2Eb") and its members renamed; the readers stop at the first
 * renamed member, before anything that the rename made stale (TOC, trailer).
 */
import test from 'ava';
import { Readable } from 'node:stream';
import { ArchiveCorruptError } from '../../../src/core/errors.js';
import { DumpWriter } from '../../../src/archive/writer.js';
import { HEADER, chunked, collector, mailbox, message, packMembers, readAll, splitMembers } from './sample-dump.js';
import { hasPython, readDumpPyBytes } from './read-dump-py.js';

const USER = 'alice@example.org';

async function dotDump(): Promise<Buffer> {
  const out = collector();
  const writer = await DumpWriter.create(out.stream, HEADER);
  await writer.writeUser({ user: USER, subscriptions: [] });
  await writer.writeMailbox({ ...mailbox(USER, 'a.b', []).record, uidSet: '1' });
  const m = message(USER, 'a.b', 1, 'Subject: dots\n\nx\n');
  await writer.writeMessage(m.input, Readable.from([m.body]));
  await writer.finish();
  return out.bytes();
}

async function renamed(segment: string): Promise<Buffer> {
  const members = await splitMembers(await dotDump());
  return packMembers(members.map((m) => ({ ...m, name: m.name.replace('/mailboxes/a%2Eb/', `/mailboxes/${segment}/`) })));
}

test('the sound dump reads in both readers (mailbox "a.b" is stored as a%2Eb)', async (t) => {
  const dump = await dotDump();
  t.true((await splitMembers(dump)).some((m) => m.name === `users/${USER}/mailboxes/a%2Eb/mailbox.json`));
  t.is((await readAll(chunked(dump))).entries.length, 5);
  if (!hasPython) return t.pass('python3 missing: read_dump.py not run');
  const py = readDumpPyBytes(t, dump);
  t.is(py.status, 0, py.stderr);
});

for (const [segment, why] of [
  ['a.b', 'a raw "." in a mailbox segment'],
  ['a%2eb', 'lowercase hex'],
  ['%61%2Eb', 'a byte encoded that needs no encoding'],
] as const) {
  test(`a mailbox segment "${segment}" (${why}) is rejected by both readers`, async (t) => {
    const dump = await renamed(segment);
    const member = `users/${USER}/mailboxes/${segment}/mailbox.json`;
    const err = await t.throwsAsync(readAll(chunked(dump)), { instanceOf: ArchiveCorruptError });
    t.true(err!.message.includes(member), err!.message);
    if (!hasPython) return;
    const py = readDumpPyBytes(t, dump);
    t.is(py.status, 65, py.stdout);
    t.true(py.stderr.startsWith(`read_dump.py: ${member}: segment '${segment}': not in canonical encoded form`), py.stderr);
  });
}
