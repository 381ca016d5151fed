import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { MailvaultCommand } from '../cli/base-command.js';
import { imapFlags, storeFlags, selectionFlags } from '../cli/flags.js';
import { formatBytes, note, stderrProgress } from '../cli/output.js';
import { openImapUser, resolveUsers, sinkOpener } from '../cli/stores.js';
import { openDumpInput } from '../cli/input.js';
import { alteredByServerWarnings, datesNotKeptWarnings, defaultRestoreOptions, keywordsNotStoredWarnings, messagesNotStoredWarnings, type MailboxNotRestored, type RestoreSummary } from '../operations/restore.js';
import { restoreDumps, type RestoreDumpsResult } from '../operations/restore-dumps.js';
import { readListFile, UidSet, type Selection } from '../operations/selection.js';
import { parseTimeFlag } from '../cli/time.js';
import { ExitCode } from '../core/exit-codes.js';
import { exitStatusHelp } from '../cli/help.js';
import path from 'node:path';

export default class Restore extends MailvaultCommand {
  static override summary = 'Restore users, mailboxes or single messages from dumps into a mail store or a live IMAP server.';

  static override description = `Writes the selected messages of a dump into --location (a Dovecot-compatible Maildir, safe while Dovecot runs) or, with --imap, into a live IMAP server: APPEND as --master-user, so quota, indexes, single-instance attachments and the user's open (IDLE) sessions see restored mail at once. The password comes from --password-file or an environment variable (--password-env, default MAILVAULT_IMAP_PASSWORD), never from the command line.

Reading: the dump is read in one pass (a file, or - for stdin; zstd is detected and decompressed). For a dump FILE and a narrow selection (--uid, --message-id, --from, --subject, --since, --before, --use-list) only the trailer, the table of contents and the selected messages are read, also inside an internally zstd-compressed dump; a file that cannot be read that way (zstd without seek table, no trailer) is read in one pass.

Into an absent mailbox (recreated if it was deleted), or an empty one that never held mail, the mailbox keeps its GUID and UIDVALIDITY and every message its UID and GUID (Maildir). Into a mailbox that already holds mail, and always over IMAP, messages get new UIDs from the server; flags, keywords and INTERNALDATE are kept, and the bytes are never altered.

Idempotency: a message already in the target mailbox is not written again, so running the same restore twice, or again after a crash or a lost connection, adds nothing twice. Maildir: "already there" means the same GUID. IMAP (the server assigns GUIDs): the same bytes, compared as the server serves them (line ends as CRLF), and the same INTERNALDATE; candidates are found by Message-ID (or date and size) and their bodies hashed. A mailbox holding N such copies receives only the copies beyond N. A copy with the same headers, size and INTERNALDATE but other body bytes is one the server changed when it saved it (Dovecot with mail_attachment_dir re-encodes a base64 attachment that is not in canonical form): it counts as present and a warning names it. Messages are sent in batches of --commit-every; over IMAP each APPEND is atomic (where the server has MULTIAPPEND, as Dovecot does, up to 64 messages go in one APPEND, saved all or none), so a crash leaves whole messages that a rerun finds.

Errors: a refused login (wrong master password) stops before anything is written (exit 77; a login refused for now, as for too many sessions of the user, exits 75); a server that cannot be reached is tried 3 times before exit 75; a server that goes away mid-restore exits 75 and a rerun completes; quota exceeded exits 73. A selection that matches nothing exits 66, also a --user or --mailbox the dump does not hold.

What a target cannot hold is restored as far as it can be and named, and the command exits 3: a mailbox whose name a Maildir++ target cannot store (a "." inside a name from a LAYOUT=fs or dbox store) is left out, the others are restored (give it --to-mailbox, or restore into a LAYOUT=fs Maildir or through IMAP); a message with keywords beyond the 26 a Maildir file name holds is restored with the keywords that get a letter, and the others are named (Dovecot keeps such keywords only in its index, which mailvault does not write: restore through IMAP to keep them). Over IMAP, a subscription the server refuses (to a mailbox that does not exist: Dovecot keeps such subscriptions, but does not take new ones) is named in a warning; a mailbox name the server refuses to CREATE, or that holds the server's separator inside a level, is left out; keywords IMAP cannot carry (8-bit, or with a space or an atom-special) or the server refuses (Dovecot: longer than mail_max_keyword_length, 50 bytes by default) are left out of the message and named; a message of 0 bytes, which Dovecot does not store, is named and not sent. A message whose INTERNALDATE Dovecot does not keep (in the future, over IMAP: it gets the time of saving; before 1970) is restored and named.

Every message is checked against its sha256 before it is written. If the dump is damaged or cut short, what was verified is kept, and the command exits 65 saying where the dump stopped.

Several dump files are a chain: a full dump followed by incrementals ("backup --since"), in order. The chain is checked first (it starts with a full dump; each incremental follows the one before it; a gap or a foreign dump is an error naming it, and nothing is written), the final state is computed from all of them, and each message is written once into its final mailbox with its final flags. With --at TIME, only the dumps made at or before TIME are used: the state at that time.

${exitStatusHelp()}`;

