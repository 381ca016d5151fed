import { randomUUID } from 'node:crypto';
import * as Flags from '@oclif/core/flags';
import { MailvaultCommand } from '../cli/base-command.js';
import { imapFlags, storeFlags, selectionFlags } from '../cli/flags.js';
import { formatBytes, formatRate, note, openDumpOutput, stderrProgress } from '../cli/output.js';
import { resolveUsers, sourceDescription, sourceOpener } from '../cli/stores.js';
import { DumpWriter } from '../archive/writer.js';
import { parseCompressionOption } from '../archive/compression/compression-option.js';
import { backup, defaultBackupOptions, readAheadPays } from '../operations/backup.js';
import { ExitCode } from '../core/exit-codes.js';
import { stat } from 'node:fs/promises';
import { InputNotFoundError, UsageError } from '../core/errors.js';
import { DEFAULT_DEDUP_MIN_SIZE } from '../operations/attachments.js';
import { exitStatusHelp } from '../cli/help.js';
import { IncrementalPlanner, resolveSince, type SinceSpec } from '../operations/incremental.js';
import { CursorRecorder, readStateFile, withUsersNotBackedUp, writeStateFile, type CursorState } from '../operations/cursors.js';

export default class Backup extends MailvaultCommand {
  static override summary = 'Write users\' mail into a dump (to a file or stdout).';

  static override description = `Reads every message of the selected users byte-exactly, with UID, GUID, flags, keywords, INTERNALDATE, mailbox state (GUID, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ) and subscriptions, and writes one dump: a tar stream described in mailvault-dump(5). The dump goes to stdout (never to a terminal) or to --output FILE (written as FILE.partial, then fsynced and renamed when complete, the directory fsynced too; a device or FIFO such as /dev/null is written in place).

Attachments are stored once per dump: with Dovecot single-instance attachment storage (sdbox/mdbox with mail_attachment_dir, found in Dovecot's configuration or given with --attachment-dir) each attachment file becomes one blob however many mails and users share it; for other sources --dedup-attachments splits large base64 MIME parts into blobs. Messages are never altered: restore and extract rebuild them byte-exactly and check their sha256. Dumps are format version 4 (mailvault-dump(5)); mailvault before this release cannot read them.

Incrementals (--since): a dump of what changed since an earlier run, its new messages, flag changes, expunges and mailbox changes. With --since @STATE-FILE, a mailbox whose change token (stamps of its uidlist or index files, or IMAP STATUS with HIGHESTMODSEQ where the server has CONDSTORE) is the one that run recorded is not read at all; a mailbox changed in the last 2 seconds (by the ctime of those files) has no token and is read. Where the store has no modseq (Maildir, IMAP without CONDSTORE), an incremental from a state file carries the flags of the messages in blocks of 128 UIDs whose flags changed (the state file keeps a digest per block), from a dump the flags of every older message of each mailbox it reads. The state file is described in formats/state-file.md. With --since TIME (no cursors) new messages are those saved at or after TIME: by their save date (dbox, IMAP with SAVEDATE), for Maildir by the file's ctime or mtime, whichever is later (a move, a copy or a save with an old date sets the ctime); over IMAP without SAVEDATE only INTERNALDATE is known, which a message moved or copied between folders keeps: such a message is missed there, so use @FILE (cursors) with such servers. A mailbox an incremental does not read (--mailbox leaves it out, or it cannot be opened: exit 3) is carried as the base had it, so that a restore of the chain keeps it; that needs cursors, so --mailbox with --since TIME is refused.

Messages that cannot be read (or were expunged while the backup ran) are skipped, listed in the summary, and make the exit status 3; a body that fails part-way through its copy stops the run instead, as the dump cannot take back what it wrote. The --state-file cursor does not count them as held (nor does --since @DUMP of a full dump): each later incremental tries them again, reports them again while they stay unreadable, and once one reads, carries its mailbox whole (so a restore gets every UID in order). A dbox message whose file ends after its whole body but inside the metadata that follows (disk full, a crash) is backed up as Dovecot serves it, with what the index knows (the save date for INTERNALDATE where the received date is lost), and listed as a warning without changing the exit status; with attachment storage (SIS) it is skipped, as Dovecot fails it too.

Maildir keywords: a file name holds 26 keyword letters (named in dovecot-keywords); further keywords Dovecot keeps only in the mailbox's index (dovecot.index and its log), and the backup reads them from there, as IMAP serves them. If that index cannot be read, the backup says so for the mailbox (a warning) and carries the keywords of the file names.

Maildir files Dovecot has not listed yet (no line in dovecot-uidlist: mail an MTA or procmail put into new/, a folder nobody opened since) have no UID. The backup gives them UIDs as Dovecot's next sync would (under the dovecot-uidlist lock, in the time order of their names; Dovecot then serves them with those UIDs) and backs them up: the only change a backup makes to a mail store. Where it cannot (a read-only snapshot, the lock held longer than --lock-timeout) or must not (--read-only), each such file is listed as skipped (exit 3) and the next incremental reads its mailbox again.

Threads: the main one reads, hashes and frames the messages; with --compress zstd a worker compresses. Where the machine has a core to spare beside those (2 or more cores uncompressed, 3 or more with zstd), Maildir message files are also read and hashed ahead in another thread. Each of these threads uses at most one core.

${exitStatusHelp()}`;

