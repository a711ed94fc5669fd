/**
 * An idle box on embedded defaults loads only what it serves: the agent (intent tables, language packs),
 * the model engine, the cluster, the hybrid brain's wiring and the update installer are not loaded until
 * first used. A real runtime from the sources, with a module-load hook (test-fixtures/module-log.mjs) that
 * lists every module it loads; the metric clawbox_feature_loaded says the same from the outside.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { PRECOMPILED_DIR } from '../runtime/operations/validator.js';
import { ROOT, cleanEnv } from '../test/cli-helpers.js';

const HOOK = path.join(ROOT, 'app', 'test-fixtures', 'module-log.mjs');
const ENTRY = path.join(ROOT, 'app', 'main.ts');

interface Runtime {
  httpPort: number;
  /** Resolves with the first log line `match` accepts (seen before or after the call). */
  logLine(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  kill(): void;
}

/** `clawbox start` from the sources with embedded defaults, the module-load hook first; resolved once serving. */
async function startWithHook(stateDir: string, logFile: string): Promise<Runtime> {
  const child = spawn(process.execPath, ['--import', pathToFileURL(HOOK).href, '--import', 'tsx', ENTRY, 'start'], {
    cwd: ROOT,
    env: cleanEnv({ CLAWBOX_STATE_DIR: stateDir, CLAWBOX_HTTP_PORT: '0', CLAWBOX_BROKER_PORT: '0', TEST_MODULE_LOG_FILE: logFile }),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout! }).on('line', (text) => {
    try {
      lines.push(JSON.parse(text) as Record<string, unknown>);
    } catch {
      return;
    }
    for (const wake of waiters) wake();
  });
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`the runtime exited (${code})`))));
  exited.catch(() => {});
  const logLine = (match: (line: Record<string, unknown>) => boolean) =>
    Promise.race([
      exited,
      new Promise<Record<string, unknown>>((resolve) => {
        const check = () => {
          const found = lines.find(match);
          if (!found) return;
          waiters.delete(check);
          resolve(found);
        };
        waiters.add(check);
        check();
      }),
    ]);
  const serving = await logLine((line) => typeof line.httpPort === 'number');
  return { httpPort: serving.httpPort as number, logLine, kill: () => child.kill('SIGKILL') };
}

function request(port: number, method: string, route: string, body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      { host: '127.0.0.1', port, method, path: route, headers: payload ? { 'content-type': 'application/json' } : {} },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** Paths inside node_modules of the dependencies' modules the process loaded so far. */
function dependencyModules(logFile: string): string[] {
  return readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((url) => url.includes('/node_modules/'))
    .map((url) => url.slice(url.lastIndexOf('/node_modules/') + '/node_modules/'.length));
}

/** Repo-relative paths of our own modules the process loaded so far. */
function ourModules(logFile: string): string[] {
  const root = pathToFileURL(ROOT).href;
  return readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((url) => url.startsWith(`${root}/`) && !url.includes('/node_modules/'))
    .map((url) => url.slice(root.length + 1));
}

const featureGauge = (metrics: string, feature: string) => new RegExp(`^clawbox_feature_loaded\\{feature="${feature}"\\} (\\d)$`, 'm').exec(metrics)?.[1];

t.test('an idle box has not loaded the parts it has not used; the first agent request loads the agent', async (t) => {
  const dir = t.testdir({ state: {} });
  const logFile = path.join(dir, 'modules.txt');
  const rt = await startWithHook(path.join(dir, 'state'), logFile);
  t.teardown(() => rt.kill());

  const idle = ourModules(logFile);
  // Positive markers: the hook saw the runtime's own modules, the agent's operations and its scheduler.
  for (const loaded of ['app/app.ts', 'agent/operations.ts', 'agent/scheduler/service.ts', 'models/service.ts']) {
    t.ok(idle.includes(loaded), `${loaded} is loaded at start`);
  }
  for (const lazy of ['agent/agent.ts', 'agent/intents.ts', 'agent/lang-en.ts', 'models/engine/engine.ts', 'cluster/cluster.ts', 'app/brain-wiring.ts', 'update/apply.ts', 'update/cli.ts', 'plugins/runner/channels.ts']) {
    t.notOk(idle.includes(lazy), `${lazy} is not loaded on an idle box`);
  }
  const idleDependencies = dependencyModules(logFile);
  t.ok(idleDependencies.includes('mqtt-packet/parser.js'), "the broker's MQTT parser is loaded at start");
  for (const lazy of ['bl/bl.js', 'readable-stream/lib/ours/index.js']) {
    t.notOk(idleDependencies.includes(lazy), `${lazy} (bl's stream, runtime/broker/mqtt-packet-memory.ts) is not loaded on an idle box`);
  }
  const before = await request(rt.httpPort, 'GET', '/metrics');
  t.equal(featureGauge(before.text, 'agent'), '0', 'clawbox_feature_loaded says the agent is not loaded');

  const answer = await request(rt.httpPort, 'POST', '/api/chat', { text: 'turn on the lamp' });
  t.equal(answer.status, 200, answer.text);
  const data = (JSON.parse(answer.text) as { data: { path: string; actions: { device: string }[] } }).data;
  t.equal(data.path, 'fast', 'the first request is answered on the fast path');
  t.same(
    data.actions.map((a) => a.device),
    ['lamp'],
    'and acts on the lamp',
  );
  t.ok(ourModules(logFile).includes('agent/agent.ts'), 'the agent is loaded now');
  // Every schema that request checked (its body, the operations, the lamp's command) was precompiled.
  if (existsSync(PRECOMPILED_DIR)) {
    t.notOk(dependencyModules(logFile).includes('ajv/dist/core.js'), "the first request did not load Ajv's compiler");
  } else {
    t.comment('no precompiled validators in this checkout (test/precompile-source-validators.ts did not run): not checked');
  }
  const after = await request(rt.httpPort, 'GET', '/metrics');
  t.equal(featureGauge(after.text, 'agent'), '1', 'clawbox_feature_loaded says so');
  const loadedLine = await rt.logLine((line) => line.msg === 'agent loaded on first use');
  t.type(loadedLine.ms, 'number', 'the log says how long the load took');
});
