/**
 * A tiny LMTP client (RFC 2033) for delivering test mail into a private Dovecot through its unix socket:
 * LHLO, then per message MAIL FROM / RCPT TO / DATA (dot-stuffed, CRLF), then QUIT. Every reply code is
 * checked; a refusal throws with the server's words. One connection carries any number of deliveries.
 */
import net from 'node:net';

export interface LmtpReply {
  readonly code: number;
  readonly lines: readonly string[];
}

export class LmtpError extends Error {
  constructor(
    readonly command: string,
    readonly reply: LmtpReply,
  ) {
    super(`LMTP ${command} refused: ${reply.code} ${reply.lines.join(' / ')}`);
    this.name = 'LmtpError';
  }
}

/** Normalises line ends to CRLF, dot-stuffs, and adds the end-of-data marker. */
export function encodeLmtpData(raw: Buffer): Buffer {
  const out: Buffer[] = [];
  let start = 0;
  const pushLine = (line: Buffer): void => {
    if (line.length > 0 && line[0] === 0x2e) out.push(Buffer.from('.'));
    out.push(line, Buffer.from('\r\n'));
  };
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] !== 0x0a) continue;
    const end = i > start && raw[i - 1] === 0x0d ? i - 1 : i;
    pushLine(raw.subarray(start, end));
    start = i + 1;
  }
  // The last line, if the message does not end with a newline (SMTP adds the CRLF before the dot).
  if (start < raw.length) pushLine(raw.subarray(start));
  out.push(Buffer.from('.\r\n'));
  return Buffer.concat(out);
}

export class LmtpClient {
  private buffer = '';
  private readonly replies: LmtpReply[] = [];
  private waiter: { resolve: (r: LmtpReply) => void; reject: (e: Error) => void } | null = null;
  private pendingLines: string[] = [];
  private closedError: Error | null = null;

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.fail(new Error('LMTP connection closed by the server')));
  }

  /** Connects to the unix socket (or host:port), reads the greeting and sends LHLO. */
  static async connect(socketPath: string): Promise<LmtpClient> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ path: socketPath });
      s.once('connect', () => resolve(s));
      s.once('error', (e) => reject(new Error(`cannot connect to LMTP socket ${socketPath}: ${e.message}`)));
    });
    const client = new LmtpClient(socket);
    client.expect('greeting', await client.nextReply(), 220);
    await client.command('LHLO mailvault.test', 250);
    return client;
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).replace(/\r$/, '');
      this.buffer = this.buffer.slice(nl + 1);
      this.pendingLines.push(line.slice(4));
      if (line[3] === '-') continue;
      const reply: LmtpReply = { code: Number(line.slice(0, 3)), lines: this.pendingLines };
      this.pendingLines = [];
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        w.resolve(reply);
      } else this.replies.push(reply);
    }
  }

  private fail(e: Error): void {
    this.closedError ??= e;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.reject(e);
    }
  }

  private nextReply(): Promise<LmtpReply> {
    const queued = this.replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  private expect(command: string, reply: LmtpReply, code: number): LmtpReply {
    if (reply.code !== code) throw new LmtpError(command, reply);
    return reply;
  }

  private async write(data: string | Buffer): Promise<void> {
    if (!this.socket.write(data)) {
      await new Promise<void>((resolve, reject) => {
        const done = (e?: Error): void => {
          this.socket.off('drain', done);
          this.socket.off('error', done);
          this.socket.off('close', done);
          if (e instanceof Error) reject(e);
          else resolve();
        };
        this.socket.on('drain', done);
        this.socket.on('error', done);
        this.socket.on('close', done);
      });
    }
  }

  private async command(line: string, code: number): Promise<LmtpReply> {
    await this.write(`${line}\r\n`);
    return this.expect(line, await this.nextReply(), code);
  }

  /**
   * Delivers one message to the recipients (local parts or addresses). Throws LmtpError if any
   * recipient or the data is refused.
   */
  async deliver(raw: Buffer, recipients: readonly string[], from = 'sender@mailvault.test'): Promise<void> {
    if (recipients.length === 0) throw new Error('LMTP deliver: no recipients');
    await this.command(`MAIL FROM:<${from}>`, 250);
    for (const r of recipients) await this.command(`RCPT TO:<${r}>`, 250);
    await this.command('DATA', 354);
    await this.write(encodeLmtpData(raw));
    // LMTP: one reply per accepted recipient.
    for (const r of recipients) this.expect(`DATA for ${r}`, await this.nextReply(), 250);
  }

  async quit(): Promise<void> {
    try {
      await this.command('QUIT', 221);
    } finally {
      this.socket.destroy();
    }
  }
}

/** Delivers the messages one after another over one connection. */
export async function deliverLmtp(socketPath: string, recipient: string | readonly string[], messages: Iterable<Buffer>): Promise<number> {
  const client = await LmtpClient.connect(socketPath);
  const rcpts = typeof recipient === 'string' ? [recipient] : recipient;
  let n = 0;
  try {
    for (const m of messages) {
      await client.deliver(m, rcpts);
      n++;
    }
  } finally {
    await client.quit().catch(() => undefined);
  }
  return n;
}
