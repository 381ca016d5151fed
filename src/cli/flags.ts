/** Flag definitions shared by several commands, so help texts stay identical. */
import { Flags } from '@oclif/core';

export const storeFlags = {
  location: Flags.string({
    summary: 'Dovecot mail_location of the store, e.g. maildir:~/Maildir:LAYOUT=fs or sdbox:/srv/mail/%u.',
    description: 'Variables %u %n %d %h and ~ are expanded per user. Without it, on a Dovecot host, doveconf gives mail_location.',
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
