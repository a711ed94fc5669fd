/**
 * Test support for the plugin host: a real RuntimeContext (temp state dir, silent logs), a PluginHost over
 * the fixture plugins, optionally a real Broker as its messaging. Everything is stopped in t.teardown.
 */
import { fileURLToPath } from 'node:url';
import { Broker } from '../../runtime/broker/broker.js';
import { type TestContext, makeTestContext } from '../../app/testing/test-context.js';
import { PluginHost, type PluginHostDeps } from '../host.js';

export const FIXTURES = fileURLToPath(new URL('../test-fixtures/', import.meta.url));

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface HostStack {
  host: PluginHost;
  tc: TestContext;
  broker?: Broker;
  url?: string;
}

export async function startHost(
  t: Teardown,
  options: { plugins?: Record<string, unknown>; broker?: boolean; deps?: Partial<PluginHostDeps>; runtimeConfig?: Record<string, unknown> } = {},
): Promise<HostStack> {
  const tc = makeTestContext({ config: { devices: [], ...options.runtimeConfig } });
  let broker: Broker | undefined;
  if (options.broker) {
    broker = new Broker();
    await broker.start(tc.ctx);
    tc.setLifecycle('serving');
  }
  const host = new PluginHost({
    ...(broker ? { messaging: broker } : {}),
    env: {},
    ...options.deps,
    config: {
      dirs: [FIXTURES],
      call_timeout_ms: 3000,
      restart: { initial_ms: 50, max_ms: 400, stable_ms: 60_000 },
      ...options.plugins,
    },
  });
  t.teardown(async () => {
    await host.stop();
    await broker?.stop();
    tc.cleanup();
  });
  await host.start(tc.ctx);
  return { host, tc, ...(broker ? { broker, url: `mqtt://127.0.0.1:${broker.port}` } : {}) };
}

/**
 * Waits until each plugin reports `running` (start them eagerly: `lazy: false`), so a call that follows
 * does not also wait for a start, which a loaded machine can stretch past the host's call deadline.
 */
export async function waitRunning(host: PluginHost, plugins: string[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const states = () => plugins.map((name) => `${name}: ${host.list().find((p) => p.name === name)?.figures.state}`);
  while (!states().every((line) => line.endsWith(': running'))) {
    if (Date.now() > deadline) throw new Error(`plugins not running: ${states().join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