  static override examples = [
    { command: '<%= config.bin %> restore full.mvd --location maildir:/srv/mail/%u/Maildir', description: 'Everything in the dump, into the users\' Maildirs.' },
    { command: "<%= config.bin %> restore full.mvd --location maildir:~/Maildir --users-file /etc/dovecot/users --user alice --mailbox 'Archive/2025' --uid 1234", description: 'One message back into its mailbox.' },
    { command: 'zstd -dc full.mvd.zst | <%= config.bin %> restore - --location maildir:/restore/%u/Maildir', description: 'From a pipe.' },
    { command: "<%= config.bin %> restore full.mvd.zst --imap imap://mail.example.org:143 --master-user restore --password-file /etc/mailvault/master.pw --user alice --message-id '<abc@example.org>'", description: 'One deleted mail back into its mailbox on a running Dovecot, while alice is logged in.' },
    { command: "MAILVAULT_IMAP_PASSWORD=... <%= config.bin %> restore full.mvd --imap imaps://mail.example.org --master-user restore --user alice --mailbox INBOX --since 2026-11-01 --to-mailbox 'Restored/INBOX'", description: 'A month of INBOX into a new folder.' },
    { command: '<%= config.bin %> list full.mvd > todo.list && $EDITOR todo.list && <%= config.bin %> restore full.mvd --use-list todo.list --location ...', description: 'Only the entries left in an edited list.' },
  ];

  static override strict = false;

  static override args = {
    dump: Args.string({ description: 'Dump file(s) to restore, in order, or - for stdin.', required: true }),
  };

  static override flags = {
    ...storeFlags,
    ...imapFlags,
    ...selectionFlags,
    uid: Flags.string({ summary: 'Only messages with these UIDs (e.g. 17, 1:100, 5,9,200:*).', helpValue: 'UIDSET' }),
    'message-id': Flags.string({ summary: 'Only the message(s) with this Message-ID (repeatable).', multiple: true, helpValue: 'ID' }),
    from: Flags.string({ summary: 'Only messages whose From contains this text (case-insensitive).', helpValue: 'TEXT' }),
    subject: Flags.string({ summary: 'Only messages whose Subject contains this text (case-insensitive).', helpValue: 'TEXT' }),
    since: Flags.string({ summary: 'Only messages received (INTERNALDATE) at or after this time (ISO 8601).', helpValue: 'TIME' }),
    before: Flags.string({ summary: 'Only messages received before this time (ISO 8601).', helpValue: 'TIME' }),
    'use-list': Flags.string({ char: 'L', summary: 'Only the entries whose ids are in this edited output of "mailvault list".', helpValue: 'FILE' }),
    'to-user': Flags.string({ summary: 'Restore into this user instead of the original one.', helpValue: 'USER' }),
    'to-mailbox': Flags.string({ summary: 'Restore every selected message into this mailbox.', helpValue: 'MAILBOX' }),
    at: Flags.string({ summary: 'With a chain (full dump, then incrementals): restore the state at this time, using only the dumps made at or before it (ISO 8601, or a span back from now like 2d).', helpValue: 'TIME' }),
    'dry-run': Flags.boolean({ summary: 'Show what would be restored; write nothing.' }),
    'commit-every': Flags.integer({ summary: 'Messages per commit.', default: 500, min: 1 }),
  };

