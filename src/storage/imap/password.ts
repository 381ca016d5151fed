/**
 * Reading the IMAP password for front ends: from a file (first line, trailing CR/LF removed) or from
 * an environment variable. Never from argv, where `ps` shows it to every local user.
 */
import { readFile } from 'node:fs/promises';
import { fromSystemError, InputNotFoundError, UsageError } from '../../core/errors.js';

export async function readPassword(source: { file?: string; env?: string }): Promise<string> {
  if ((source.file === undefined) === (source.env === undefined)) {
    throw new UsageError('give the IMAP password with exactly one of --password-file FILE or an environment variable', { hint: 'e.g. --password-file /etc/mailvault/imap-master.pw' });
  }
  let password: string;
  if (source.file !== undefined) {
    let text: string;
    try {
      text = await readFile(source.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new InputNotFoundError(`the password file ${source.file} does not exist`, { path: source.file, cause: err });
      throw fromSystemError(err, 'read the password file', { path: source.file });
    }
    password = text.split(/\r?\n/, 1)[0] ?? '';
    if (password === '') throw new UsageError(`the password file ${source.file} is empty (its first line is the password)`, { path: source.file });
  } else {
    const value = process.env[source.env!];
    if (value === undefined || value === '') throw new UsageError(`the environment variable ${source.env} that should hold the IMAP password is not set or empty`);
    password = value;
  }
  return password;
}
