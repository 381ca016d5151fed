/**
 * Maildir stores written by Dovecot with its zlib plugin (`mail_plugins = zlib`, `zlib_save = ...`):
 * each message file holds the compressed bytes, its name's S= the size IMAP serves. The driver must
 * give exactly the bytes Dovecot serves (gzip and zstd, small messages read whole and large ones
 * streamed), and for a compression it does not read (bzip2) say so per message instead of calling the
 * file damaged.
 */
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { compress as zstdCompress } from 'zstd-napi';
import path from 'node:path';
import test from 'ava';
import { UnsupportedMessageError } from '../../src/core/errors.js';
import { parseLocation } from '../../src/storage/location.js';
import { openMaildirStore } from '../../src/storage/maildir/index.js';
import { requireDovecot, startDovecot, type DovecotInstance } from '../helpers/dovecot.js';
import { fingerprintUser, sha256, toCrlf } from '../helpers/fingerprint.js';
import { deliverLmtp, generateMessage } from '../helpers/populate.js';
import { runCli, writeUsersFile } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

/** A message of about 2.5 MB (over the 1 MiB the driver reads whole): streamed. */
function bigMessage(): Buffer {
  const line = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt.\r\n';
  return Buffer.from(`From: a@example.org\r\nTo: b@example.org\r\nSubject: big\r\nMessage-ID: <big@example.org>\r\n\r\n${line.repeat(27_000)}`);
}

const MAGIC: Record<string, Buffer> = { gz: Buffer.from([0x1f, 0x8b]), zstd: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), bz2: Buffer.from('BZh') };

