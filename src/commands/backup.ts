import { randomUUID } from 'node:crypto';
import { Flags } from '@oclif/core';
import { MailvaultCommand } from '../cli/base-command.js';
import { storeFlags, selectionFlags } from '../cli/flags.js';
import { formatBytes, formatRate, note, openDumpOutput, stderrProgress } from '../cli/output.js';
import { resolveUsers, sourceDescription, sourceOpener } from '../cli/stores.js';
import { DumpWriter } from '../archive/writer.js';
import { parseCompressionOption } from '../archive/compression/index.js';
import { backup, defaultBackupOptions } from '../operations/backup.js';
import { ExitCode } from '../core/exit-codes.js';
import { UsageError } from '../core/errors.js';
import { exitStatusHelp } from '../cli/help.js';

export default class Backup extends MailvaultCommand {
  static override summary = 'Write users\' mail into a dump (to a file or stdout).';

  static override description = `Reads every message of the selected users byte-exactly, with UID, GUID, flags, keywords, INTERNALDATE, mailbox state (GUID, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ) and subscriptions, and writes one dump: a tar stream described in mailvault-dump(5). The dump goes to stdout (never to a terminal) or to --output FILE (written as FILE.partial and renamed when complete).

Messages that cannot be read are skipped, listed in the summary, and make the exit status 3.

${exitStatusHelp()}`;

  static override examples = [
    { command: '<%= config.bin %> backup --location maildir:/srv/mail/%u/Maildir --user alice > alice.mvd', description: 'One user, uncompressed, to stdout.' },
    { command: '<%= config.bin %> backup --all-users | zstd > full.mvd.zst', description: 'All users of this Dovecot host, compressed by an external zstd.' },
    { command: '<%= config.bin %> backup --users-file /etc/dovecot/users --all-users --compress zstd:3 -o full.mvd.zst', description: 'All users of a passwd-file, compressed internally (seekable).' },
  ];

  static override flags = {
    ...storeFlags,
    ...selectionFlags,
    'all-users': Flags.boolean({ summary: 'All users of --users-file, or of Dovecot\'s userdb.', exclusive: ['user'] }),
    'attachment-dir': Flags.string({ summary: 'Dovecot mail_attachment_dir (dbox single-instance attachments).', helpValue: 'DIR' }),
    compress: Flags.string({ summary: 'Compression: none, zstd or zstd:LEVEL (1-19).', default: 'none', helpValue: 'METHOD' }),
    output: Flags.string({ char: 'o', summary: 'Write the dump to FILE instead of stdout.', helpValue: 'FILE' }),
  };

  async run(): Promise<unknown> {
    const { flags } = await this.parse(Backup);
    this.debugEnabled = flags.debug;
    if (flags.json && !flags.output) throw new UsageError('--json prints to stdout, where the dump goes: give --output FILE too');
    const compression = parseCompressionOption(flags.compress);
    const resolved = await resolveUsers(flags, { requireUsers: true });
    const out = openDumpOutput(flags.output);
    const abort = new AbortController();
    const onSignal = (): void => abort.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const progress = stderrProgress('backup');
    const created = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    let writer: DumpWriter | null = null;
    let skipped = 0;
    let result: unknown;
    try {
      writer = await DumpWriter.create(
        out.stream,
        {
          creator: `mailvault ${this.config.version}`,
          created,
          runId: randomUUID(),
          kind: 'full',
          base: null,
          source: sourceDescription(resolved),
          options: { mailboxes: flags.mailbox ?? [], compress: flags.compress, users: resolved.users.map((u) => u.name) },
        },
        { compression },
      );
      const summary = await backup(
        resolved.users.map((u) => u.name),
        sourceOpener(resolved, flags),
        writer,
        defaultBackupOptions({ mailboxes: flags.mailbox ?? [], signal: abort.signal, ...(progress.onProgress ? { onProgress: progress.onProgress } : {}) }),
      );
      const trailer = await writer.finish();
      await out.commit();
      progress.done();
      result = { ...summary, runId: trailer.runId, output: flags.output ?? '-', compression: flags.compress };
      note(`backup: ${summary.users} users, ${summary.mailboxes} mailboxes, ${summary.messages} messages, ${formatBytes(summary.bytes)} in ${summary.seconds.toFixed(1)} s (${formatRate(summary.bytes, summary.seconds)})`);
      for (const s of summary.skipped) note(`skipped: ${s.user}${s.mailbox ? ` ${s.mailbox}` : ''}${s.uid ? ` UID ${s.uid}` : ''}: ${s.reason}`);
      skipped = summary.skipped.length;
    } catch (e) {
      progress.done();
      if (writer) await writer.abort(e instanceof Error ? e : new Error(String(e))).catch(() => {});
      await out.discard();
      throw e;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    if (skipped > 0) {
      note(`backup: ${skipped} items skipped; the dump is complete for everything else`);
      if (this.jsonEnabled()) this.logJson(result);
      this.exit(ExitCode.PARTIAL);
    }
    return result;
  }
}
