/**
 * Three real clawbox processes on one real Redis (Debian's redis-server, appendfsync always) on loopback:
 * cross-replica delivery at QoS 0 and 1, retained messages seen from every replica, a persistent session
 * made on one replica drained on another, an agent request served by the replica that has a model,
 * Redis restarted under a QoS 1 stream (readiness fails, nothing acknowledged is lost), and kill -9 of the
 * replica that drives the devices in the middle of a QoS 1 stream: zero acknowledged messages lost, and
 * another replica takes the device leases (the time it took is printed, not asserted); then a clean stop
 * (SIGTERM) of the new holder hands them to the last replica.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import mqtt, { type MqttClient } from 'mqtt';
import t from 'tap';
import { ROOT } from '../test/cli-helpers.js';
import { type RuntimeProcess, startRuntime } from '../test/runtime-process.js';
import { startRedisServer } from './testing/redis-server.js';

// Three runtimes and a model start here: minutes on a loaded 2-CPU machine, under a minute on a quiet one.
t.setTimeout(300_000);

const STORIES = path.resolve(ROOT, '..', 'shared', 'models', 'stories260K.gguf');
const HEARTBEAT_MS = 300;
const LEASE_TTL_MS = 1500;

interface ClusterSection {
  replica_id: string;
  replicas: { id: string }[];
  devices: Record<string, string | null>;
  work_sharing?: { shared_in: number; shared_out: number };
}

async function status(replica: RuntimeProcess): Promise<{ sections: { cluster: ClusterSection; broker: { persistence: string; durability?: string } } }> {
  return (await (await fetch(`http://127.0.0.1:${replica.httpPort}/api/status`)).json()) as never;
}

async function readyz(replica: RuntimeProcess): Promise<number> {
  return (await fetch(`http://127.0.0.1:${replica.httpPort}/readyz`)).status;
}

/** Polls until `check` holds (a positive marker); fails after `timeoutMs`. */
async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await Promise.resolve().then(check).catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function connect(replica: RuntimeProcess, options: mqtt.IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(`mqtt://127.0.0.1:${replica.mqttPort}`, { reconnectPeriod: 0, connectTimeout: 10_000, ...options });
}

/** Collects the payloads of one topic filter. */
function collect(client: MqttClient): Set<string> {
  const seen = new Set<string>();
  client.on('message', (_topic, payload) => seen.add(payload.toString()));
  return seen;
}

