// A server that ends the session with an untagged BYE: the error names the server's words (Dovecot's
// "IMAP session state is inconsistent, please relogin." after rebuilding an index under the session),
// not a bare "connection closed". A minimal IMAP server on 127.0.0.1 plays the part.
import test from 'ava';
import net from 'node:net';
import { ServerUnavailableError } from '../../../../src/core/errors.js';
import { openSession } from '../../../../src/storage/imap/connection.js';
import { call } from '../../../../src/storage/imap/session-calls.js';

/** Answers OK to everything until a SELECT, which gets the BYE and a closed connection. */
function byeServer(bye: string): Promise<net.Server> {
  const server = net.createServer((socket) => {
    socket.write('* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake ready\r\n');
    let buf = '';
    socket.on('data', (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      let nl: number;
      while ((nl = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        const [tag, command = ''] = line.split(' ');
        if (tag === undefined || tag === '' || tag.startsWith('*')) continue;
        const cmd = command.toUpperCase();
        if (cmd === 'AUTHENTICATE' && !line.includes(' PLAIN ')) socket.write('+ \r\n');
        if (cmd === 'SELECT') {
          socket.end(`* BYE ${bye}\r\n`);
          return;
        }
        if (cmd === 'CAPABILITY') socket.write('* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n');
        socket.write(`${tag} OK done\r\n`);
      }
    });
    socket.on('error', () => undefined);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

test('a BYE from the server ends the session with its words in the error (exit 75 class)', async (t) => {
  const server = await byeServer('IMAP session state is inconsistent, please relogin.');
  t.teardown(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const session = await openSession({ url: `imap://127.0.0.1:${port}`, user: 'u', password: 'p', tls: false });
  try {
    const err = await t.throwsAsync(call(session, { what: 'open', mailbox: 'INBOX' }, () => session.client.mailboxOpen('INBOX')));
    t.true(err instanceof ServerUnavailableError, String(err));
    t.regex(err!.message, /server unavailable \(the server closed the connection: "IMAP session state is inconsistent, please relogin\."\)/);
    // the next call on the dead session says the same
    const again = await t.throwsAsync(call(session, { what: 'open', mailbox: 'INBOX' }, () => session.client.mailboxOpen('INBOX')));
    t.regex(again!.message, /please relogin/);
  } finally {
    session.client.close();
  }
});
