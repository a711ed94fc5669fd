/**
 * `cluster.redis.wait_replicas`: with one Redis replica required, a QoS 1 message is acknowledged only
 * once the Redis replica has it (read back from the replica right after the PUBACK), and while no Redis
 * replica is there, nothing is acknowledged: the runtime says why in its log.
 */
import { Redis } from 'ioredis';
import mqtt from 'mqtt';
import t from 'tap';
import { startRuntime } from '../test/runtime-process.js';
import { startRedisServer } from './testing/redis-server.js';

t.setTimeout(180_000);

t.test('wait_replicas: 1 — a PUBACK waits for a Redis replica', async (t) => {
  const primary = await startRedisServer();
  t.teardown(() => primary.destroy());
  const replica = await startRedisServer({ replicaOf: primary.port });
  t.teardown(() => replica.destroy());
  const replicaDb = new Redis(replica.port, '127.0.0.1');
  // Stopped below on purpose; its reconnect errors are expected.
  replicaDb.on('error', () => {});
  t.teardown(() => replicaDb.disconnect());
  // The replica has synced once it reports its link up.
  for (;;) {
    const info = await replicaDb.info('replication');
    if (/master_link_status:up/.test(info)) break;
    await new Promise((r) => setTimeout(r, 100));
  }

  const runtime = await startRuntime({
    env: {
      CLAWBOX_CLUSTER_ENABLED: 'true',
      CLAWBOX_CLUSTER_REPLICA_ID: 'w',
      CLAWBOX_CLUSTER_REDIS_URL: primary.url,
      CLAWBOX_CLUSTER_REDIS_WAIT_REPLICAS: '1',
      CLAWBOX_CLUSTER_REDIS_WAIT_TIMEOUT_MS: '500',
    },
    startTimeoutMs: 90_000,
  });
  t.teardown(() => runtime.child.kill('SIGKILL'));
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${runtime.mqttPort}`, { reconnectPeriod: 0 });
  t.teardown(() => client.end(true));

  for (let i = 0; i < 5; i++) {
    await client.publishAsync('wait/topic', `v${i}`, { qos: 1, retain: true });
    const stored = await replicaDb.hgetBuffer('retained', 'wait/topic');
    t.ok(stored?.includes(Buffer.from(`v${i}`)), `v${i} is on the Redis replica when its PUBACK arrives`);
  }

  await replica.stop();
  let acknowledged = false;
  client.publish('wait/topic', 'unconfirmed', { qos: 1, retain: true }, (error) => {
    if (!error) acknowledged = true;
  });
  await runtime.waitForLog((l) => /Redis replicas confirmed a write/.test(l.msg), 20_000);
  t.equal(acknowledged, false, 'no PUBACK for a write no Redis replica confirmed');
});
