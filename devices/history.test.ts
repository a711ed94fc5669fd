/**
 * The sensor history's bounds and behaviour on its own (the web test covers it through the runtime):
 * points per series thinned as they age, series capped, old points dropped, non-numbers ignored, a
 * repeated instant replaced; and which properties are charted.
 */
import t from 'tap';
import { SensorHistory, chartedProperties } from './history.js';

t.test('a series keeps recent points in full and thins the older half', async (t) => {
  const history = new SensorHistory({ maxPoints: 16 });
  const start = Date.now() - 1000;
  for (let i = 0; i < 100; i++) history.record('probe', 'temperature', i, start + i);
  const points = history.points('probe', 'temperature');
  t.ok(points.length <= 16, `bounded (${points.length} points)`);
  t.same(points.at(-1), { t: start + 99, v: 99 }, 'the newest reading is kept');
  const gaps = points.slice(1).map((p, i) => p.t - points[i]!.t);
  t.equal(gaps.at(-1), 1, 'recent points one apart');
  t.ok(gaps[0]! > 1, 'older points thinned');
  t.ok(points[0]!.t < start + 50, 'and still reaching back');
  t.same(
    history.points('probe', 'temperature', 3).map((p) => p.v),
    [97, 98, 99],
    'a limit takes the newest',
  );
});

t.test('old points go, the number of series is capped, junk is ignored', async (t) => {
  const history = new SensorHistory({ maxAgeMs: 1000, maxSeries: 2 });
  const now = Date.now();
  history.record('a', 'x', 1, now - 5000);
  history.record('a', 'x', 2, now);
  t.same(history.points('a', 'x'), [{ t: now, v: 2 }], 'a point past the age is dropped');
  history.record('a', 'x', 3, now);
  t.same(history.points('a', 'x'), [{ t: now, v: 3 }], 'the same instant again: the newest value wins');
  for (const junk of [Number.NaN, Number.POSITIVE_INFINITY, '20', null, undefined, { v: 1 }]) history.record('a', 'x', junk, now + 1);
  t.equal(history.points('a', 'x').length, 1, 'non-numbers are not recorded');
  history.record('b', 'y', 1, now);
  history.record('c', 'z', 1, now);
  t.same(history.points('a', 'x'), [], 'the least recently updated series goes first past the cap');
  t.same([history.properties('b'), history.properties('c')], [['y'], ['z']]);
  history.forget('b');
  t.same(history.properties('b'), [], 'a removed device forgets its history');
});

t.test('charted properties: sensor readings and a thermostat room temperature', async (t) => {
  t.same(
    chartedProperties([
      'switch',
      { type: 'sensor', readings: [{ property: 'temperature' }, { property: 'humidity' }] },
      { type: 'thermostat', min: 5 },
      { type: 'dimmer' },
      null,
    ]),
    ['temperature', 'humidity', 'current_temperature'],
  );
});
