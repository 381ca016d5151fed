/**
 * Reading one mailbox over IMAP.
 *
 * - Metadata: UID SEARCH gives the UIDs (kept as one number array: 8 bytes a message), then UID
 *   FETCH (UID FLAGS INTERNALDATE RFC822.SIZE [MODSEQ] [X-GUID] [SAVEDATE]) in pages of PAGE_SIZE.
 *   The mailbox lock is held per page only, so a caller may open bodies while iterating.
 * - Bodies: BODY.PEEK[]<offset.length> in chunks of CHUNK_SIZE, one chunk per _read(), so memory is
 *   bounded and the socket is read only as fast as the consumer takes bytes.
 *
 * What is served is not what is stored: IMAP serves CRLF line ends, and Dovecot stores LF. `size` is
 * RFC822.SIZE, the size of the bytes this reader yields, so a dump made over IMAP holds CRLF bytes
 * while a dump made from the files holds the stored bytes.
 *
 * NUL bytes: a plain BODY[] FETCH does not serve them: Dovecot sends 0x80 in their place. A chunk
 * holding 0x80 is fetched again as BINARY[] where the server offers it, and its NULs are taken back
 * (restoreNuls). Without BINARY the 0x80 bytes stay (the size is the same, so nothing can tell).
 * A body that ends short of RFC822.SIZE fails with an IntegrityError.
 */
import { Readable } from 'node:stream';
import { IntegrityError, StorageNotFoundError } from '../../core/errors.js';
import type { MailboxInfo, MailboxReader, MessageInfo, MessageListOptions } from '../types.js';
import type { ImapSession } from './connection.js';
import { call, rawCommand, withMailbox } from './session-calls.js';
import { FetchParseError, parseMessageInfo, uidSet } from './fetch-parser.js';
import { ServerRejectedError } from '../../core/errors.js';

const PAGE_SIZE = 500;
export const CHUNK_SIZE = 256 * 1024;

/** Which optional FETCH items the server answers. */
export interface FetchFeatures {
  modseq: boolean;
  xGuid: boolean;
  saveDate: boolean;
  /** FETCH BINARY[] (RFC 3516). */
  binary: boolean;
}

export function metadataItems(features: FetchFeatures): { type: 'ATOM'; value: string }[] {
  const names = ['UID', 'FLAGS', 'INTERNALDATE', 'RFC822.SIZE'];
  if (features.modseq) names.push('MODSEQ');
  if (features.xGuid) names.push('X-GUID');
  if (features.saveDate) names.push('SAVEDATE');
  return names.map((value) => ({ type: 'ATOM' as const, value }));
}

/** UIDs >= minUid (and with modseq > changedSince) in ascending order. Call inside withMailbox. */
async function searchUids(session: ImapSession, options: MessageListOptions, useModseq: boolean): Promise<number[]> {
  const min = Math.max(1, options.minUid ?? 1);
  const query: Record<string, unknown> = { uid: `${min}:*` };
  if (options.changedSinceModseq !== undefined && useModseq) query.modseq = BigInt(options.changedSinceModseq);
  const found = (await session.client.search(query, { uid: true })) || [];
  // "n:*" always matches the highest UID, even below n (RFC 3501 6.4.8)
  return [...(Array.isArray(found) ? found : [])].filter((u) => u >= min).sort((a, b) => a - b);
}

/** Fetches metadata of `uids` (ascending). Call inside withMailbox. */
export async function fetchMetadata(session: ImapSession, mailbox: string, uids: readonly number[], features: FetchFeatures): Promise<MessageInfo[]> {
  if (uids.length === 0) return [];
  const rows: MessageInfo[] = [];
  let parseError: Error | null = null;
  await rawCommand(session, 'UID FETCH', [{ type: 'SEQUENCE', value: uidSet(uids) }, metadataItems(features)], (items) => {
    // Unsolicited FETCH rows (flag updates from other sessions) lack some items: skip them.
    if (!items.has('RFC822.SIZE') || !items.has('INTERNALDATE')) return;
    try {
      rows.push(parseMessageInfo(items));
    } catch (err) {
      parseError ??= err as Error;
    }
  });
  if (parseError) {
    throw new ServerRejectedError(`the server's FETCH answer in mailbox "${mailbox}" cannot be read: ${(parseError as FetchParseError).message}`, { mailbox, cause: parseError });
  }
  const wanted = new Set(uids);
  const byUid = new Map(rows.filter((r) => wanted.has(r.uid)).map((r) => [r.uid, r]));
  return [...byUid.values()].sort((a, b) => a.uid - b.uid);
}

/** A Readable of one message's bytes as served, fetched in chunks. */
export class ImapBodyStream extends Readable {
  private offset = 0;
  private fetching = false;