  async run(): Promise<unknown> {
    const { flags, argv } = await this.parse(Restore);
    this.debugEnabled = flags.debug;
    const dumps = argv as string[];
    const selection: Selection = {
      ...(flags.user ? { users: flags.user } : {}),
      ...(flags.mailbox ? { mailboxes: flags.mailbox } : {}),
      ...(flags.uid ? { uids: UidSet.parse(flags.uid) } : {}),
      ...(flags['message-id'] ? { messageIds: flags['message-id'] } : {}),
      ...(flags.from ? { from: flags.from } : {}),
      ...(flags.subject ? { subject: flags.subject } : {}),
      ...(flags.since ? { since: parseTimeFlag('--since', flags.since) } : {}),
      ...(flags.before ? { before: parseTimeFlag('--before', flags.before) } : {}),
      ...(flags['use-list'] ? { ids: await readListFile(flags['use-list'], (m) => note(`warning: ${m}`)) } : {}),
    };
    const resolved = await resolveUsers({ ...flags, user: [] }, { requireUsers: false });
    const progress = stderrProgress('restore');
    const abort = new AbortController();
    const onSignal = (): void => abort.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    // Over IMAP, a refused login is found before the dump is read (and before anything is written).
    const firstTarget = flags['to-user'] ?? (flags.user?.length === 1 ? flags.user[0] : undefined);
    if (resolved.imap && firstTarget !== undefined) await (await openImapUser(resolved.imap, firstTarget)).close();
    const options = defaultRestoreOptions({
      selection,
      commitEvery: flags['commit-every'],
      dryRun: flags['dry-run'],
      signal: abort.signal,
      onWarning: (m) => note(`warning: ${m}`),
      ...(flags['to-user'] ? { toUser: flags['to-user'] } : {}),
      ...(flags['to-mailbox'] ? { toMailbox: flags['to-mailbox'] } : {}),
      ...(progress.onProgress ? { onProgress: progress.onProgress } : {}),
    });
    const verb = flags['dry-run'] ? 'would restore' : 'restored';
    const told = (s: RestoreSummary): string =>
      `${verb} ${s.messages} messages (${formatBytes(s.bytes)}) into ${s.mailboxes.length} mailboxes; ${s.alreadyPresent} already present; ${s.seconds.toFixed(1)} s`;
    let result: RestoreDumpsResult;
    try {
      result = await restoreDumps(dumps, sinkOpener(resolved, flags, { dryRun: flags['dry-run'] }), {
        ...options,
        ...(flags.at !== undefined ? { at: parseTimeFlag('--at', flags.at) } : {}),
        openInput: openDumpInput,
        onFallback: (m) => note(`restore: ${m}`),
        onDumpDone: (dump, summary) => {
          progress.done();
          note(`restore ${dump}: ${told(summary)}`);
          if (!summary.dumpComplete) note(`restore ${dump}: the dump has no trailer: it is incomplete`);
          if (summary.unknownIds.length > 0) note(`warning: list file ids not in ${dump}, skipped: ${summary.unknownIds.join(', ')}`);
        },
      });
    } finally {
      progress.done();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    if (result.kind === 'chain') {
      const summary = result.summary;
      note(`restore chain of ${result.files.length} dumps (${result.files.map((f) => path.basename(f)).join(' -> ')}): ${told(summary)}`);
      const unstored = [...messagesNotStoredWarnings(summary), ...keywordsNotStoredWarnings(summary), ...datesNotKeptWarnings(summary)];
      for (const w of [...alteredByServerWarnings(summary), ...unstored]) note(`warning: ${w}`);
      if (summary.missingCount > 0) {
        for (const m of summary.missing.slice(0, 20)) note(`missing: ${JSON.stringify(m)}`);
        note(`restore: ${summary.missingCount} messages of the final state are in no dump of the chain`);
        if (this.jsonEnabled()) this.logJson(summary);
        this.exit(ExitCode.PARTIAL);
      }
      if (nothingNamedMatched(selection, summary.messages + summary.alreadyPresent, summary.mailboxes.length + (summary.mailboxesNotRestored?.length ?? 0))) this.exit(ExitCode.NOT_FOUND);
      if (unstored.length > 0 || notRestoredNote(summary.mailboxesNotRestored, true)) {
        if (this.jsonEnabled()) this.logJson(summary);
        this.exit(ExitCode.PARTIAL);
      }
      return summary;
    }
    const summaries = result.results.map((r) => r.summary);
    // Matched but not storable (0 bytes over IMAP) counts as matched: said below, exit 3.
    const total = summaries.reduce((n, s) => n + s.messages + s.alreadyPresent + s.mailboxes.reduce((k, m) => k + (m.messagesNotStored?.length ?? 0), 0), 0);
    const anySelective = Boolean(selection.uids || selection.messageIds || selection.from || selection.subject || selection.ids || selection.since !== undefined || selection.before !== undefined);
    // Matched but left out (a name the target cannot hold) is not "not found": said below, exit 3.
    const notRestored = summaries.flatMap((s) => s.mailboxesNotRestored ?? []);
    const notRestoredMessages = notRestored.reduce((n, m) => n + m.messages, 0);
    if (anySelective && total === 0 && notRestoredMessages === 0) {
      note('restore: no message in the dump matched the selection');
      this.exit(ExitCode.NOT_FOUND);
    }
    if (nothingNamedMatched(selection, total, summaries.reduce((n, s) => n + s.mailboxes.length, 0) + notRestored.length)) this.exit(ExitCode.NOT_FOUND);
    const unstored = summaries.flatMap((s) => [...messagesNotStoredWarnings(s), ...keywordsNotStoredWarnings(s), ...datesNotKeptWarnings(s)]);
    for (const w of [...summaries.flatMap((s) => alteredByServerWarnings(s)), ...unstored]) note(`warning: ${w}`);
    if (summaries.some((s) => s.unknownIds.length > 0) || unstored.length > 0 || notRestoredNote(notRestored, false)) {
      if (this.jsonEnabled()) this.logJson({ dumps: summaries });
      this.exit(ExitCode.PARTIAL);
    }
    return { dumps: summaries };
  }
}

/**
 * A selection that names users or mailboxes (--user, --mailbox) of which the dump holds none: a typo
 * must not look like a successful restore of nothing. Said here; the caller exits 66.
 */
function nothingNamedMatched(selection: Selection, messages: number, mailboxes: number): boolean {
  if (!(selection.users || selection.mailboxes) || messages > 0 || mailboxes > 0) return false;
  const named = [...(selection.users ?? []).map((u) => `--user ${JSON.stringify(u)}`), ...(selection.mailboxes ?? []).map((m) => `--mailbox ${JSON.stringify(m)}`)];
  note(`restore: no user or mailbox in the dump matched the selection (${named.join(' ')}); "mailvault list DUMP" shows what it holds`);
  return true;
}

/** The closing line for mailboxes the target could not hold (each had its warning); true if any. */
function notRestoredNote(list: readonly MailboxNotRestored[] | undefined, chain: boolean): boolean {
  if (list === undefined || list.length === 0) return false;
  const messages = list.reduce((n, m) => n + m.messages, 0);
  const ways = chain ? 'restore them into a LAYOUT=fs Maildir or through IMAP' : 'restore them with --to-mailbox NAME, or into a LAYOUT=fs Maildir or through IMAP';
  note(`restore: ${list.length} mailboxes (${messages} messages) not restored, their names cannot be stored in this target: ${list.map((m) => JSON.stringify(m.from)).join(', ')}; ${ways}`);
  return true;
}
