import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { createLogging } from '../logging.js';
import { StateStore } from './state-store.js';

function makeStore(dir = mkdtempSync(path.join(tmpdir(), 'clawbox-store-'))) {
  const logging = createLogging({ level: 'warn', components: {}, pretty: false, destination: { write: () => true } as never });
  return { store: new StateStore(dir, logging.forComponent('store')), logging, dir };
}

t.test('updates are on disk when update() resolves, and survive a new store', async (t) => {
  const { store, dir } = makeStore();
  const doc = await store.open('devices', () => ({ lamps: {} as Record<string, boolean> }));
  await doc.update((d) => {
    d.lamps.kitchen = true;
  });
  t.same(JSON.parse(readFileSync(path.join(dir, 'devices.json'), 'utf8')), { lamps: { kitchen: true } });
  const again = await makeStore(dir).store.open('devices', () => ({ lamps: {} }));
  t.same(again.data, { lamps: { kitchen: true } });
});

t.test('concurrent updates are serialised and none is lost', async (t) => {
  const { store, dir } = makeStore();
  const doc = await store.open('counter', () => ({ n: 0, seen: [] as number[] }));
  await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      doc.update((d) => {
        d.n += 1;
        d.seen.push(i);
      }),
    ),
  );
  const onDisk = JSON.parse(readFileSync(path.join(dir, 'counter.json'), 'utf8')) as { n: number; seen: number[] };
  t.equal(onDisk.n, 50);
  t.equal(onDisk.seen.length, 50);
  t.same(
    readdirSync(dir).filter((f) => f.endsWith('.tmp')),
    [],
    'no temp files left behind',
  );
});

t.test('a corrupt or truncated file is moved aside and defaults are used', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-store-'));
  writeFileSync(path.join(dir, 'devices.json'), '{"lamps": {"kitch');
  const { store, logging } = makeStore(dir);
  const doc = await store.open('devices', () => ({ lamps: {} }));
  t.same(doc.data, { lamps: {} });
  const aside = readdirSync(dir).filter((f) => f.startsWith('devices.json.corrupt-'));
  t.equal(aside.length, 1, 'the corrupt file is kept for inspection');
  t.equal(readFileSync(path.join(dir, aside[0]!), 'utf8'), '{"lamps": {"kitch');
  t.notOk(existsSync(path.join(dir, 'devices.json')));
  // the warning reaches the ring that the status page shows
  await new Promise((r) => setImmediate(r));
  t.match(logging.ring.entries(), [{ level: 'warn', code: 'STATE_CORRUPT', msg: /corrupt/ }]);
});

t.test('namespaces are validated and opened once', async (t) => {
  const { store } = makeStore();
  await t.rejects(store.open('../etc/passwd', () => ({})), /invalid state namespace/);
  const a = await store.open('x', () => ({ v: 1 }));
  const b = await store.open('x', () => ({ v: 2 }));
  t.equal(a, b);
});

t.test('an unwritable state directory is STATE_UNWRITABLE', async (t) => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'clawbox-store-')), 'file');
  writeFileSync(file, '');
  t.throws(() => makeStore(path.join(file, 'sub')), { code: 'STATE_UNWRITABLE' });
});