if (requireDovecot(test)) {
  for (const zlibSave of ['gz', 'zstd', 'bz2'] as const) {
    test.serial(`zlib_save = ${zlibSave}: ${zlibSave === 'bz2' ? 'each message is reported as a compression mailvault does not read' : 'the driver gives the bytes Dovecot serves'}`, async (t) => {
      let dv: DovecotInstance | null = null;
      try {
        dv = await startDovecot({ extraConfig: `mail_plugins = $mail_plugins zlib\nplugin {\n  zlib_save = ${zlibSave}\n}\n` });
        const user = await dv.addUser(`z${zlibSave}`, 'maildir');
        await deliverLmtp(dv.lmtpSocket, user.name, [generateMessage(710, 0).raw, generateMessage(710, 1).raw, bigMessage()]);
        // Dovecot did compress them: every file starts with the magic, and is shorter than its S=.
        const cur = path.join(user.home, 'Maildir', 'new');
        const files = await readdir(cur);
        t.is(files.length, 3);
        for (const f of files) {
          const bytes = await readFile(path.join(cur, f));
          t.true(bytes.subarray(0, MAGIC[zlibSave]!.length).equals(MAGIC[zlibSave]!), `${f} is ${zlibSave}`);
          t.true(bytes.length < Number(/,S=(\d+)/.exec(f)![1]), `${f} is compressed`);
        }
        const store = await openMaildirStore(parseLocation(user.mailLocation, { user: user.name, home: user.home }), user.name);
        try {
          const reader = await store.openMailbox('INBOX');
          const mine: { uid: number; sha256: string }[] = [];
          for await (const m of reader.messages()) {
            if (zlibSave === 'bz2') {
              const err = await t.throwsAsync(async () => {
                for await (const _ of await reader.openMessage(m)) void _;
              }, { instanceOf: UnsupportedMessageError });
              t.regex(err!.message, new RegExp(`UID ${m.uid} .* is compressed with bzip2 \\(Dovecot's zlib plugin\\); mailvault reads gzip and zstd only`));
              continue;
            }
            const chunks: Buffer[] = [];
            for await (const c of await reader.openMessage(m)) chunks.push(c as Buffer);
            const body = Buffer.concat(chunks);
            t.is(body.length, m.size, `UID ${m.uid}: S= size`);
            // readMessage (small ones) gives the same.
            if (m.size <= 1024 * 1024) t.true((await reader.readMessage!(m))!.equals(body), `UID ${m.uid} readMessage`);
            mine.push({ uid: m.uid, sha256: sha256(toCrlf(body)) });
          }
          await reader.close();
          if (zlibSave !== 'bz2') {
            const served = (await fingerprintUser(dv, user.name)).mailboxes.find((b) => b.name === 'INBOX')!;
            t.deepEqual(mine, served.messages.map((m) => ({ uid: m.uid, sha256: m.sha256 })));
            t.is(mine.length, 3);
            // The command line too (the read-ahead path, then the main thread for these files): all three, verified.
            const dir = await tempDir(t, 'mv-zlib-');
            const dump = path.join(dir, 'd.mvd');
            const b = await runCli(['backup', '--users-file', await writeUsersFile(dir, [user]), '--user', user.name, '--compress', 'none', '-o', dump]);
            t.is(b.code, 0, b.stderr);
            t.regex(b.stderr, /3 messages/);
            t.is((await runCli(['verify', dump])).code, 0);
          }
        } finally {
          await store.close();
        }
      } finally {
        await dv?.stop();
      }
    });
  }

  // Mail an MTA delivered (names without ,S=) and compressed afterwards by a script, never seen by
  // Dovecot: no uidlist record, so no size anywhere. Dovecot's zlib plugin goes by the first bytes and
  // serves it decompressed; mailvault must back up those bytes (not the compressed file), with that
  // size, or refuse the message — never the compressed bytes as if they were the mail.
  test.serial('compressed files without a recorded size (no S=, no uidlist record): backed up decompressed, as Dovecot serves them', async (t) => {
    let dv: DovecotInstance | null = null;
    try {
      dv = await startDovecot({ extraConfig: 'mail_plugins = $mail_plugins zlib\n' });
      const user = await dv.addUser('zmta', 'maildir');
      await deliverLmtp(dv.lmtpSocket, user.name, [generateMessage(711, 0).raw]); // creates the Maildir and its uidlist
      const md = path.join(user.home, 'Maildir');
      const plain = [generateMessage(711, 1).raw, generateMessage(711, 2).raw, bigMessage(), generateMessage(711, 3).raw].map((b) => Buffer.from(b.toString('latin1').replace(/\r\n/g, '\n'), 'latin1'));
      const stored = [gzipSync(plain[0]!), zstdCompress(plain[1]!), gzipSync(plain[2]!), gzipSync(plain[3]!).subarray(0, 40)];
      const names = stored.map((_, k) => `${1_700_000_100 + k}.M${k}P7.mta`);
      for (const [k, name] of names.entries()) await writeFile(path.join(md, 'new', name), stored[k]!);
      const dir = await tempDir(t, 'mv-zlib-mta-');
      const dump = path.join(dir, 'd.mvd');
      const b = await runCli(['backup', '--users-file', await writeUsersFile(dir, [user]), '--user', user.name, '--compress', 'none', '-o', dump]);
      // The fourth file is cut short: reported (exit 3), not backed up as its compressed bytes.
      t.is(b.code, 3, b.stderr);
      t.regex(b.stderr, /UID 5 .*starts as gzip data but does not decompress, and no size is recorded/);
      t.regex(b.stderr, /4 messages/);
      t.is((await runCli(['verify', dump])).code, 0);
      // What the dump holds is what Dovecot serves, message by message (UIDs 2-4 given by mailvault's
      // assignment, which Dovecot then reads from the uidlist). Dovecot fails to FETCH the damaged file
      // ("Internal error"), which would stop the fingerprint: it goes first.
      await rm(path.join(md, 'new', names[3]!));
      const served = (await fingerprintUser(dv, user.name)).mailboxes.find((m) => m.name === 'INBOX')!;
      for (const uid of [1, 2, 3, 4]) {
        const x = await runCli(['extract', dump, '--user', user.name, '--mailbox', 'INBOX', '--uid', String(uid), '-o', path.join(dir, `${uid}.eml`)]);
        t.is(x.code, 0, x.stderr);
        const body = await readFile(path.join(dir, `${uid}.eml`));
        t.is(sha256(toCrlf(body)), served.messages.find((m) => m.uid === uid)!.sha256, `UID ${uid}`);
        if (uid > 1) t.true(body.equals(plain[uid - 2]!), `UID ${uid}: the decompressed bytes`);
      }
    } finally {
      await dv?.stop();
    }
  });
}
