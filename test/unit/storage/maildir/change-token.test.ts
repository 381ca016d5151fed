import fs from 'node:fs';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { maildirChangeToken, SETTLE_MS } from '../../../../src/storage/maildir/change-token.js';
import { tempDirSync } from '../../../helpers/temp.js';

function mailbox(t: ExecutionContext): { dir: string; token: (nowMs?: number) => string | null } {
  const dir = tempDirSync(t, 'mv-token-');
  for (const sub of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(dir, sub));
  fs.writeFileSync(path.join(dir, 'dovecot-uidlist'), '3 V1 N3 G' + 'ab'.repeat(16) + '\n1 :1.M1P1.h,S=5:2,S\n2 :2.M2P2.h,S=5:2,\n');
  fs.writeFileSync(path.join(dir, 'cur', '1.M1P1.h,S=5:2,S'), 'one\n\n');
  fs.writeFileSync(path.join(dir, 'cur', '2.M2P2.h,S=5:2,'), 'two\n\n');
  // "now" far enough ahead that every time is settled, without waiting in the test
  const later = (): number => Date.now() + SETTLE_MS + 1000;
  return { dir, token: (nowMs = later()) => maildirChangeToken(path.join(dir, 'dovecot-uidlist'), path.join(dir, 'dovecot-keywords'), dir, dir, nowMs) };
}

test('the same mailbox, untouched, gives the same token', (t) => {
  const m = mailbox(t);
  const a = m.token();
  t.truthy(a);
  t.is(m.token(), a);
});

test('no token while a change is younger than the settle time (coarse file-system clock), or without a uidlist', (t) => {
  const m = mailbox(t);
  t.is(m.token(Date.now()), null);
  fs.rmSync(path.join(m.dir, 'dovecot-uidlist'));
  t.is(m.token(), null);
});

test('an mtime set into the future (Dovecot bumps dovecot-keywords past the last one it saw) still gives a token once the ctime has settled', (t) => {
  const m = mailbox(t);
  fs.writeFileSync(path.join(m.dir, 'dovecot-keywords'), '0 $Done\n');
  const future = new Date(Date.now() + 60_000);
  fs.utimesSync(path.join(m.dir, 'dovecot-keywords'), future, future);
  const a = m.token();
  t.truthy(a, 'a settled ctime gives a token whatever the mtime');
  t.is(m.token(), a);
  // the mtime is still part of the token
  const later = new Date(Date.now() + 120_000);
  fs.utimesSync(path.join(m.dir, 'dovecot-keywords'), later, later);
  t.not(m.token(), a);
});

// File-system times tick with the kernel's coarse clock (1-10 ms): each change waits for a later tick,
// as a real change after a backup always comes in one (the settle time guarantees it).
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 25));

test('each kind of change gives another token', async (t) => {
  const m = mailbox(t);
  const seen = new Set<string>();
  const next = async (what: string): Promise<void> => {
    await tick();
    const tok = m.token();
    t.truthy(tok, what);
    t.false(seen.has(tok!), `${what} did not change the token`);
    seen.add(tok!);
  };
  await next('start');
  await tick();
  fs.renameSync(path.join(m.dir, 'cur', '2.M2P2.h,S=5:2,'), path.join(m.dir, 'cur', '2.M2P2.h,S=5:2,F'));
  await next('a flag change (rename in cur/)');
  await tick();
  fs.writeFileSync(path.join(m.dir, 'new', '3.M3P3.h,S=5'), 'new\n\n');
  await next('a delivery into new/');
  await tick();
  fs.rmSync(path.join(m.dir, 'cur', '1.M1P1.h,S=5:2,S'));
  await next('an expunge');
  await tick();
  fs.appendFileSync(path.join(m.dir, 'dovecot-uidlist'), '3 :3.M3P3.h,S=5\n');
  await next('a uidlist append');
  await tick();
  fs.writeFileSync(path.join(m.dir, 'dovecot-keywords'), '0 $Done\n');
  await next('a keywords file');
  const tmp = path.join(m.dir, 'dovecot-uidlist.tmp');
  await tick();
  fs.copyFileSync(path.join(m.dir, 'dovecot-uidlist'), tmp);
  fs.renameSync(tmp, path.join(m.dir, 'dovecot-uidlist'));
  await next('a uidlist rewritten with the same bytes (new inode)');
});
