/** Parsing of time flags (ISO 8601 or a relative span like 24h, 7d) with luxon. */
import { DateTime, Duration } from 'luxon';
import { UsageError } from '../core/errors.js';

const SPAN = /^(\d+)\s*(s|m|h|d|w)$/i;

/**
 * Parse a time given on the command line to Unix seconds. Accepts ISO 8601 (a time without an offset
 * is taken as UTC, and the result says so) or a span back from now ("24h", "7d").
 */
export function parseTimeFlag(flag: string, value: string, now: DateTime = DateTime.utc()): number {
  const span = SPAN.exec(value.trim());
  if (span) {
    const n = Number(span[1]);
    const unit = ({ s: 'seconds', m: 'minutes', h: 'hours', d: 'days', w: 'weeks' } as const)[span[2]!.toLowerCase() as 's' | 'm' | 'h' | 'd' | 'w'];
    return Math.floor(now.minus(Duration.fromObject({ [unit]: n })).toSeconds());
  }
  const dt = DateTime.fromISO(value.trim(), { zone: 'utc', setZone: true });
  if (!dt.isValid) {
    throw new UsageError(`${flag} "${value}" is not a time`, { hint: 'use ISO 8601 (2026-11-28, 2026-11-28T14:00:00Z, 2026-11-28T15:00+01:00) or a span back from now (24h, 7d)' });
  }
  return Math.floor(dt.toSeconds());
}