  static override examples = [
    { command: '<%= config.bin %> backup --location maildir:/srv/mail/%u/Maildir --user alice > alice.mvd', description: 'One user, uncompressed, to stdout.' },
    { command: '<%= config.bin %> backup --all-users | zstd > full.mvd.zst', description: 'All users of this Dovecot host, compressed by an external zstd.' },
    { command: '<%= config.bin %> backup --users-file /etc/dovecot/users --all-users --compress zstd:3 -o full.mvd.zst', description: 'All users of a passwd-file, compressed internally (seekable).' },
  ];

  static override flags = {
    ...storeFlags,
    ...imapFlags,
    ...selectionFlags,
    'all-users': Flags.boolean({ summary: 'All users of --users-file, or of Dovecot\'s userdb.', exclusive: ['user'] }),
    'attachment-dir': Flags.string({ summary: 'Dovecot mail_attachment_dir (dbox single-instance attachments).', helpValue: 'DIR' }),
    'dedup-attachments': Flags.string({
      summary: 'Store base64 attachments of at least MIN_SIZE bytes (default 128k) once, for sources without SIS (Maildir, IMAP). Give it alone or as --dedup-attachments=MIN_SIZE (k, M suffixes).',
      helpValue: 'MIN_SIZE',
    }),
    compress: Flags.string({ summary: 'Compression: none, zstd or zstd:LEVEL (1-19).', default: 'none', helpValue: 'METHOD' }),
    output: Flags.string({ char: 'o', summary: 'Write the dump to FILE instead of stdout.', helpValue: 'FILE' }),
    since: Flags.string({
      summary: 'Incremental: only what changed since TIME: ISO 8601 (no offset = UTC), a span back from now (24h, 7d), or @FILE (an earlier dump or --state-file: its per-mailbox cursors).',
      helpValue: 'TIME',
    }),
    'state-file': Flags.string({ summary: 'Read the base cursors from FILE when it exists (with --since) and write this run\'s cursors to it when the dump is complete.', helpValue: 'FILE' }),
    'read-only': Flags.boolean({ summary: 'Change nothing in the mail store: Maildir files Dovecot has not listed yet are reported as skipped (exit 3) instead of given UIDs.' }),
  };

