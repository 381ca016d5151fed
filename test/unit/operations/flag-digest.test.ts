import test from 'ava';
import { FLAG_DIGEST_BLOCK, FlagDigestBuilder, parseFlagDigest, type BlockDigests } from '../../../src/operations/flag-digest.js';

type Msg = [uid: number, flags: string[], keywords: string[]];

function digestOf(messages: Msg[], onBlock?: (b: number, d: string) => void): FlagDigestBuilder {
  const b = new FlagDigestBuilder(onBlock ?? null);
  for (const [uid, flags, keywords] of messages) b.add(uid, flags, keywords);
  b.finish();
  return b;
}

const parsed = (text: string): BlockDigests => {
  const p = parseFlagDigest(text);
  if (!(p instanceof Map)) throw new Error(`not parsed: ${String(p)}`);
  return p;
};

const store = (n: number, flagsOf: (uid: number) => string[] = () => ['\\Seen']): Msg[] => Array.from({ length: n }, (_, i) => [i + 1, flagsOf(i + 1), []]);

test('one digest per block of 128 UIDs, in ascending order; the text parses back', (t) => {
  const text = digestOf(store(300)).toString();
  const blocks = parsed(text);
  t.deepEqual([...blocks.keys()], [0, 1, 2]); // UIDs 1-127, 128-255, 256-300
  t.regex(text, /^fd1 128 0:[0-9a-f]{16} 1:[0-9a-f]{16} 2:[0-9a-f]{16}$/);
  t.is(FLAG_DIGEST_BLOCK, 128);
});

test('a flag change, a keyword, an expunge or a new message changes exactly the digest of its block', (t) => {
  const base = parsed(digestOf(store(400)).toString());
  const changedBlocks = (messages: Msg[]): number[] => {
    const now = parsed(digestOf(messages).toString());
    return [...new Set([...base.keys(), ...now.keys()])].filter((b) => base.get(b) !== now.get(b)).sort((a, b) => a - b);
  };
  t.deepEqual(changedBlocks(store(400)), []);
  t.deepEqual(changedBlocks(store(400, (uid) => (uid === 130 ? ['\\Seen', '\\Flagged'] : ['\\Seen']))), [1]);
  t.deepEqual(changedBlocks(store(400).map(([u, f]) => [u, f, u === 5 ? ['$Label1'] : []])), [0]);
  t.deepEqual(changedBlocks(store(400).filter(([u]) => u !== 300)), [2]);
  t.deepEqual(changedBlocks(store(401)), [3]);
  // Flags and keywords are a set: order does not matter.
  const a = parsed(digestOf([[1, ['\\Seen', '\\Answered'], ['b', 'a']]]).toString());
  const b = parsed(digestOf([[1, ['\\Answered', '\\Seen'], ['a', 'b']]]).toString());
  t.deepEqual(a, b);
  // A flag moved from one message to another within a block is a change too.
  const one = parsed(digestOf([[1, ['\\Flagged'], []], [2, [], []]]).toString());
  const other = parsed(digestOf([[1, [], []], [2, ['\\Flagged'], []]]).toString());
  t.not(one.get(0), other.get(0));
});

test('onBlock gets each block as soon as it is complete, with the digest the text records', (t) => {
  const seen: Array<[number, string]> = [];
  const b = digestOf(store(260), (block, d) => seen.push([block, d]));
  t.deepEqual(seen.map(([block]) => block), [0, 1, 2]);
  t.deepEqual(new Map(seen), parsed(b.toString()));
});

test('written() with other flags than scanned updates the block; dropped() leaves the block out', (t) => {
  const scanned = digestOf(store(300));
  const truth = parsed(digestOf(store(300, (uid) => (uid === 200 ? ['\\Deleted'] : ['\\Seen']))).toString());
  scanned.written(10, ['\\Seen'], []); // same flags: no change
  scanned.written(200, ['\\Deleted'], []);
  scanned.written(999, ['\\Deleted'], []); // not scanned: ignored
  t.deepEqual(parsed(scanned.toString()), truth);
  scanned.dropped(260);
  t.deepEqual([...parsed(scanned.toString()).keys()], [0, 1]);
});

test('parseFlagDigest: another scheme or block size is ignored (null); a malformed fd1 text is an error', (t) => {
  t.is(parseFlagDigest('fd2 128 0:0123456789abcdef'), null);
  t.is(parseFlagDigest('fd1 64 0:0123456789abcdef'), null);
  t.deepEqual(parseFlagDigest('fd1 128'), new Map());
  t.regex(String(parseFlagDigest('fd1 128 0:0123')), /not <block>:<16 hex digits>/);
  t.regex(String(parseFlagDigest('fd1 128 3:0123456789abcdef 2:0123456789abcdef')), /ascending/);
  t.regex(String(parseFlagDigest('fd1 128 01:0123456789abcdef')), /not <block>/);
  t.regex(String(parseFlagDigest('fd1')), /block size "" is not a decimal number/);
  t.regex(String(parseFlagDigest('fd1 0128 0:0123456789abcdef')), /block size "0128"/);
});

test('the same UID twice is taken once (as the UID set takes it); a written() UID beyond the last is ignored', (t) => {
  const once = digestOf([[1, ['\\Seen'], []], [2, [], []]]).toString();
  const b = new FlagDigestBuilder();
  b.add(1, ['\\Seen'], []);
  b.add(2, [], []);
  b.add(2, [], []);
  b.written(500, ['\\Flagged'], []);
  t.is(b.toString(), once);
  t.throws(() => b.add(1, [], []), { message: /not ascending/ });
});
