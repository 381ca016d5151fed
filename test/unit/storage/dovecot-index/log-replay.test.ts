import test from 'ava';
import { IndexState } from '../../../../src/storage/dovecot-index/index-state.js';
import { applyRecord } from '../../../../src/storage/dovecot-index/log-replay.js';
import { LogType } from '../../../../src/storage/dovecot-index/transaction-log.js';

/** A KEYWORD_UPDATE record (mail_transaction_keyword_update): modify_type, pad, name_size, name, pad4, uid pairs. */
function keywordUpdate(remove: boolean, name: string, uid1: number, uid2 = uid1): Buffer {
  const n = Buffer.from(name, 'utf8');
  const head = 4 + n.length;
  const rec = Buffer.alloc(((head + 3) & ~3) + 8);
  rec[0] = remove ? 1 : 0;
  rec.writeUInt16LE(n.length, 2);
  n.copy(rec, 4);
  rec.writeUInt32LE(uid1, rec.length - 8);
  rec.writeUInt32LE(uid2, rec.length - 4);
  return rec;
}

function stateWith(...uids: number[]): IndexState {
  const s = new IndexState();
  for (const uid of uids) s.messages.push({ uid, flags: 0, keywords: null, ext: null, modseq: 0n, expunged: false });
  return s;
}

const apply = (s: IndexState, data: Buffer): void => applyRecord(s, { offset: 40, type: LogType.KEYWORD_UPDATE, data }, '/x/dovecot.index.log');
const keywordsOf = (s: IndexState, uid: number): string[] => [...(s.lookup(uid)!.keywords ?? [])].map((k) => s.keywords[k]!).sort();

test('keyword names match case-insensitively (ASCII), as Dovecot\'s keywords_hash: "$junk" is the existing "$Junk"', (t) => {
  const s = stateWith(1, 2);
  apply(s, keywordUpdate(false, '$Junk', 1));
  apply(s, keywordUpdate(false, '$junk', 2)); // a second session that did not know "$Junk" yet
  t.deepEqual(s.keywords, ['$Junk'], 'one keyword, spelled as first created');
  t.deepEqual(keywordsOf(s, 1), ['$Junk']);
  t.deepEqual(keywordsOf(s, 2), ['$Junk']);
  apply(s, keywordUpdate(true, '$JUNK', 1, 2));
  t.deepEqual(keywordsOf(s, 1), [], 'a remove in another spelling clears it');
  t.deepEqual(keywordsOf(s, 2), []);
});

test('keyword case folding is ASCII only, as strcasecmp in the C locale', (t) => {
  const s = stateWith(1);
  apply(s, keywordUpdate(false, 'Über', 1));
  apply(s, keywordUpdate(false, 'über', 1));
  t.deepEqual(s.keywords, ['Über', 'über']);
});
