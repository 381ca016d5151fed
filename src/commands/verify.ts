import * as Args from '@oclif/core/args';
import { MailvaultCommand } from '../cli/base-command.js';
import { formatBytes, note } from '../cli/output.js';
import { openDumpInput } from '../cli/input.js';
import { verify, verifyErrorOf, type VerifySummary } from '../operations/verify.js';
import { exitStatusHelp } from '../cli/help.js';

export default class Verify extends MailvaultCommand {
  static override summary = 'Check a dump completely: every hash, the order rules, the TOC and the trailer.';

  static override description = `Reads the whole dump (decompressing zstd if needed) and checks every tar header, every record's check field, every message's size and sha256, the member order rules, the table of contents against what was read, and the trailer's digest of the whole stream. Exit status 0 means a restore of this dump would find nothing wrong with it.

${exitStatusHelp()}`;

  static override examples = [
    { command: '<%= config.bin %> verify full.mvd.zst', description: 'Check a dump file.' },
    { command: 'zstd -dc full.mvd.zst | <%= config.bin %> verify -', description: 'Check a dump from a pipe.' },
  ];

  static override strict = false;

  static override args = {
    dump: Args.string({ description: 'Dump file(s), or - for stdin.', required: true }),
  };

  async run(): Promise<unknown> {
    const { argv, flags } = await this.parse(Verify);
    this.debugEnabled = flags.debug;
    const results: (VerifySummary & { dump: string })[] = [];
    for (const dump of argv as string[]) {
      const s = await verify(await openDumpInput(dump));
      results.push({ dump, ...s });
      if (s.ok) {
        note(`verify ${dump}: ok: ${s.users} users, ${s.mailboxes} mailboxes, ${s.messages} messages, ${formatBytes(s.bytes)}; created ${s.header?.created ?? '?'} (${s.header?.kind ?? '?'}); ${s.seconds.toFixed(1)} s`);
      } else {
        const err = verifyErrorOf(s);
        note(`verify ${dump}: FAILED after ${s.messages} good messages`);
        if (err) throw err;
      }
    }
    return results.length === 1 ? results[0] : { dumps: results };
  }
}
