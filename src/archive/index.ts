/**
 * The dump format (spec: formats/dump-v1.md): a pax tar stream of self-checking JSON records and
 * message bodies, with a TOC and a trailer at the end, optionally zstd-compressed (./compression).
 *
 *   writer.ts         DumpWriter: ordered writing, hashing while streaming, TOC spool, trailer
 *   reader.ts         readDump: one-pass verified reading (plain or zstd), no seeking
 *   random-access.ts  openDumpFile: trailer + TOC + one message by id, from a seekable file
 *   records.ts        record and TOC line types, format version constants
 *   member-names.ts   member name grammar: encode user/mailbox segments, parse names back
 *   record-codec.ts   the "check" field of JSON records
 *   toc.ts            TOC lines: build, parse, compare
 *   tar-header.ts     ustar/pax header blocks; tar-parser.ts streaming tar reader with offsets
 *   body-spool.ts     memory/temp-file spool for bodies awaiting verification
 *   parts.ts          messages stored as parts (v2): parts rules, base64 line encoder, assembler
 *   blob-spool.ts     the one-pass reader's temp directory of blobs seen so far (v2)
 *   limits.ts         every buffer bound of the format
 *
 * The archive never imports src/storage: operations map between storage types and these records.
 */
export { DumpWriter, type DumpWriterOptions, type WriterPart, type WrittenMessage } from './writer.js';
export { encodedLength } from './parts.js';
export { encodeBase64Lines } from '../core/base64-lines.js';
export { readDump, type DumpEntry, type ReadOptions } from './reader.js';
export { openDumpFile, type DumpFile } from './random-access.js';
export * from './records.js';
export { HEADER_MEMBER, TOC_MEMBER, TRAILER_MEMBER, blobMember, mailboxMember, messageMembers, userMember, parseMemberName, type ParsedMember } from './member-names.js';
export { parseTocLine } from './toc.js';
