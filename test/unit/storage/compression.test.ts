import test from 'ava';
import { deflateRawSync, gzipSync } from 'node:zlib';
import { compressionOf as detectCompression } from '../../../src/storage/compression.js';

test('the magic Dovecot checks (compression_detect_handler), and plain mail is not taken for it', (t) => {
  t.is(detectCompression(gzipSync(Buffer.from('Subject: x\n\nbody\n'))), 'gzip');
  t.is(detectCompression(Buffer.from('BZh91AY&SY', 'latin1')), 'bzip2');
  t.is(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00])), 'xz');
  t.is(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x04])), 'zstd');
  t.is(detectCompression(Buffer.from('Dovecot-LZ4\r\x2a\x9b\xc5\0\0', 'latin1')), 'lz4');
  for (const plain of ['Return-Path: <a@b>\n', 'From: x\n', 'BZh\n', 'BZhx', '', '\x1f']) t.is(detectCompression(Buffer.from(plain, 'latin1')), null, JSON.stringify(plain));
  t.is(detectCompression(deflateRawSync(Buffer.from('x'))), null, 'raw deflate has no magic, and Dovecot does not write it');
});
