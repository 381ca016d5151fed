/** Bounds every reader buffer and every declared size (spec: formats/dump-v1.md, "Limits"). */

/** Largest JSON record member (header, user, mailbox, message record, trailer) and largest TOC line. */
export const MAX_RECORD_BYTES = 1024 * 1024;
/** Largest pax extended header a reader accepts. */
export const MAX_PAX_BYTES = 64 * 1024;
/** Largest declared member size a reader accepts (2^40 bytes = 1 TiB). */
export const MAX_MEMBER_BYTES = 2 ** 40;
/** Bodies up to this size are spooled in memory by the reader; larger ones go to a temp file. */
export const MAX_MEMORY_SPOOL_BYTES = 8 * 1024 * 1024;
/** The trailer's JSON text is padded with spaces to exactly this many bytes. */
export const TRAILER_BYTES = 1024;
/** Tar block size. */
export const BLOCK = 512;
/** Summary fields (from, subject, messageId, date) are cut to this many UTF-16 code units by the writer. */
export const MAX_SUMMARY_FIELD = 998;
