import test from 'ava';
import { UsageError } from '../../../../src/core/errors.js';
import { parseCompressionOption } from '../../../../src/archive/compression/index.js';
import { resolveZstdSettings } from '../../../../src/archive/compression/compression-option.js';

test('parses none, zstd and zstd:LEVEL', (t) => {
  t.deepEqual(parseCompressionOption('none'), { type: 'none' });
  t.deepEqual(parseCompressionOption('zstd'), { type: 'zstd', level: 3 });
  t.deepEqual(parseCompressionOption('zstd:1'), { type: 'zstd', level: 1 });
  t.deepEqual(parseCompressionOption('zstd:19'), { type: 'zstd', level: 19 });
});

for (const bad of ['', 'gzip', 'zstd:', 'zstd:0', 'zstd:20', 'zstd:-1', 'zstd:3.5', 'ZSTD', 'zstd:3 ', 'zstd:abc']) {
  test(`rejects ${JSON.stringify(bad)} with a UsageError naming the value`, (t) => {
    const err = t.throws(() => parseCompressionOption(bad), { instanceOf: UsageError });
    t.true(err!.message.includes(`"${bad}"`));
    t.truthy(err!.hint);
  });
}

test('validates programmatic level and frame size', (t) => {
  t.deepEqual(resolveZstdSettings({ type: 'zstd', level: 3 }), { level: 3, frameSize: 1024 * 1024, useWorker: true });
  t.throws(() => resolveZstdSettings({ type: 'zstd', level: 0 }), { instanceOf: UsageError });
  t.throws(() => resolveZstdSettings({ type: 'zstd', level: 3, frameSize: 0 }), { instanceOf: UsageError });
  t.throws(() => resolveZstdSettings({ type: 'zstd', level: 3, frameSize: 2 ** 31 }), { instanceOf: UsageError });
});
