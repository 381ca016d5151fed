import { pipeline } from 'node:stream/promises';
import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { MailvaultCommand } from '../cli/base-command.js';
import { note, openOutputFile } from '../cli/output.js';
import { openDumpInput } from '../cli/input.js';
import { extractMessage, extractMessageFromFile, type MessageRef } from '../operations/extract.js';
import type { Readable } from 'node:stream';
import { exitStatusHelp } from '../cli/help.js';
import type { MessageRecord } from '../archive/records.js';
import { UsageError } from '../core/errors.js';

export default class Extract extends MailvaultCommand {
  static override summary = 'Write one message of a dump as an .eml file (its exact bytes).';

  static override description = `Finds the message by user, mailbox and UID, checks it against its sha256, and writes its exact bytes to --output FILE or stdout. The message's flags, keywords and dates are printed on stderr (and with --json as an object on stdout when --output is given).

${exitStatusHelp()}`;

  static override examples = [
    { command: '<%= config.bin %> extract full.mvd --user alice --mailbox INBOX --uid 17 -o msg.eml', description: 'One message into a file.' },
    { command: "<%= config.bin %> extract full.mvd.zst -u alice -m 'Archive/2025' --uid 3 | less", description: 'Read it.' },
  ];

  static override args = {
    dump: Args.string({ description: 'Dump file, or - for stdin.', required: true }),
  };

  static override flags = {
    user: Flags.string({ char: 'u', summary: 'The message\'s user.', required: true, helpValue: 'USER' }),
    mailbox: Flags.string({ char: 'm', summary: 'The message\'s mailbox (exact name).', required: true, helpValue: 'MAILBOX' }),
    uid: Flags.integer({ summary: 'The message\'s UID.', required: true, min: 1 }),
    output: Flags.string({ char: 'o', summary: 'Write to FILE instead of stdout.', helpValue: 'FILE' }),
  };

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(Extract);
    this.debugEnabled = flags.debug;
    const out = flags.output;
    if (flags.json && !out) throw new UsageError('--json prints to stdout, where the message goes: give --output FILE too');
    const ref: MessageRef = { user: flags.user, mailbox: flags.mailbox, uid: flags.uid };
    // A dump file is read at random (trailer, TOC, the one message); a pipe, or a file that cannot be, is scanned.
    const find = async (consume: (r: MessageRecord, body: Readable) => Promise<void>): Promise<MessageRecord> =>
      (args.dump !== '-' ? await extractMessageFromFile(args.dump, ref, consume) : null) ?? (await extractMessage(await openDumpInput(args.dump), ref, consume));
    let record: MessageRecord;
    if (out) {
      // Written as FILE.partial and renamed when complete; a device or FIFO (/dev/null) in place.
      const output = openOutputFile(out, 'message', true);
      try {
        record = await find((_r, body) => pipeline(body, output.stream));
        await output.commit();
      } catch (e) {
        await output.discard();
        throw e;
      }
    } else {
      record = await find((_r, body) => pipeline(body, process.stdout, { end: false }));
    }
    note(`extract: ${record.user} ${record.mailbox} UID ${record.uid}: ${record.size} bytes, sha256 ${record.sha256}, received ${record.internalDate}, flags ${[...record.flags, ...record.keywords].join(' ') || '-'}`);
    return out ? record : undefined;
  }
}
