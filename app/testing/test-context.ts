/**
 * A real RuntimeContext for tests that start components by hand: config through the real loader
 * (file + env overrides + schema defaults), a temp state dir, a silent logger, a real EventBus,
 * StatusRegistry and prom Registry. Ports default to 0 (ephemeral) so tests never collide.
 *
 *   const t = makeTestContext({ config: { broker: { anonymous: 'never' } } });
 *   await broker.start(t.ctx); ... await t.cleanup();
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import YAML from 'yaml';
import { loadConfig } from '../config.js';
import type { RuntimeContext } from '../../runtime/context.js';
import { EventBus, type LifecycleState } from '../../runtime/events.js';
import { createLogging } from '../../runtime/logging.js';
import type { LogLevel } from '../../runtime/config/schema.js';
import { StatusRegistry } from '../../runtime/status.js';
import { StateStore } from '../../runtime/store/state-store.js';

export interface TestContextOptions {
  /** Raw config as it would be in the YAML file (validated, defaults applied). */
  config?: Record<string, unknown>;
  /** Extra CLAWBOX_* environment overrides (applied over the defaults below). */
  env?: Record<string, string>;
  mode?: 'local' | 'appliance';
  /** Reuse a state dir (e.g. to test a restart); otherwise a fresh temp dir that cleanup() removes. */
  stateDir?: string;
  /** Log level for every component; 'silent' unless CLAWBOX_TEST_LOG is set. */
  logLevel?: LogLevel;
}

export interface TestContext {
  readonly ctx: RuntimeContext;
  readonly stateDir: string;
  /** Emits a lifecycle event on the bus, as the real Lifecycle would. */
  setLifecycle(state: LifecycleState): void;
  /** Removes the temp dirs this helper made (not a stateDir passed in). */
  cleanup(): void;
}

const PORT_DEFAULTS = {
  CLAWBOX_BROKER_PORT: '0',
  CLAWBOX_BROKER_TLS_PORT: '0',
  CLAWBOX_HTTP_PORT: '0',
};

export function makeTestContext(options: TestContextOptions = {}): TestContext {
  const scratch = mkdtempSync(path.join(tmpdir(), 'clawbox-test-'));
  const stateDir = options.stateDir ?? path.join(scratch, 'state');
  const configFile = path.join(scratch, 'config.yaml');
  writeFileSync(configFile, YAML.stringify({ ...options.config, state_dir: stateDir }));
  const env: NodeJS.ProcessEnv = { ...PORT_DEFAULTS, ...options.env };
  const { config, source } = loadConfig({ file: configFile, env, ...(options.mode ? { mode: options.mode } : {}) });

  const level = options.logLevel ?? (process.env.CLAWBOX_TEST_LOG as LogLevel | undefined) ?? 'silent';
  const sink = new Writable({ write: (_chunk, _enc, done) => done() });
  const logging = createLogging({
    level,
    components: {},
    pretty: false,
    destination: process.env.CLAWBOX_TEST_LOG ? process.stderr : sink,
  });
  const bus = new EventBus();
  let lifecycle: LifecycleState = 'starting';
  bus.on('lifecycle', ({ state }) => {
    lifecycle = state;
  });

  const ctx: RuntimeContext = {
    config,
    configSource: source,
    version: '0.0.0-test',
    startedAt: Date.now(),
    stateDir,
    store: new StateStore(stateDir, logging.forComponent('store')),
    bus,
    status: new StatusRegistry(),
    metrics: new Registry(),
    logRing: logging.ring,
    logger: (component) => logging.forComponent(component),
    lifecycleState: () => lifecycle,
  };
  return {
    ctx,
    stateDir,
    setLifecycle: (state) => bus.emit('lifecycle', { state }),
    cleanup: () => rmSync(scratch, { recursive: true, force: true }),
  };
}
