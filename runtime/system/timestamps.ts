/**
 * Timestamps as text, built from a Date's UTC fields: the ISO 8601 form of `toISOString()` and the HTTP form
 * of `toUTCString()` (RFC 9110 §5.6.7 IMF-fixdate), character for character.
 *
 * Why not the Date methods: the first `toISOString()`, `toUTCString()` or `toJSON()` in a process sets up V8's
 * date cache with ICU's time zone, which pages about 1 MB of the `node` binary in and keeps it resident, even
 * with TZ=UTC. The getUTC* fields do not. An idle box writes timestamps at start (the audit log's anchor and
 * verification, the retention sweep) and on every HTTP answer (the Date header): through this module none of
 * them pays that.
 */

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

function pad(value: number, width: number): string {
  return String(value).padStart(width, '0');
}

/** `new Date(ms).toISOString()`: `2026-12-06T15:16:51.042Z` (years outside 0-9999 as `+275760`/`-000001`); RangeError for an invalid time, as toISOString. */
export function isoTimestamp(ms: number = Date.now()): string {
  const date = new Date(ms);
  const year = date.getUTCFullYear();
  if (Number.isNaN(year)) throw new RangeError('Invalid time value');
  const yearText = year >= 0 && year <= 9999 ? pad(year, 4) : `${year < 0 ? '-' : '+'}${pad(Math.abs(year), 6)}`;
  return (
    `${yearText}-${pad(date.getUTCMonth() + 1, 2)}-${pad(date.getUTCDate(), 2)}` +
    `T${pad(date.getUTCHours(), 2)}:${pad(date.getUTCMinutes(), 2)}:${pad(date.getUTCSeconds(), 2)}.${pad(date.getUTCMilliseconds(), 3)}Z`
  );
}

/** `new Date(ms).toUTCString()`: `Sun, 06 Dec 2026 15:16:51 GMT`, the HTTP date form; `Invalid Date` as toUTCString. */
export function utcString(ms: number): string {
  const date = new Date(ms);
  const year = date.getUTCFullYear();
  if (Number.isNaN(year)) return 'Invalid Date';
  const yearText = year < 0 ? `-${pad(-year, 4)}` : pad(year, 4);
  return (
    `${DAYS[date.getUTCDay()]}, ${pad(date.getUTCDate(), 2)} ${MONTHS[date.getUTCMonth()]} ${yearText} ` +
    `${pad(date.getUTCHours(), 2)}:${pad(date.getUTCMinutes(), 2)}:${pad(date.getUTCSeconds(), 2)} GMT`
  );
}

let cachedSecond = Number.NaN;
let cachedDate = '';

/** The HTTP `Date` header's value for now (or `ms`): formatted once per second, as Node's own server does. */
export function httpDate(ms: number = Date.now()): string {
  const second = Math.floor(ms / 1000);
  if (second !== cachedSecond) {
    cachedDate = utcString(ms);
    cachedSecond = second;
  }
  return cachedDate;
}
