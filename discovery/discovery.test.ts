/**
 * mDNS: the records the box announces (the seam, no network needed), and the real thing: the Discovery
 * component announces over multicast with bonjour-service and a bonjour-service browser in this process
 * finds `_clawbox._tcp` with its TXT version and name, and `_https._tcp` on the web app's port. Where the
 * host has no multicast route the browse part is skipped with the reason (the seam test still runs).
 */
import { randomBytes } from 'node:crypto';
import { Bonjour, type Service } from 'bonjour-service';
import t from 'tap';
import { makeTestContext } from '../app/testing/test-context.js';
import { Discovery, announcementsFor, discoveryEnabled } from './index.js';

t.test('the announcements follow the box: scheme, reachability, broker TLS', async (t) => {
  const https = announcementsFor({
    name: 'porch-box',
    version: '1.2.3',
    http: { port: 8080, tls: true, reachable: true },
    mqtt: { port: 1883, reachable: true },
    mqtts: { port: 8883 },
  });
  t.same(
    https.map((a) => `${a.type}:${a.port}`),
    ['https:8080', 'mqtt:1883', 'secure-mqtt:8883', 'clawbox:8080'],
  );
  t.same(https.find((a) => a.type === 'clawbox')?.txt, { version: '1.2.3', name: 'porch-box', scheme: 'https', path: '/' });
  const loopbackBroker = announcementsFor({
    name: 'dev',
    version: '0.1.0',
    http: { port: 8080, tls: false, reachable: true },
    mqtt: { port: 1883, reachable: false },
    mqtts: null,
  });
  t.same(
    loopbackBroker.map((a) => a.type),
    ['http', 'clawbox'],
    'plain HTTP; a broker on loopback is not announced to a network that cannot reach it',
  );
});

t.test('enabled: auto is on for a networked appliance only; false turns it off', async (t) => {
  const config = (mode: 'local' | 'appliance', host: string, enabled: 'auto' | boolean) =>
    ({ mode, http: { host }, discovery: { enabled } }) as unknown as Parameters<typeof discoveryEnabled>[0];
  t.equal(discoveryEnabled(config('appliance', '0.0.0.0', 'auto')), true);
  t.equal(discoveryEnabled(config('appliance', '127.0.0.1', 'auto')), false);
  t.equal(discoveryEnabled(config('local', '0.0.0.0', 'auto')), false);
  t.equal(discoveryEnabled(config('appliance', '0.0.0.0', false)), false);
  t.equal(discoveryEnabled(config('local', '127.0.0.1', true)), true);
});

t.test('a bonjour-service browser finds the box on the network', async (t) => {
  const name = `clawbox-test-${randomBytes(4).toString('hex')}`;
  const test = makeTestContext({ config: { discovery: { enabled: true, name } } });
  const discovery = new Discovery({
    facts: () => ({ name, version: '9.9.9', http: { port: 48443, tls: true, reachable: true }, mqtt: { port: 41883, reachable: true }, mqtts: null }),
  });
  let multicastError: Error | null = null;
  const browser = new Bonjour({}, (error: Error) => {
    multicastError = error;
  });
  t.teardown(async () => {
    browser.destroy();
    await discovery.stop();
    test.cleanup();
  });
  await discovery.start(test.ctx);
  t.same(
    discovery.announced.map((a) => a.type),
    ['https', 'mqtt', 'clawbox'],
  );
  const found = (type: string) =>
    new Promise<Service | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), 10_000);
      const b = browser.find({ type }, (service) => {
        if (service.name !== name) return;
        clearTimeout(timer);
        b.stop();
        resolve(service);
      });
    });
  const [clawbox, https] = await Promise.all([found('clawbox'), found('https')]);
  if (!clawbox && multicastError) {
    t.comment(`multicast is not available here (${String(multicastError)}); only the records are checked`);
    return;
  }
  t.ok(clawbox, '_clawbox._tcp found');
  t.same(clawbox?.txt, { version: '9.9.9', name, scheme: 'https', path: '/' });
  t.equal(https?.port, 48443, '_https._tcp on the web app port');
});