  constructor(
    private readonly session: ImapSession,
    private readonly path: string,
    private readonly mailbox: string,
    private readonly message: Pick<MessageInfo, 'uid' | 'size'>,
    private readonly expectedUidValidity: number | null,
    /** The server supports FETCH BINARY[] (used to recover NUL bytes, see restoreNuls). */
    private readonly binaryFetch: boolean,
  ) {
    super({ highWaterMark: CHUNK_SIZE });
  }

  override _read(): void {
    if (this.fetching) return;
    this.fetching = true;
    this.fetchChunk().then(
      (chunk) => {
        this.fetching = false;
        if (chunk === null) this.push(null);
        else this.push(chunk);
      },
      (err: unknown) => {
        this.fetching = false;
        this.destroy(err as Error);
      },
    );
  }

  private async fetchChunk(): Promise<Buffer | null> {
    const { uid, size } = this.message;
    if (this.ended) return this.finish();
    const c = { what: 'read a message of', mailbox: this.mailbox, uid };
    const got = await withMailbox(this.session, this.path, c, async () => {
      const uv = this.session.client.mailbox ? Number(this.session.client.mailbox.uidValidity) : null;
      if (this.expectedUidValidity !== null && uv !== null && uv !== this.expectedUidValidity) {
        throw new StorageNotFoundError(`mailbox "${this.mailbox}" was recreated on the server (UIDVALIDITY ${this.expectedUidValidity} -> ${uv}) while it was being read`, {
          mailbox: this.mailbox,
          uid,
          hint: 'run the backup again',
        });
      }
      const res = await this.session.client.fetchOne(String(uid), { uid: true, source: { start: this.offset, maxLength: CHUNK_SIZE } }, { uid: true });
      // No row, or BODY[] NIL: Dovecot answers NIL for a message another session expunged that this
      // session has not been told of yet. No BODY[] item at all (a row of flags only) reads as the end.
      const source: unknown = res === false ? false : res.source; // typed Buffer | undefined; NIL arrives as false
      if (source === false || source === null) return null;
      const body = Buffer.isBuffer(source) ? source : Buffer.alloc(0);
      if (body.indexOf(0x80) < 0 || !this.binaryFetch) return body;
      // Maybe a NUL served as 0x80: ask the same range as BINARY and take its NULs back.
      const bin = await this.session.client.fetchOne(String(uid), { uid: true, source: { start: this.offset, maxLength: CHUNK_SIZE } }, { uid: true, binary: true });
      return bin === false || !bin.source ? body : restoreNuls(body, bin.source);
    });
    if (got === null) {
      const when = this.offset === 0 ? '' : ` after ${this.offset} of its ${size} bytes were read`;
      throw new StorageNotFoundError(`message UID ${uid} in mailbox "${this.mailbox}" was expunged on the server${when}`, { mailbox: this.mailbox, uid, hint: 'nothing to back up if it was deleted; otherwise run the backup again' });
    }
    const chunk = got;
    this.offset += chunk.length;
    if (this.offset > size) {
      throw new IntegrityError(`message UID ${uid} in mailbox "${this.mailbox}": the server sent more than the ${size} bytes its RFC822.SIZE announced`, { mailbox: this.mailbox, uid });
    }
    if (chunk.length < CHUNK_SIZE || this.offset === size) this.ended = true;
    return chunk.length === 0 ? this.finish() : chunk;
  }

  private ended = false;

  private finish(): null {
    const { uid, size } = this.message;
    if (this.offset !== size) {
      throw new IntegrityError(
        `message UID ${uid} in mailbox "${this.mailbox}": the server served ${this.offset} bytes but its RFC822.SIZE is ${size}; the message cannot be read byte for byte over IMAP`,
        { mailbox: this.mailbox, uid, hint: 'back this mailbox up from the mail files (mailvault backup without --imap) to keep the message byte for byte' },
      );
    }
    return null;
  }
}

/**
 * Dovecot serves a NUL byte as 0x80 in BODY[] (same size), and unchanged in BINARY[]. But BINARY[]
 * also decodes the content-transfer-encoding of a single-part message, so its bytes replace the
 * BODY[] bytes only when the two differ exactly where BODY[] has 0x80 and BINARY[] has NUL; any other
 * difference means BINARY[] decoded something, and the BODY[] bytes are kept.
 */
export function restoreNuls(body: Buffer, binary: Buffer): Buffer {
  if (binary.length !== body.length) return body;
  let changed = false;
  for (let i = 0; i < body.length; i++) {
    if (body[i] === binary[i]) continue;
    if (body[i] === 0x80 && binary[i] === 0x00) {
      changed = true;
      continue;
    }
    return body;
  }
  return changed ? binary : body;
}

/** Bodies fetched ahead in one UID FETCH: up to this many messages, each at most CHUNK_SIZE. */
const PREFETCH_MESSAGES = 32;
/** ... and up to this many bytes in all (the memory the prefetch holds). */
const PREFETCH_BYTES = 4 * 1024 * 1024;

