/** Flag definitions shared by several commands, so help texts stay identical. */
import * as Flags from '@oclif/core/flags';

export const storeFlags = {
  location: Flags.string({
    summary: 'Dovecot mail_location of the store, e.g. maildir:~/Maildir:LAYOUT=fs or sdbox:/srv/mail/%u.',
    description: 'Variables %u %n %d %h and ~ are expanded per user. Options: LAYOUT=fs, UTF-8, INBOX=, INDEX=, CONTROL=, ALT= (dbox) and DIRNAME= (dbox); ALTNOCHECK, INDEXCACHE=, LISTINDEX= and VOLATILEDIR= change nothing for mailvault. Other options Dovecot knows (DIRNAME= for Maildir, MAILBOXDIR=, FULLDIRNAME=, SUBSCRIPTIONS=, ...) are refused, and so are unknown ones, as Dovecot refuses them (option names are case-sensitive). Without it, on a Dovecot host, doveconf gives mail_location.',
    helpValue: 'LOCATION',
  }),
  'users-file': Flags.string({ summary: 'Dovecot passwd-file listing users, homes and per-user userdb_mail.', helpValue: 'FILE' }),
  'dovecot-config': Flags.string({ summary: 'dovecot.conf to ask doveconf/doveadm with (-c).', helpValue: 'FILE' }),
  'lock-timeout': Flags.integer({ summary: 'Seconds to wait for a Dovecot lock (dovecot-uidlist.lock).', default: 120, min: 1 }),
};

export const selectionFlags = {
  user: Flags.string({ char: 'u', summary: 'Only this user (repeatable).', multiple: true, helpValue: 'USER' }),
  mailbox: Flags.string({ char: 'm', summary: 'Only mailboxes matching this name or pattern (* any, % any but "/"; repeatable).', multiple: true, helpValue: 'PATTERN' }),
};

/**
 * A live IMAP server instead of files: backup reads through it, restore writes through it (APPEND as a
 * master user, so quota, indexes, SIS and open sessions see restored mail). The password never goes on
 * the command line: --password-file, or the environment variable named by --password-env.
 */
export const imapFlags = {
  imap: Flags.string({
    summary: 'Read from / write into this IMAP server instead of files: imap://HOST:PORT (STARTTLS when offered) or imaps://HOST:PORT.',
    helpValue: 'URL',
    exclusive: ['location', 'users-file', 'dovecot-config'],
  }),
  'master-user': Flags.string({
    summary: 'Log in as each user through this master user (SASL PLAIN authzid; Dovecot: a passdb with master = yes).',
    helpValue: 'NAME',
    dependsOn: ['imap'],
  }),
  'password-file': Flags.string({
    summary: 'File whose first line is the IMAP password (the master user\'s with --master-user).',
    helpValue: 'FILE',
    dependsOn: ['imap'],
    exclusive: ['password-env'],
  }),
  'password-env': Flags.string({
    summary: 'Environment variable holding the IMAP password (default MAILVAULT_IMAP_PASSWORD when no --password-file).',
    helpValue: 'NAME',
    dependsOn: ['imap'],
  }),
  'imap-insecure': Flags.boolean({ summary: 'Do not verify the IMAP server\'s TLS certificate (test servers only).', dependsOn: ['imap'] }),
  'imap-ca': Flags.string({ summary: 'PEM file with the CA that signed the IMAP server\'s certificate.', helpValue: 'FILE', dependsOn: ['imap'] }),
};