  async run(): Promise<unknown> {
    // --dedup-attachments takes an optional value: alone it means the default size.
    const argv = this.argv.map((a) => (a === '--dedup-attachments' ? `--dedup-attachments=${DEFAULT_DEDUP_MIN_SIZE}` : a));
    const { flags } = await this.parse(Backup, argv);
    const dedup = flags['dedup-attachments'] === undefined ? null : { minSize: parseSize(flags['dedup-attachments']) };
    if (flags['attachment-dir'] !== undefined) await checkAttachmentDir(flags['attachment-dir']);
    this.debugEnabled = flags.debug;
    if (flags.json && !flags.output) throw new UsageError('--json prints to stdout, where the dump goes: give --output FILE too');
    const compression = parseCompressionOption(flags.compress);
    // Incremental: the cursors come from @FILE, else from an existing --state-file; a plain TIME without
    // either compares by save date and carries full flag tables.
    let since: SinceSpec | null = null;
    let base: CursorState | null = null;
    if (flags.since !== undefined) {
      since = await resolveSince(flags.since);
      if (since.caveat !== undefined) note(`warning: ${since.caveat}`);
      base = since.base ?? (flags['state-file'] !== undefined ? await readStateFile(flags['state-file']) : null);
      // Without cursors an incremental cannot say what the mailboxes it leaves out hold: a restore of
      // the chain would read them as deleted.
      if (base === null && (flags.mailbox ?? []).length > 0) {
        throw new UsageError(`--mailbox cannot be used with --since ${flags.since} (a time, no cursors): the incremental would leave the other mailboxes out, and a restore of the chain would read them as deleted`, {
          hint: 'give --since @STATE-FILE or @DUMP (cursors: the mailboxes left out are carried as that run had them), or back up every mailbox',
        });
      }
    }
    const resolved = await resolveUsers(flags, { requireUsers: true });
    const out = openDumpOutput(flags.output);
    const abort = new AbortController();
    const onSignal = (): void => abort.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const progress = stderrProgress('backup');
    const created = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const runId = randomUUID();
    const recorder = flags['state-file'] !== undefined ? new CursorRecorder(runId, created) : null;
    let writer: DumpWriter | null = null;
    let skipped = 0;
    let incomplete = 0;
    let result: unknown;
    try {
      writer = await DumpWriter.create(
        out.stream,
        {
          creator: `mailvault ${this.config.version}`,
          created,
          runId,
          kind: since ? 'incremental' : 'full',
          base: base ? { runId: base.runId, created: base.created } : since ? { runId: 'none', created: since.sinceIso } : null,
          source: sourceDescription(resolved),
          options: {
            mailboxes: flags.mailbox ?? [],
            compress: flags.compress,
            users: resolved.users.map((u) => u.name),
            ...(resolved.attachmentDir !== null ? { attachmentDir: resolved.attachmentDir } : {}),
            ...(dedup !== null ? { dedupAttachments: dedup.minSize } : {}),
            ...(since ? { since: since.sinceIso, sinceInterpretation: since.interpretation, cursors: base ? 'per-mailbox' : 'none: by save date, full flag tables, expunges from UID sets' } : {}),
          },
        },
        // Parts only when attachments can be stored once.
        { compression, parts: resolved.attachmentDir !== null || dedup !== null, startWorkersEarly: true, outputReleasesChunks: out.releasesChunks },
      );
      const summary = await backup(
        resolved.users.map((u) => u.name),
        sourceOpener(resolved, flags),
        writer,
        defaultBackupOptions({ mailboxes: flags.mailbox ?? [], signal: abort.signal, dedupAttachments: dedup, readAhead: readAheadPays(compression.type !== 'none'), incremental: since ? new IncrementalPlanner(base ? { ...since, base } : since, base !== null) : null, recorder, ...(progress.onProgress ? { onProgress: progress.onProgress } : {}) }),
      );
      const trailer = await writer.finish();
      await out.commit();
      if (recorder) {
        // Users of the base this run did not back up keep their cursors: those it was to back up (their
        // store could not be opened) and, when --user chose some, the others. A user absent from the
        // whole list (--all-users, a users file) was deleted and is dropped.
        const listed = new Set(resolved.users.map((u) => u.name));
        const chosen = (flags.user ?? []).length > 0;
        await writeStateFile(flags['state-file']!, withUsersNotBackedUp(recorder.state(), base, (u) => chosen || listed.has(u)));
      }
      progress.done();
      result = { ...summary, runId: trailer.runId, output: flags.output ?? '-', compression: flags.compress };
      note(`backup: ${summary.users} users, ${summary.mailboxes} mailboxes, ${summary.messages} messages, ${formatBytes(summary.bytes)} in ${summary.seconds.toFixed(1)} s (${formatRate(summary.bytes, summary.seconds)})`);
      if (summary.messagesAsParts > 0) note(`backup: ${summary.messagesAsParts} messages with attachments stored once: ${summary.blobs} distinct attachments, ${formatBytes(summary.blobBytes)}`);
      if (since) {
        note(`backup: incremental since ${since.interpretation}${base ? `; base run ${base.runId}` : '; no cursors: new = saved at or after that time, full flag tables, expunges derived from the UID sets'}`);
        const unchanged = summary.changes.filter((c) => c.status === 'unchanged');
        if (unchanged.length > 0) {
          const notRead = unchanged.filter((c) => c.notRead === true).length;
          note(`backup: ${unchanged.length} mailboxes unchanged${notRead > 0 ? ` (${notRead} not read: same change token as in the base)` : ''}`);
        }
        const unselected = summary.changes.filter((c) => c.status === 'unselected').length;
        if (unselected > 0) note(`backup: ${unselected} mailboxes not selected (--mailbox): carried as the base has them, so that a restore of the chain keeps them`);
        for (const c of summary.changes) {
          if (c.status === 'unchanged' || c.status === 'unselected') continue;
          const what = c.status === 'reset' ? 'UIDVALIDITY changed: whole mailbox again' : c.status === 'incomplete' ? 'the base dump lacks messages it skipped: whole mailbox again' : c.status === 'new' ? 'new mailbox: whole' : c.status === 'deleted' ? 'deleted' : c.status === 'kept' ? 'could not be read (see the skipped list): carried as the base has it, so that a restore keeps its earlier mail; the next run reads it' : `${c.newMessages} new, ${c.flagEntries} flag entries${c.expunged !== null ? `, ${c.expunged} expunged` : ''}`;
          note(`backup: ${c.user} ${c.mailbox}${c.renamedFrom !== null ? ` (renamed from ${c.renamedFrom})` : ''}: ${what}`);
        }
      }
      for (const w of summary.warnings) note(`warning: ${w.user} ${w.mailbox}${w.uid === undefined ? '' : ` UID ${w.uid}`}: ${w.reason}`);
      for (const s of summary.skipped) {
        note(`skipped: ${s.user}${s.mailbox ? ` ${s.mailbox}` : ''}${s.uid ? ` UID ${s.uid}` : ''}: ${s.reason}`);
        if (s.hint) note(`  hint: ${s.hint}`);
      }
      skipped = summary.skipped.length;
      // A mailbox the backup could read only in part (its Maildir index unreadable: keywords kept only
      // there are missing): as incomplete as a skipped message.
      incomplete = summary.warnings.filter((w) => w.uid === undefined).length;
    } catch (e) {
      progress.done();
      if (writer) await writer.abort(e instanceof Error ? e : new Error(String(e))).catch(() => {});
      await out.discard();
      throw e;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    if (skipped > 0 || incomplete > 0) {
      note(skipped > 0 ? `backup: ${skipped} items skipped; the dump is complete for everything else` : `backup: ${incomplete} mailboxes backed up without what the warnings above name`);
      if (this.jsonEnabled()) this.logJson(result);
      this.exit(ExitCode.PARTIAL);
    }
    return result;
  }
}

/** "131072", "128k", "1M", "1m" -> bytes. */
function parseSize(value: string): number {
  const m = /^(\d+)([kKmM]?)$/.exec(value.trim());
  if (!m) throw new UsageError(`--dedup-attachments: "${value}" is not a size`, { hint: 'give bytes, or a number with k or M, e.g. --dedup-attachments=128k' });
  const n = Number(m[1]) * (m[2] === '' ? 1 : m[2]!.toLowerCase() === 'k' ? 1024 : 1024 * 1024);
  if (n < 1) throw new UsageError('--dedup-attachments: the minimum size must be at least 1 byte');
  return n;
}

/** --attachment-dir must name an existing directory: a typo would otherwise skip every SIS message. */
async function checkAttachmentDir(dir: string): Promise<void> {
  let isDir = false;
  try {
    isDir = (await stat(dir)).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) {
    throw new InputNotFoundError(`--attachment-dir ${dir}: no such directory`, { path: dir, hint: "give Dovecot's mail_attachment_dir (doveconf -h mail_attachment_dir)" });
  }
}
