/**
 * storage/imap: the IMAP driver (read and write) over imapflow. Backup reads any IMAP server;
 * restore writes into a live server through APPEND as a master user.
 */
export { openImapStore, IMAP_CAPABILITIES, ImapStore } from './store.js';
export type { ImapConnectionOptions } from './connection.js';
export { parseImapUrl } from './connection.js';
export { readPassword } from './password.js';
