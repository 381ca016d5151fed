import test from 'ava';
import { isoFromUnixSeconds, unixSecondsOfIso } from '../../../src/archive/iso-time.js';

const viaDate = (s: number): string => new Date(s * 1000).toISOString().replace(/\.000Z$/, 'Z');
const parseViaDate = (iso: string): number => {
  const ms = Date.parse(iso);
  return Number.isFinite(ms) && ms > 0 ? Math.floor(ms / 1000) : 0;
};

test('isoFromUnixSeconds and unixSecondsOfIso agree with Date', (t) => {
  const samples = [0, 1, 59, 60, 86399, 86400, 951782400, 951868800, 1_700_000_000, 4102444800, 253402300799, 253402300800, -1, -86401, 1.5, 2 ** 40];
  let seed = 1;
  for (let i = 0; i < 20000; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    samples.push(seed * 118 + (seed % 1000), seed % 5000000);
  }
  for (const s of samples) {
    const iso = isoFromUnixSeconds(s);
    t.is(iso, viaDate(s), String(s));
    t.is(unixSecondsOfIso(iso), parseViaDate(iso), iso);
  }
  for (const iso of ['2025-02-30T00:00:00Z', '2024-02-29T00:00:00Z', '2023-02-29T00:00:00Z', '2100-02-29T00:00:00Z', '2000-02-29T23:59:59Z', '2024-02-29T24:00:00Z', '2024-02-29T23:59:60Z', '1970-01-01T00:00:00Z', '1969-12-31T23:59:59Z', '0000-01-01T00:00:00Z', '2025-13-01T00:00:00Z', '2025-00-10T00:00:00Z', '2025-1x-01T00:00:00Z', '2025-11-24T16:00:00.500Z', '2025-11-24T16:00:00+01:00', 'garbage', '']) {
    t.is(unixSecondsOfIso(iso), parseViaDate(iso), iso);
  }
});
