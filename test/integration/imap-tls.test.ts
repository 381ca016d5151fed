/**
 * IMAP over TLS against a real Dovecot with a self-signed certificate made by the test: imaps:// and
 * STARTTLS on the plain port both work with --imap-ca; a certificate that is not trusted is refused
 * with exit 77 and a hint, before anything is read or written.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { freePort, requireDovecot, startDovecot, type DovecotInstance } from '../helpers/dovecot.js';
import { runCli } from '../helpers/cli.js';
import { makeTempDir, removeTempDir } from '../helpers/temp.js';

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

if (requireDovecot(test)) {
  if (!hasOpenssl) {
    if (process.env.CI === 'true') test('openssl is available (required when CI=true)', (t) => t.fail('openssl is missing: .ci/run installs it'));
    else test.skip('IMAP TLS tests: openssl is not installed', () => undefined);
  } else {
    let dv: DovecotInstance;
    let dir: string;
    let imapsPort: number;
    test.before(async () => {
      dir = await makeTempDir('mv-tls-');
      const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', `${dir}/key.pem`, '-out', `${dir}/cert.pem`, '-days', '2'], { encoding: 'utf8' });
      if (made.status !== 0) throw new Error(`openssl: ${made.stderr}`);
      imapsPort = await freePort();
      dv = await startDovecot({
        extraConfig: `ssl = yes\nssl_cert = <${dir}/cert.pem\nssl_key = <${dir}/key.pem\nservice imap-login {\n  inet_listener imaps {\n    address = 127.0.0.1\n    port = ${imapsPort}\n  }\n}\n`,
      });
      await writeFile(`${dir}/pw`, `${dv.masterPassword}\n`, { mode: 0o600 });
    });
    test.after.always(async () => {
      await dv?.stop();
      await removeTempDir(dir);
    });

    const backupArgs = (url: string, extra: string[] = []): string[] => ['backup', '--imap', url, '--master-user', dv.masterUser, '--password-file', `${dir}/pw`, ...extra];

    test('imaps:// and STARTTLS both work with --imap-ca; the dumps hold the message', async (t) => {
      const user = await dv.addUser(`tls${Date.now() % 100000}`, 'maildir');
      await dv.doveadmOk(['save', '-u', user.name], Buffer.from('From: a@example.org\nSubject: over TLS\nMessage-ID: <tls@example.org>\n\nhello\n'));
      for (const url of [`imaps://127.0.0.1:${imapsPort}`, `imap://127.0.0.1:${dv.imapPort}`]) {
        const out = path.join(dir, `${url.split(':')[0]}.mvd`);
        const r = await runCli(backupArgs(url, ['--imap-ca', `${dir}/cert.pem`, '--user', user.name, '-o', out]));
        t.is(r.code, 0, `${url}: ${r.stderr}`);
        const l = await runCli(['list', out, '--json']);
        t.deepEqual(JSON.parse(l.stdout.toString()).messages.map((m: { summary: { subject: string } }) => m.summary.subject), ['over TLS']);
      }
      // Dovecot logs each login with "TLS" when the session was encrypted (imaps, or after STARTTLS).
      const logins = (await dv.readLog(1 << 20)).split('\n').filter((l) => l.includes('Login:') && l.includes(`<${user.name}>`));
      t.true(logins.length >= 2, logins.join('\n'));
      for (const l of logins) t.regex(l, /TLS/, l);
    });

    test('imaps:// to the plain IMAP port: a usage error saying the server does not speak TLS there, not OpenSSL\'s text', async (t) => {
      const user = await dv.addUser(`tlsp${Date.now() % 100000}`, 'maildir');
      const r = await runCli(backupArgs(`imaps://127.0.0.1:${dv.imapPort}`, ['--imap-ca', `${dir}/cert.pem`, '--user', user.name, '-o', path.join(dir, 'plain.mvd')]));
      t.is(r.code, 2, r.stderr);
      t.regex(r.stderr, /does not speak TLS on this port/);
      t.notRegex(r.stderr, /ssl3_get_record|0A00010B/);
    });

    test('--imap-ca naming a file with no certificate (a key): a usage error saying so, before connecting', async (t) => {
      const user = await dv.addUser(`tlsk${Date.now() % 100000}`, 'maildir');
      const r = await runCli(backupArgs(`imaps://127.0.0.1:${imapsPort}`, ['--imap-ca', `${dir}/key.pem`, '--user', user.name, '-o', path.join(dir, 'key.mvd')]));
      t.is(r.code, 2, r.stderr);
      t.regex(r.stderr, /holds no certificate in PEM form/);
    });

    test('a certificate that is not trusted: exit 77 naming it, with a hint, and no dump', async (t) => {
      const user = await dv.addUser(`tlsn${Date.now() % 100000}`, 'maildir');
      const out = path.join(dir, 'untrusted.mvd');
      const r = await runCli(backupArgs(`imaps://127.0.0.1:${imapsPort}`, ['--user', user.name, '-o', out]));
      t.is(r.code, 77, r.stderr);
      t.regex(r.stderr, /TLS certificate is not trusted/);
      t.regex(r.stderr, /--imap-ca/);
      t.is(spawnSync('test', ['-e', out]).status, 1, 'no dump file');
    });
  }
}
