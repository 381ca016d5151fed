/**
 * ISO 8601 UTC timestamps with whole seconds ("2025-11-24T16:00:00Z"), the form every date in a dump
 * has, converted to and from Unix seconds without Date objects or regular expressions: a backup does
 * both once per message (INTERNALDATE into the record, and back into the tar mtime). Anything outside
 * the simple case (years before 1970 or after 9999, fractions, other spellings) takes the Date path,
 * so the results are always those of Date.
 */

/** Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

const TWO_DIGITS = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
/** 10000-01-01T00:00:00Z: from there on, Date writes a six-digit year. */
const YEAR_10000 = 253402300800;

/** `new Date(seconds * 1000).toISOString()` without the ".000" of whole seconds. */
export function isoFromUnixSeconds(seconds: number): string {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds >= YEAR_10000) {
    return new Date(seconds * 1000).toISOString().replace(/\.000Z$/, 'Z');
  }
  const days = Math.floor(seconds / 86400);
  const time = seconds - days * 86400;
  const hh = Math.floor(time / 3600);
  const mm = Math.floor((time - hh * 3600) / 60);
  const ss = time - hh * 3600 - mm * 60;
  // civil_from_days (H. Hinnant)
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return `${year}-${TWO_DIGITS[month]}-${TWO_DIGITS[day]}T${TWO_DIGITS[hh]}:${TWO_DIGITS[mm]}:${TWO_DIGITS[ss]}Z`;
}

function digits(s: string, from: number, count: number): number {
  let v = 0;
  for (let i = from; i < from + count; i++) {
    const c = s.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

const DAYS_IN_MONTH = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Unix seconds of an ISO date, 0 when unparsable or not after 1970: `Math.floor(Date.parse(iso) / 1000)`. */
export function unixSecondsOfIso(iso: string): number {
  if (iso.length === 20 && iso[4] === '-' && iso[7] === '-' && iso[10] === 'T' && iso[13] === ':' && iso[16] === ':' && iso[19] === 'Z') {
    const year = digits(iso, 0, 4);
    const month = digits(iso, 5, 2);
    const day = digits(iso, 8, 2);
    const hh = digits(iso, 11, 2);
    const mm = digits(iso, 14, 2);
    const ss = digits(iso, 17, 2);
    const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
    if (year >= 1970 && month >= 1 && month <= 12 && day >= 1 && day <= DAYS_IN_MONTH[month]! + (month === 2 && leap ? 1 : 0) && hh >= 0 && hh <= 23 && mm >= 0 && mm <= 59 && ss >= 0 && ss <= 59) {
      return daysFromCivil(year, month, day) * 86400 + hh * 3600 + mm * 60 + ss;
    }
  }
  const ms = Date.parse(iso);
  return Number.isFinite(ms) && ms > 0 ? Math.floor(ms / 1000) : 0;
}