export class ImapMailboxReader implements MailboxReader {
  /** The page of messages messages() last listed, in UID order: what openMessage may fetch ahead. */
  private page: readonly MessageInfo[] = [];
  /**
   * Bodies fetched ahead (by UID), each whole (its length the RFC822.SIZE listed) and without a 0x80
   * byte (which may be a NUL Dovecot replaced: those go through ImapBodyStream and BINARY[]). Taken
   * out when opened; replaced as a whole by the next prefetch, so it holds one batch at most.
   */
  private prefetched = new Map<number, Buffer>();
  /**
   * Messages the next prefetch asks for: halved when a batch is replaced with bodies in it never
   * opened (a caller that skips messages, e.g. a time-based incremental), doubled back when all were.
   */
  private ahead = PREFETCH_MESSAGES;

  constructor(
    private readonly session: ImapSession,
    private readonly path: string,
    readonly info: MailboxInfo,
    private readonly features: FetchFeatures,
  ) {}

  async *messages(options: MessageListOptions = {}): AsyncIterable<MessageInfo> {
    const name = this.info.name;
    const uids = await withMailbox(this.session, this.path, { what: 'list the messages of', mailbox: name }, () => searchUids(this.session, options, this.features.modseq));
    for (let i = 0; i < uids.length; i += PAGE_SIZE) {
      const page = uids.slice(i, i + PAGE_SIZE);
      const rows = await withMailbox(this.session, this.path, { what: 'read message metadata of', mailbox: name }, () => fetchMetadata(this.session, name, page, this.features));
      this.page = rows;
      for (const row of rows) {
        if (options.changedSinceModseq !== undefined && row.modseq !== null && BigInt(row.modseq) <= BigInt(options.changedSinceModseq)) continue;
        yield row;
      }
    }
  }

  async openMessage(message: MessageInfo): Promise<Readable> {
    await call(this.session, { what: 'read a message of', mailbox: this.info.name, uid: message.uid }, async () => undefined);
    let body = this.takePrefetched(message);
    if (body === undefined && message.size > 0 && message.size < CHUNK_SIZE) {
      await this.prefetchFrom(message);
      body = this.takePrefetched(message);
    }
    if (body !== undefined) return Readable.from([body], { objectMode: false });
    return new ImapBodyStream(this.session, this.path, this.info.name, message, this.info.uidValidity, this.features.binary);
  }

  private takePrefetched(message: MessageInfo): Buffer | undefined {
    const body = this.prefetched.get(message.uid);
    if (body === undefined) return undefined;
    this.prefetched.delete(message.uid);
    return body.length === message.size ? body : undefined;
  }

  /**
   * Fetch `message` and the small messages listed after it on the current page in one UID FETCH
   * (BODY.PEEK[]<0.CHUNK_SIZE>): one command instead of one per message (a 10k-message mailbox read
   * over IMAP spent about half its time waiting for the answers to one FETCH each). Only bodies the
   * server served whole and without a 0x80 byte are kept; any other (expunged meanwhile, served
   * short, maybe a NUL) is read as before, by ImapBodyStream, which reports it.
   */
  private async prefetchFrom(message: MessageInfo): Promise<void> {
    const wanted = new Map<number, number>([[message.uid, message.size]]);
    let bytes = message.size;
    const at = this.page.findIndex((m) => m.uid === message.uid);
    this.ahead = this.prefetched.size > 0 ? Math.max(1, this.ahead >> 1) : Math.min(PREFETCH_MESSAGES, this.ahead * 2);
    for (let i = at < 0 ? this.page.length : at + 1; i < this.page.length && wanted.size < this.ahead; i++) {
      const m = this.page[i]!;
      if (m.size <= 0 || m.size >= CHUNK_SIZE) continue;
      if (bytes + m.size > PREFETCH_BYTES) break;
      wanted.set(m.uid, m.size);
      bytes += m.size;
    }
    const fetched = new Map<number, Buffer>();
    const c = { what: 'read messages of', mailbox: this.info.name, uid: message.uid };
    await withMailbox(this.session, this.path, c, async () => {
      const uv = this.session.client.mailbox ? Number(this.session.client.mailbox.uidValidity) : null;
      // A mailbox recreated meanwhile: nothing kept; ImapBodyStream says what happened.
      if (this.info.uidValidity !== null && uv !== null && uv !== this.info.uidValidity) return;
      for await (const row of this.session.client.fetch(uidSet([...wanted.keys()]), { uid: true, source: { start: 0, maxLength: CHUNK_SIZE } }, { uid: true })) {
        const source: unknown = row.source;
        if (!Buffer.isBuffer(source) || source.length !== wanted.get(row.uid) || source.indexOf(0x80) >= 0) continue;
        fetched.set(row.uid, source);
      }
    });
    this.prefetched = fetched;
  }

  async close(): Promise<void> {}
}
