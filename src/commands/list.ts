import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { MailvaultCommand } from '../cli/base-command.js';
import { selectionFlags } from '../cli/flags.js';
import { openDumpInput } from '../cli/input.js';
import { writeLine } from '../cli/output.js';
import { formatListItem, listDump, type ListItem } from '../operations/list.js';
import { UidSet } from '../operations/selection.js';
import { exitStatusHelp } from '../cli/help.js';

export default class List extends MailvaultCommand {
  static override summary = 'Print the table of contents of a dump, one editable line per message.';

  static override description = `Prints a header of ";" comment lines (format version, creation time, source), then one line per message:

  <id>; "<user>" "<mailbox>" <uid> <internaldate> <size> <flags> "<from>" "<subject>"

Users and mailboxes appear as comment lines. Edit the output (delete lines or comment them out with ";") and give it to "mailvault restore --use-list FILE" to restore just those messages. With --json, prints one object: {"header", "users", "mailboxes", "messages", "trailer"}, where "messages" has one entry per message; for an incremental dump also "changes", one entry per mailbox: {"user", "mailbox", "added", "flagEntries", "present", "reset"} (messages it adds, flag entries, UIDs the mailbox holds after it, and whether it restarts the mailbox).

${exitStatusHelp()}`;

  static override examples = [
    { command: '<%= config.bin %> list full.mvd', description: 'Everything in a dump.' },
    { command: "<%= config.bin %> list full.mvd.zst --user alice --mailbox 'Archive/*' > todo.list", description: 'Part of a compressed dump, into a list file to edit.' },
    { command: '<%= config.bin %> list full.mvd --json | jq \'.messages[] | select(.summary.subject | test("invoice"; "i"))\'', description: 'Search with jq.' },
  ];

  static override args = {
    dump: Args.string({ description: 'Dump file, or - for stdin.', required: true }),
  };

  static override flags = {
    ...selectionFlags,
    uid: Flags.string({ summary: 'Only messages with these UIDs (e.g. 17, 1:100).', helpValue: 'UIDSET' }),
  };

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(List);
    this.debugEnabled = flags.debug;
    const input = await openDumpInput(args.dump);
    const selection = { ...(flags.user ? { users: flags.user } : {}), ...(flags.mailbox ? { mailboxes: flags.mailbox } : {}), ...(flags.uid ? { uids: UidSet.parse(flags.uid) } : {}) };
    if (flags.json) {
      // Streamed JSON: one object whose arrays are written as the dump is read (no whole-dump buffering).
      const w = (s: string): Promise<void> => writeLine(process.stdout, s, false);
      const arrays = { users: [] as string[], mailboxes: [] as string[], changes: [] as string[] };
      let header = 'null';
      let trailer = 'null';
      let first = true;
      await w('{"messages":[');
      for await (const item of listDump(input, selection)) {
        if (item.kind === 'message') {
          const { kind: _k, ...m } = item;
          await w(`${first ? '' : ','}\n${JSON.stringify(m)}`);
          first = false;
        } else if (item.kind === 'header') header = JSON.stringify(item.header);
        else if (item.kind === 'trailer') trailer = JSON.stringify(item.trailer);
        else if (item.kind === 'user') arrays.users.push(JSON.stringify(item.user));
        else if (item.kind === 'mailbox') arrays.mailboxes.push(JSON.stringify(item.mailbox));
        else {
          const { kind: _k, ...c } = item;
          arrays.changes.push(JSON.stringify(c));
        }
      }
      const changes = arrays.changes.length > 0 ? `,"changes":[${arrays.changes.join(',')}]` : '';
      await w(`\n],"header":${header},"users":[${arrays.users.join(',')}],"mailboxes":[${arrays.mailboxes.join(',')}]${changes},"trailer":${trailer}}\n`);
      return undefined;
    }
    for await (const item of listDump(input, selection) as AsyncIterable<ListItem>) {
      for (const line of formatListItem(item)) await writeLine(process.stdout, line);
    }
    return undefined;
  }
}
