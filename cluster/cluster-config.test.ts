/**
 * The `cluster:` section and the start without Redis: bad values are refused with their path, the Redis
 * password stays out of URLs and logs, and a runtime whose Redis cannot be reached stops at start with
 * REDIS_UNREACHABLE (exit 69) without printing the password; the same with the wrong password.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { checkConfig } from '../app/config.js';
import { runCli } from '../test/cli-helpers.js';
import { freePort } from '../test/free-port.js';
import { redisEndpointOf } from './config-schema.js';
import { startRedisServer } from './testing/redis-server.js';

const SECRET = 'pw-that-must-never-be-printed';

function check(cluster: Record<string, unknown>) {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-cluster-config-'));
  const file = path.join(dir, 'config.yaml');
  writeFileSync(file, JSON.stringify({ cluster }));
  return checkConfig({ file, env: {} });
}

t.test('the cluster section is validated', async (t) => {
  t.same(check({ enabled: true, redis: { url: 'redis://redis.local:6380/2' } }).issues, [], 'a plain redis URL');
  t.match(check({ enabled: true, redis: { url: `redis://:${SECRET}@redis.local:6379` } }).issues, [{ path: 'cluster.redis.url' }], 'credentials in the URL are refused');
  t.match(check({ enabled: true, redis: { url: 'http://redis.local' } }).issues, [{ path: 'cluster.redis.url' }], 'only redis:// and rediss://');
  t.match(check({ enabled: true, replica_id: 'bad id!' }).issues, [{ path: 'cluster.replica_id' }]);
  t.match(check({ enabled: true, heartbeat_ms: 3000, lease_ttl_ms: 4000 }).issues, [{ path: 'cluster.lease_ttl_ms', message: /twice heartbeat_ms/ }]);
  t.match(check({ enabled: true, redis: { wait_replicas: 99 } }).issues, [{ path: 'cluster.redis.wait_replicas' }]);
  t.match(check({ enabled: true, lease: 1 }).issues, [{ path: 'cluster', message: /unknown key/ }]);
  const { loaded } = check({ enabled: true, redis: { url: 'rediss://redis.local:6380/3', password: SECRET } });
  const endpoint = redisEndpointOf(loaded!.config.cluster);
  t.match(endpoint, { host: 'redis.local', port: 6380, db: 3, password: SECRET, tls: { rejectUnauthorized: true } }, 'rediss:// turns TLS on');
});

t.test('start with the Redis unreachable: REDIS_UNREACHABLE, exit 69, no password printed', async (t) => {
  const closed = await freePort();
  const result = await runCli(['start'], {
    env: {
      CLAWBOX_BROKER_PORT: '0',
      CLAWBOX_HTTP_PORT: '0',
      CLAWBOX_STATE_DIR: mkdtempSync(path.join(tmpdir(), 'clawbox-cluster-down-')),
      CLAWBOX_CLUSTER_ENABLED: 'true',
      CLAWBOX_CLUSTER_REDIS_URL: `redis://127.0.0.1:${closed}/0`,
      CLAWBOX_CLUSTER_REDIS_PASSWORD: SECRET,
      CLAWBOX_CLUSTER_REDIS_CONNECT_TIMEOUT_MS: '1000',
    },
  });
  t.equal(result.code, 69, 'exit 69 (unavailable)');
  t.match(result.stderr, /clawbox: REDIS_UNREACHABLE: cannot reach the cluster's Redis at redis:\/\/127\.0\.0\.1:\d+\/0/);
  t.notMatch(result.stdout + result.stderr, SECRET, 'the password appears nowhere');
});

t.test('start with the wrong Redis password: REDIS_UNREACHABLE, no password printed', async (t) => {
  const redis = await startRedisServer({ requirePass: 'the-right-one' });
  t.teardown(() => redis.destroy());
  const result = await runCli(['start'], {
    env: {
      CLAWBOX_BROKER_PORT: '0',
      CLAWBOX_HTTP_PORT: '0',
      CLAWBOX_STATE_DIR: mkdtempSync(path.join(tmpdir(), 'clawbox-cluster-auth-')),
      CLAWBOX_CLUSTER_ENABLED: 'true',
      CLAWBOX_CLUSTER_REDIS_URL: redis.url,
      CLAWBOX_CLUSTER_REDIS_PASSWORD: SECRET,
    },
  });
  t.equal(result.code, 69);
  t.match(result.stderr, /REDIS_UNREACHABLE: .*(WRONGPASS|invalid|password)/i, 'the reason names the refused login');
  t.notMatch(result.stdout + result.stderr, SECRET, 'the password appears nowhere');
});
