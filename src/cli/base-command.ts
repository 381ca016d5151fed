/**
 * The base of every mailvault command. It owns `catch()`: our typed errors become their exit codes
 * (src/core/exit-codes.ts), the message and hint go to stderr, and under --json an error object goes to
 * stdout: {"error": {"code", "message", "hint"}, "exitCode"}. oclif's own parse errors exit 2.
 */
import { Command } from '@oclif/core/command';
import * as Flags from '@oclif/core/flags';
import { ExitCode } from '../core/exit-codes.js';
import { MailvaultError } from '../core/errors.js';
import { OutputClosedError } from './output.js';

interface OclifExitLike {
  oclif?: { exit?: number };
  code?: string;
}

export abstract class MailvaultCommand extends Command {
  static override enableJsonFlag = true;

  static override baseFlags = {
    debug: Flags.boolean({ description: 'Print internal details of errors (causes, stack).', helpGroup: 'GLOBAL' }),
  };

  /** Set by subclasses after parsing. */
  protected debugEnabled = false;

  protected override async catch(err: Error & OclifExitLike): Promise<unknown> {
    // this.exit() throws an ExitError: let it through.
    if (err.code === 'EEXIT') throw err;
    // The reader of a text listing went away (`mailvault list DUMP | head`): what it did not read was
    // not wanted. Quiet, as other tools end then. (A dump written into a pipe whose reader went away is
    // a failed backup: the writer reports that itself, as an error.)
    if (err instanceof OutputClosedError) return this.exit(ExitCode.SUCCESS);
    let exitCode: number;
    let code: string;
    let hint: string | undefined;
    if (err instanceof MailvaultError) {
      exitCode = err.exitCode;
      code = err.code;
      hint = err.hint;
    } else if (err.oclif?.exit !== undefined) {
      // oclif parse/validation errors
      exitCode = ExitCode.USAGE;
      code = 'USAGE';
      hint = `see: mailvault ${this.id ?? ''} --help`.replace(/\s+--help/, ' --help');
    } else {
      exitCode = ExitCode.FAILURE;
      code = 'UNEXPECTED';
      hint = 'this looks like a bug in mailvault: rerun with --debug and report the output';
    }
    if (this.jsonEnabled()) {
      const details = err instanceof MailvaultError ? err.context : {};
      const extra = (err as { restoreSummary?: unknown }).restoreSummary;
      process.stdout.write(
        JSON.stringify({ error: { code, message: err.message, ...(hint ? { hint } : {}), ...(Object.keys(details).length ? { context: details } : {}) }, ...(extra ? { summary: extra } : {}), exitCode }, null, 2) + '\n',
      );
    }
    process.stderr.write(`mailvault: error: ${err.message}\n`);
    if (hint) process.stderr.write(`hint: ${hint}\n`);
    if (this.debugEnabled || process.env.MAILVAULT_DEBUG) {
      let cause: unknown = err;
      while (cause instanceof Error) {
        process.stderr.write(`${cause.stack ?? cause.message}\n`);
        cause = cause.cause;
        if (cause) process.stderr.write('caused by: ');
      }
    }
    return this.exit(exitCode);
  }
}