t.test('edge cluster: three replicas on one Redis', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.destroy());
  const env = (id: string): Record<string, string> => ({
    CLAWBOX_CLUSTER_ENABLED: 'true',
    CLAWBOX_CLUSTER_REPLICA_ID: id,
    CLAWBOX_CLUSTER_REDIS_URL: redis.url,
    CLAWBOX_CLUSTER_HEARTBEAT_MS: String(HEARTBEAT_MS),
    CLAWBOX_CLUSTER_LEASE_TTL_MS: String(LEASE_TTL_MS),
    // Site plugins from the variable the Kubernetes Deployment sets.
    PLUGIN_DIR: path.join(ROOT, 'plugins', 'test-fixtures'),
  });
  const withModel = existsSync(STORIES);
  const modelArgs: string[] = [];
  if (withModel) {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-cluster-model-'));
    writeFileSync(path.join(dir, 'config.yaml'), `models:\n  - name: stories\n    path: ${STORIES}\n    role: main\n    context_size: 2048\n    sequences: 2\n`);
    modelArgs.push('--config', path.join(dir, 'config.yaml'));
  }
  // c has the model: the replica with capacity for model requests.
  const [a, b, c] = await Promise.all([
    startRuntime({ env: env('a'), startTimeoutMs: 90_000 }),
    startRuntime({ env: env('b'), startTimeoutMs: 90_000 }),
    startRuntime({ env: env('c'), args: modelArgs, startTimeoutMs: 90_000 }),
  ]);
  const replicas = { a, b, c } as Record<string, RuntimeProcess>;
  t.teardown(() => {
    for (const r of [a, b, c]) r.child.kill('SIGKILL');
  });
  const clients: MqttClient[] = [];
  t.teardown(() => {
    for (const client of clients) client.end(true);
  });
  const client = async (replica: RuntimeProcess, options: mqtt.IClientOptions = {}) => {
    const made = await connect(replica, options);
    clients.push(made);
    return made;
  };

  await t.test('every replica is ready, sees the others, and stores on Redis with fsync', async (t) => {
    for (const r of [a, b, c]) {
      await until('3 replicas in the status', async () => (await status(r)).sections.cluster.replicas.length === 3);
      t.equal(await readyz(r), 200, `${(await status(r)).sections.cluster.replica_id}: /readyz 200`);
    }
    const broker = (await status(a)).sections.broker;
    t.match(broker, { persistence: 'redis', durability: 'fsync-always' });
    const plugins = ((await status(c)).sections as unknown as { plugins: { plugins: { name: string; origin: string }[] } }).plugins.plugins;
    t.ok(plugins.some((p) => p.name === 'node-basic'), 'a plugin from $PLUGIN_DIR is loaded');
    const owners = (await status(b)).sections.cluster.devices;
    t.ok(Object.keys(owners).length > 0 && Object.values(owners).every((o) => o !== null && o in replicas), `every device has one owner: ${JSON.stringify(owners)}`);
    // Each replica's device layer publishes `offline` at its start; the holder's view must win.
    const watcher = await client(c);
    const availability = new Map<string, string>();
    watcher.on('message', (topic, payload) => availability.set(topic.split('/')[1]!, payload.toString()));
    await watcher.subscribeAsync('clawbox/+/availability', { qos: 1 });
    await until('every device retained as online', () => Object.keys(owners).every((id) => availability.get(id) === 'online'));
    t.pass('every device is retained as online, whichever replica started last');
  });

  await t.test('QoS 0 and 1 published on one replica reach subscribers on the others', async (t) => {
    const subB = await client(b);
    const subC = await client(c);
    const seenB = collect(subB);
    const seenC = collect(subC);
    await subB.subscribeAsync('x/#', { qos: 1 });
    await subC.subscribeAsync('x/#', { qos: 1 });
    const pub = await client(a);
    // A subscription made on one replica reaches the others through Redis; wait until it has.
    await until('the subscriptions to reach replica a', async () => {
      await pub.publishAsync('x/probe', 'probe', { qos: 0 });
      return seenB.has('probe') && seenC.has('probe');
    });
    for (let i = 0; i < 20; i++) await pub.publishAsync('x/q0', `q0-${i}`, { qos: 0 });
    for (let i = 0; i < 20; i++) await pub.publishAsync('x/q1', `q1-${i}`, { qos: 1 });
    const all = [...Array(20).keys()].flatMap((i) => [`q0-${i}`, `q1-${i}`]);
    await until('every message on b and c', () => all.every((m) => seenB.has(m) && seenC.has(m)));
    t.pass('40 messages from a arrived on b and on c');
  });

  await t.test('a retained message is visible from every replica', async (t) => {
    const pub = await client(b);
    await pub.publishAsync('cluster/retained', 'kept', { qos: 1, retain: true });
    for (const [name, r] of Object.entries(replicas)) {
      const sub = await client(r);
      const got = new Promise<string>((resolve) => sub.once('message', (_topic, payload) => resolve(payload.toString())));
      await sub.subscribeAsync('cluster/retained', { qos: 1 });
      t.equal(await got, 'kept', `retained message read from ${name}`);
    }
  });

  await t.test('a persistent session made on a is drained on b', async (t) => {
    const first = await connect(a, { clientId: 'cluster-session', clean: false });
    await first.subscribeAsync('session/#', { qos: 1 });
    await first.endAsync();
    const pub = await client(c);
    for (let i = 0; i < 10; i++) await pub.publishAsync('session/m', `s-${i}`, { qos: 1 });
    const seen = new Set<string>();
    const second = mqtt.connect(`mqtt://127.0.0.1:${b.mqttPort}`, { clientId: 'cluster-session', clean: false, reconnectPeriod: 0 });
    clients.push(second);
    second.on('message', (_topic, payload) => seen.add(payload.toString()));
    const connack = await new Promise<mqtt.IConnackPacket>((resolve) => second.once('connect', resolve));
    t.equal(connack.sessionPresent, true, 'session present on another replica');
    await until('the 10 queued messages', () => seen.size === 10);
    t.same([...seen].sort(), [...Array(10).keys()].map((i) => `s-${i}`).sort(), 'all queued messages, from the other replica');
  });

  await t.test('an agent request a replica cannot serve is answered by one that can', { skip: !withModel && `no ${STORIES}` }, async (t) => {
    await c.waitForLog((l) => l.component === 'agent' && /main model warmed up/.test(l.msg), 90_000);
    // Work sharing needs to know the others are alive: a's status lists c.
    const asker = await client(a);
    const reply = new Promise<{ status: string; data?: { replica?: string }; error?: { code: string } }>((resolve) =>
      asker.on('message', (_topic, payload) => resolve(JSON.parse(payload.toString()))),
    );
    await asker.subscribeAsync('clawbox/agent/response', { qos: 1 });
    await asker.publishAsync('clawbox/agent/request', JSON.stringify({ text: 'write me a poem about the sea', deadline_ms: 10_000, transaction: 1 }), { qos: 1 });
    const answer = await reply;
    t.not(answer.error?.code, 'MODEL_NOT_LOADED', `a has no model, yet the request was not refused for it: ${JSON.stringify(answer).slice(0, 300)}`);
    if (answer.status === 'ok') t.equal(answer.data?.replica, 'c', 'answered by c');
    const sharing = (await status(c)).sections.cluster.work_sharing;
    t.ok(sharing && sharing.shared_in >= 1, `c served a shared request: ${JSON.stringify(sharing)}`);
    t.ok(((await status(a)).sections.cluster.work_sharing?.shared_out ?? 0) >= 1, 'a handed it out');
  });

  await t.test('Redis restarted under a QoS 1 stream: readiness fails while it is down, nothing acknowledged is lost', async (t) => {
    const sub = await client(b, { clientId: 'redis-restart-sub', clean: false, reconnectPeriod: 200 });
    const seen = collect(sub);
    await sub.subscribeAsync('restart/#', { qos: 1 });
    const pub = await client(a, { clientId: 'redis-restart-pub', clean: false, reconnectPeriod: 200 });
    await until('the subscription to reach a', async () => {
      await pub.publishAsync('restart/probe', 'probe', { qos: 1 });
      return seen.has('probe');
    });
    const acked: string[] = [];
    let sending = true;
    const stream = (async () => {
      for (let i = 0; sending; i++) {
        await pub.publishAsync('restart/m', `r-${i}`, { qos: 1 });
        acked.push(`r-${i}`);
      }
    })();
    await until('some acknowledged messages', () => acked.length >= 20);
    await redis.stop();
    await until('/readyz 503 on a', async () => (await readyz(a)) === 503);
    t.pass('readiness fails while Redis is down');
    const duringOutage = acked.length;
    await redis.start();
    await until('/readyz 200 again on a and b', async () => (await readyz(a)) === 200 && (await readyz(b)) === 200, 30_000);
    await until('acknowledged messages after the restart', () => acked.length >= duringOutage + 20, 30_000);
    sending = false;
    await stream;
    await until('every acknowledged message delivered', () => acked.every((m) => seen.has(m)), 30_000);
    t.pass(`${acked.length} acknowledged, all delivered (${duringOutage} before the outage ended)`);
  });

  await t.test('kill -9 of the device owner during a QoS 1 stream: no acknowledged message lost, leases fail over', async (t) => {
    const db = new Redis(redis.port, '127.0.0.1', { lazyConnect: true });
    await db.connect();
    t.teardown(() => db.disconnect());
    const ownerId = (await db.get('clawbox:lease:device:lamp')) as string;
    t.ok(ownerId in replicas, `lamp is driven by ${ownerId}`);
    const victim = replicas[ownerId]!;
    const survivors = Object.entries(replicas).filter(([id]) => id !== ownerId);
    const [, subReplica] = survivors[0]!;
    const [, otherReplica] = survivors[1]!;

    const sub = await client(subReplica, { clientId: 'kill-sub', clean: false });
    const seen = collect(sub);
    await sub.subscribeAsync('kill/#', { qos: 1 });
    const pub = await client(victim, { clientId: 'kill-pub' });
    await until('the subscription to reach the victim', async () => {
      await pub.publishAsync('kill/probe', 'probe', { qos: 1 });
      return seen.has('probe');
    });
    const acked: string[] = [];
    let i = 0;
    // Ten in flight at a time; a PUBACK counts once it arrived, whatever happens next.
    const send = (): Promise<void> =>
      new Promise((resolve) => {
        const id = `k-${i++}`;
        pub.publish('kill/m', id, { qos: 1 }, (error) => {
          if (!error) acked.push(id);
          resolve();
        });
      });
    let pumping = true;
    const pump = (async () => {
      while (pumping && pub.connected && acked.length < 100_000) {
        await Promise.all(Array.from({ length: 10 }, send));
        // A publish that fails at once must not turn this loop into one the timers never interrupt.
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    await until('200 acknowledged messages', () => acked.length >= 200);
    const killedAt = Date.now();
    victim.child.kill('SIGKILL');
    pumping = false;
    await victim.exited;
    pub.end(true);
    await Promise.race([pump, new Promise((r) => setTimeout(r, 2000))]);
    const lost = () => acked.filter((m) => !seen.has(m));
    // Messages queued for the session but not delivered live: a reconnect drains them.
    await until('every acknowledged message', async () => {
      if (lost().length === 0) return true;
      return false;
    }, 10_000).catch(async () => {
      sub.end(true);
      const again = await client(otherReplica, { clientId: 'kill-sub', clean: false });
      again.on('message', (_topic, payload) => seen.add(payload.toString()));
      await until('every acknowledged message after a reconnect', () => lost().length === 0, 20_000);
    });
    t.same(lost(), [], `all ${acked.length} acknowledged messages delivered after kill -9 of ${ownerId}`);

    await until('another replica to take the lamp', async () => {
      const owner = await db.get('clawbox:lease:device:lamp');
      return owner !== null && owner !== ownerId;
    }, 30_000);
    const failoverMs = Date.now() - killedAt;
    const newOwner = await db.get('clawbox:lease:device:lamp');
    t.comment(`lamp failed over from ${ownerId} to ${newOwner} ${failoverMs} ms after kill -9 (lease ttl ${LEASE_TTL_MS} ms, heartbeat ${HEARTBEAT_MS} ms)`);
    // A command through a replica that does not drive the lamp reaches the one that does.
    const viaOther = Object.entries(replicas).find(([id]) => id !== ownerId && id !== newOwner)?.[1] ?? otherReplica;
    // The new holder may still be starting the driver: a client retries a 503 as it is told to.
    const refusals: string[] = [];
    let answer: { status: string; error?: { code: string } } = { status: 'none' };
    await until('the lamp to obey', async () => {
      answer = (await (
        await fetch(`http://127.0.0.1:${viaOther.httpPort}/api/devices/lamp/set`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ state: 'ON' }),
        })
      ).json()) as typeof answer;
      if (answer.status !== 'ok') refusals.push(answer.error?.code ?? 'unknown');
      return answer.status === 'ok';
    });
    t.match(answer, { status: 'ok', data: { state: { state: 'ON' } } }, `the lamp obeys a command sent through another replica (refused first: ${refusals.join(', ') || 'never'})`);
    t.ok(refusals.every((code) => ['DEVICE_UNAVAILABLE', 'DEVICE_NOT_OWNED', 'DEVICE_TIMEOUT'].includes(code)), 'any refusal meanwhile was a retryable one');
    for (const [id, r] of Object.entries(replicas).filter(([id]) => id !== ownerId)) {
      await until(`${id} to show the lamp on`, async () => {
        const devices = ((await status(r)).sections as unknown as { devices: { id: string; state: { state?: string } }[] }).devices;
        return devices.find((d) => d.id === 'lamp')?.state.state === 'ON';
      });
      t.pass(`${id}'s status shows the lamp on`);
    }

    // A clean stop (SIGTERM, as Kubernetes sends after preStop) hands the leases back before it exits.
    const holder = replicas[newOwner!]!;
    const stoppedAt = Date.now();
    holder.child.kill('SIGTERM');
    const exit = await holder.exited;
    t.equal(exit.code, 0, `${newOwner} stopped cleanly`);
    await until('the last replica to take the lamp', async () => {
      const owner = await db.get('clawbox:lease:device:lamp');
      return owner !== null && owner !== newOwner;
    }, 30_000);
    t.comment(`after SIGTERM of ${newOwner}, ${await db.get('clawbox:lease:device:lamp')} drove the lamp ${Date.now() - stoppedAt} ms later (including the stop itself)`);
  });
});
