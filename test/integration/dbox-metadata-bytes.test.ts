/**
 * dbox metadata values that are not UTF-8, written by a live Dovecot 2.3: a POP3 UIDL (`P`) and a
 * message GUID (`G`) brought over from a Maildir by dsync (`doveadm backup`), as a migration does.
 * Dovecot keeps them as bytes; mailvault must carry them without change and, for mdbox, still match G
 * against the 128-bit GUID in the mailbox index (mail_generate_guid_128_hash of the bytes).
 */
import { createHash } from 'node:crypto';
import { chown, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { openMdboxStore } from '../../src/storage/dbox/multi/index.js';
import { openSdboxStore } from '../../src/storage/dbox/single/index.js';
import { parseLocation } from '../../src/storage/location.js';
import type { MessageInfo } from '../../src/storage/types.js';
import { requireDovecot, dovecotForFile, type DovecotInstance } from '../helpers/dovecot.js';
import { storedMessage } from '../helpers/fingerprint.js';
import { readAll } from '../unit/storage/dbox/store-expectations.js';

const message = (n: number): Buffer => Buffer.from(`From: a@example.org\nSubject: migrated ${n}\nMessage-ID: <mig-${n}@example.org>\n\nbody ${n}\n`);

/** Per UID: the G and P values put into the Maildir's uidlist (latin1 bytes; UID 2's P is UTF-8 text). */
const G = new Map([[1, Buffer.from('old-guid-\xe9t\xe9-\xff1', 'latin1')], [2, Buffer.from('old-guid-2', 'latin1')]]);
const P = new Map([[1, Buffer.from('UIDL\xe9\xfe1', 'latin1')], [2, Buffer.from('uidl-\u00fc-2', 'utf8')]]);

if (requireDovecot(test)) {
  let dv!: DovecotInstance;
  dovecotForFile(test, (started) => (dv = started));

  test('P and G that are not UTF-8 are carried byte-exactly from sdbox and mdbox written by dsync', async (t) => {
    const user = await dv.addUser('popmig', 'maildir');
    for (let i = 1; i <= 2; i++) await dv.doveadmOk(['save', '-u', user.name, '-m', 'INBOX'], message(i));
    const bytes = new Map<number, Buffer>();
    for (const uid of [1, 2]) bytes.set(uid, await storedMessage(dv, user.name, 'INBOX', uid));

    // Give the Maildir records the G and P extensions a migration leaves (dovecot-uidlist, section 1.4).
    const maildir = path.join(user.home, 'Maildir');
    const uidlistPath = path.join(maildir, 'dovecot-uidlist');
    const uidlist = await readFile(uidlistPath);
    const out: Buffer[] = [];
    for (const line of uidlist.toString('latin1').split('\n')) {
      const m = /^(\d+) (.*):(.*)$/.exec(line);
      if (m === null) {
        out.push(Buffer.from(line, 'latin1'));
        continue;
      }
      const uid = Number(m[1]);
      out.push(Buffer.concat([Buffer.from(`${uid} G`), G.get(uid)!, Buffer.from(' P'), P.get(uid)!, Buffer.from(` :${m[3]}`, 'latin1')]));
    }
    await writeFile(uidlistPath, Buffer.concat(out.flatMap((b, i) => (i === 0 ? [b] : [Buffer.from('\n'), b]))));
    await rm(path.join(maildir, 'dovecot.index.cache'), { force: true });
    if (dv.runningAsRoot) await chown(uidlistPath, dv.mailUid, dv.mailGid);
    const pop3 = await dv.doveadm(['-f', 'tab', 'fetch', '-u', user.name, 'pop3.uidl', 'mailbox', 'INBOX', 'uid', '1']);
    t.true(pop3.stdoutBytes.includes(P.get(1)!), 'Dovecot serves the Maildir POP3 UIDL as bytes');

    for (const driver of ['sdbox', 'mdbox'] as const) {
      const location = `${driver}:${user.home}/${driver}`;
      await dv.doveadmOk(['backup', '-u', user.name, location]);
      const dovecotView = await dv.doveadm(['-o', `mail_location=${location}`, '-f', 'tab', 'fetch', '-u', user.name, 'guid pop3.uidl', 'mailbox', 'INBOX', 'uid', '1']);
      t.true(dovecotView.stdoutBytes.includes(G.get(1)!) && dovecotView.stdoutBytes.includes(P.get(1)!), `${driver}: Dovecot keeps G and P as bytes`);

      const loc = parseLocation(location, { user: user.name, home: user.home });
      const store = driver === 'sdbox' ? await openSdboxStore(loc, user.name, { attachmentDir: null }) : await openMdboxStore(loc, user.name, { attachmentDir: null });
      const reader = await store.openMailbox('INBOX');
      const got: MessageInfo[] = [];
      for await (const m of reader.messages()) {
        got.push(m);
        t.true((await readAll(await reader.openMessage(m))).equals(bytes.get(m.uid)!), `${driver}: UID ${m.uid} body`);
      }
      await reader.close();
      t.deepEqual(got.map((m) => m.uid), [1, 2], `${driver}: both messages read`);
      const [one, two] = got as [MessageInfo, MessageInfo];
      // Not text: known by Dovecot's 128-bit GUID of the bytes, the bytes themselves in extra as base64.
      t.is(one.guid, createHash('sha1').update(G.get(1)!).digest().subarray(4).toString('hex'), `${driver}: UID 1 GUID`);
      t.is(one.extra?.['dbox.G.base64'], G.get(1)!.toString('base64'), `${driver}: UID 1 G bytes`);
      t.is(one.extra?.['dbox.P.base64'], P.get(1)!.toString('base64'), `${driver}: UID 1 P bytes`);
      t.is(one.extra?.['dbox.P'], undefined, `${driver}: no mangled P text`);
      // Text stays text, as before.
      t.is(two.guid, 'old-guid-2', `${driver}: UID 2 GUID`);
      t.is(two.extra?.['dbox.P'], 'uidl-\u00fc-2', `${driver}: UID 2 P`);
      t.is(two.extra?.['dbox.P.base64'], undefined);
    }
  });
}
