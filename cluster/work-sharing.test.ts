/**
 * Agent work sharing on a real redis-server, two replicas' work-sharing parts in this process: a request
 * refused BUSY by a saturated replica is served by one with capacity (and its actions run back on the
 * origin, as the caller); when nobody has capacity the caller gets the original BUSY at its deadline and
 * the entry is taken back, so it never runs later; other errors are not shared.
 */
import { Redis } from 'ioredis';
import t from 'tap';
import { connectRedis, createRedis, type RedisEndpoint } from '../runtime/broker/redis-connection.js';
import { ClawboxError } from '../runtime/errors.js';
import { createLogging } from '../runtime/logging.js';
import { KEYS } from './keys.js';
import { ClusterRpc } from './rpc.js';
import { startRedisServer } from './testing/redis-server.js';
import { AgentWorkSharing, type SharedRequest } from './work-sharing.js';

const logger = createLogging({ level: 'silent', components: {}, pretty: false }).forComponent('cluster');

interface Replica {
  sharing: AgentWorkSharing;
  capacity: { value: boolean };
  served: string[];
  close(): Promise<void>;
}

async function replica(endpoint: RedisEndpoint, id: string, local: (request: SharedRequest) => Promise<unknown>): Promise<Replica> {
  const [db, pub, sub] = ['db', 'pub', 'sub'].map((n) => createRedis(endpoint, `test:${id}:${n}`)) as [Redis, Redis, Redis];
  await Promise.all([db, pub, sub].map((c) => connectRedis(c, endpoint)));
  const rpc = new ClusterRpc(pub, sub, id);
  await rpc.start();
  const capacity = { value: true };
  const served: string[] = [];
  const sharing = new AgentWorkSharing({
    replicaId: id,
    db,
    sub,
    rpc,
    maxRemote: 2,
    maxQueue: 16,
    heartbeatMs: 100,
    logger,
    hasCapacity: () => capacity.value,
    othersAlive: () => true,
    defaultDeadlineMs: 1000,
  });
  await sharing.start();
  const handle = sharing.wrap(async (request: SharedRequest) => {
    served.push(request.text);
    return local(request);
  });
  return {
    sharing: Object.assign(sharing, { handle }),
    capacity,
    served,
    close: async () => {
      sharing.stop();
      rpc.stop();
      for (const c of [db, pub, sub]) c.disconnect();
    },
  };
}

const handleOf = (r: Replica) => (r.sharing as unknown as { handle: (request: SharedRequest) => Promise<unknown> }).handle;

t.test('work sharing between a saturated replica and one with capacity', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.destroy());
  const endpoint: RedisEndpoint = { host: '127.0.0.1', port: redis.port, db: 0, connectTimeoutMs: 5000 };
  const busy = new ClawboxError('BUSY', 'saturated', { retry_after_ms: 100 });
  // a: always saturated. b: proposes switching the lamp on, through the caller's act.
  const a = await replica(endpoint, 'a', async () => {
    throw busy;
  });
  const b = await replica(endpoint, 'b', async (request) => {
    const acted = await request.act!('lamp', { state: 'ON' } as never);
    return { text: `ok: ${request.text}`, actions: [acted], path: 'model' };
  });
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  a.capacity.value = false;

  await t.test('BUSY on a, served by b, the action runs on a as the caller', async (t) => {
    const actedOnA: unknown[] = [];
    const answer = await handleOf(a)({
      text: 'lamp on please',
      deadline_ms: 10_000,
      act: async (device, command) => {
        actedOnA.push({ device, command });
        return { kind: 'done', result: { device, state: command } };
      },
    });
    t.match(answer, { text: 'ok: lamp on please', replica: 'b', actions: [{ kind: 'done', result: { device: 'lamp' } }] });
    t.same(actedOnA, [{ device: 'lamp', command: { state: 'ON' } }], "the action ran on the origin, through the caller's act");
    t.same(b.served, ['lamp on please'], 'b ran it once');
    t.match(a.sharing.figures, { shared_out: 1 });
    t.match(b.sharing.figures, { shared_in: 1 });
  });

  await t.test('nobody has capacity: the original BUSY at the deadline, and the request never runs later', async (t) => {
    b.capacity.value = false;
    await t.rejects(handleOf(a)({ text: 'too late', deadline_ms: 300 }), { code: 'BUSY', message: 'saturated' });
    const db = new Redis(redis.port, '127.0.0.1');
    t.teardown(() => db.disconnect());
    t.equal(await db.llen(KEYS.agentQueue), 0, 'the entry was taken back');
    b.capacity.value = true;
    // The positive marker that b pulls again: a fresh request is served; the old one is not among b's.
    await handleOf(a)({ text: 'fresh', deadline_ms: 10_000, act: async () => ({ kind: 'done', result: null }) });
    t.same(b.served, ['lamp on please', 'fresh'], 'only the fresh request ran on b');
  });

  await t.test('errors other than BUSY and MODEL_NOT_LOADED are not shared', async (t) => {
    const c = await replica(endpoint, 'c', async () => {
      throw new ClawboxError('FORBIDDEN', 'no');
    });
    t.teardown(() => c.close());
    c.capacity.value = false;
    const before = b.served.length;
    await t.rejects(handleOf(c)({ text: 'forbidden', deadline_ms: 1000 }), { code: 'FORBIDDEN' });
    t.equal(b.served.length, before, 'nothing was handed out');
  });
});
