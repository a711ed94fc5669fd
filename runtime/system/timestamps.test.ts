/**
 * The timestamp formatters against the Date methods they stand in for, value by value, and proof that they
 * never call those methods (the reason they exist: runtime/system/timestamps.ts).
 */
import t from 'tap';
import { seededRandom } from '../seeded-random.js';
import { httpDate, isoTimestamp, utcString } from './timestamps.js';

const MAX_TIME = 8.64e15;

/** Times around every edge the formatting has: epoch, leap days, century rules, year widths, the range's ends. */
function edgeTimes(): number[] {
  const times = [0, -1, 1, 999, 1000, -999, -1000, MAX_TIME, -MAX_TIME, MAX_TIME - 1, -MAX_TIME + 1];
  for (const [year, month, day] of [
    [1970, 0, 1],
    [1969, 11, 31],
    [2000, 1, 29],
    [1900, 1, 28],
    [1900, 2, 1],
    [2024, 1, 29],
    [2026, 11, 31],
    [9999, 11, 31],
    [10000, 0, 1],
    [0, 0, 1],
    [-1, 11, 31],
    [-10000, 5, 15],
    [275760, 8, 12],
  ] as const) {
    const at = new Date(0);
    at.setUTCFullYear(year, month, day); // setUTCFullYear keeps years 0-99 as they are (Date.UTC maps them to 19xx)
    for (const offset of [0, 999, 86_399_999, -1]) times.push(at.getTime() + offset);
  }
  return times.filter((ms) => Math.abs(ms) <= MAX_TIME);
}

function randomTimes(count: number): number[] {
  const random = seededRandom(17);
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    // Half across the whole range, half within a few centuries of now, where real timestamps are.
    times.push(i % 2 === 0 ? Math.round((random() * 2 - 1) * MAX_TIME) : Math.round(Date.now() + (random() * 2 - 1) * 1e13));
  }
  return times;
}

t.test('isoTimestamp equals toISOString and utcString toUTCString, edges and 20,000 random times', async (t) => {
  let checked = 0;
  for (const ms of [...edgeTimes(), ...randomTimes(20_000)]) {
    const date = new Date(ms);
    if (isoTimestamp(ms) !== date.toISOString() || utcString(ms) !== date.toUTCString()) {
      t.fail(`${ms}: ${isoTimestamp(ms)} / ${utcString(ms)} against ${date.toISOString()} / ${date.toUTCString()}`);
      return;
    }
    checked++;
  }
  t.ok(checked > 20_000, `${checked} times formatted as the Date methods do`);
});

t.test('an invalid time: RangeError as toISOString, "Invalid Date" as toUTCString', async (t) => {
  for (const ms of [Number.NaN, MAX_TIME + 1, Number.POSITIVE_INFINITY]) {
    t.throws(() => isoTimestamp(ms), RangeError);
    t.equal(utcString(ms), 'Invalid Date');
  }
});

t.test('isoTimestamp and httpDate default to now', async (t) => {
  const before = Date.now();
  const iso = isoTimestamp();
  const http = httpDate();
  const after = Date.now();
  t.ok(Date.parse(iso) >= before && Date.parse(iso) <= after, iso);
  t.ok(Date.parse(http) >= Math.floor(before / 1000) * 1000 && Date.parse(http) <= after, http);
});

t.test('httpDate: the same text within a second, the next second its own', async (t) => {
  const second = Date.UTC(2026, 11, 6, 15, 16, 51);
  t.equal(httpDate(second), 'Sun, 06 Dec 2026 15:16:51 GMT');
  t.equal(httpDate(second + 999), 'Sun, 06 Dec 2026 15:16:51 GMT');
  t.equal(httpDate(second + 1000), 'Sun, 06 Dec 2026 15:16:52 GMT');
  t.equal(httpDate(second - 1), 'Sun, 06 Dec 2026 15:16:50 GMT', 'a clock set back is not answered from the cache');
});

t.test('the formatters never call the Date methods that page in ICU', async (t) => {
  const calls: string[] = [];
  const methods = ['toISOString', 'toUTCString', 'toJSON', 'toString', 'toLocaleString', 'getTimezoneOffset', 'getHours', 'getMilliseconds'] as const;
  const originals = methods.map((name) => [name, Date.prototype[name]] as const);
  for (const [name, original] of originals) {
    (Date.prototype as unknown as Record<string, unknown>)[name] = function (this: Date, ...args: unknown[]) {
      calls.push(name);
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    };
  }
  t.teardown(() => {
    for (const [name, original] of originals) (Date.prototype as unknown as Record<string, unknown>)[name] = original;
  });
  isoTimestamp(Date.UTC(2031, 4, 5, 6, 7, 8, 9));
  utcString(Date.UTC(2031, 4, 5, 6, 7, 8, 9));
  httpDate(Date.UTC(2032, 0, 1));
  t.same(calls, []);
});
