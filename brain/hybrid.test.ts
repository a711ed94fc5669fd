/**
 * Hybrid deployment end to end, two real processes on loopback: the edge (the whole runtime, createApp,
 * in this process, with no local model, so model work can only be done in time by the brain) and the brain
 * (brain/testing/brain-process.ts: the brain role with the test-only scripted backend, so proposed actions
 * are deterministic), linked over gRPC with mutual TLS 1.3. The brain prints every request it receives;
 * the tests check what left the edge from that record.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import YAML from 'yaml';
import { Writable } from 'node:stream';
import { createApp } from '../app/app.js';
import { createLogging } from '../runtime/logging.js';
import { makeTestContext } from '../app/testing/test-context.js';
import { principalWithFilters } from '../runtime/operations/principal.js';
import { createLinkCertificates } from './certs.js';
import { GrpcBrainLink } from './client.js';
import type { BrainRequest } from './backend.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WAIT_MS = 30_000;

interface BrainProcess {
  child: ChildProcess;
  port: number;
  requests: BrainRequest[];
  /** Resolves with the first recorded request whose prompt matches. */
  received(pattern: RegExp): Promise<BrainRequest>;
}

async function startBrain(dir: string, certs: { ca_cert: string; brain_cert: string; brain_key: string }): Promise<BrainProcess> {
  const file = path.join(dir, 'brain.yaml');
  writeFileSync(
    file,
    YAML.stringify({
      state_dir: path.join(dir, 'brain-state'),
      http: { port: 0 },
      brain: { role: 'brain', listen: { host: '127.0.0.1', port: 0 }, tls: { ca: certs.ca_cert, cert: certs.brain_cert, key: certs.brain_key } },
    }),
  );
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'brain/testing/brain-process.ts'), file], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  const requests: BrainRequest[] = [];
  const waiters: Array<() => void> = [];
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      if (line.startsWith('READY ')) resolve(Number(line.split(' ')[1]));
      if (line.startsWith('REQ ')) {
        requests.push(JSON.parse(line.slice(4)) as BrainRequest);
        for (const wake of waiters.splice(0)) wake();
      }
    });
    child.once('exit', (code) => reject(new Error(`brain process exited with ${code} before it was ready`)));
  });
  return {
    child,
    port,
    requests,
    async received(pattern) {
      const deadline = Date.now() + WAIT_MS;
      for (;;) {
        const found = requests.find((r) => pattern.test(r.prompt));
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`the brain never received a request matching ${pattern}`);
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
  };
}

/** Polls a condition until it holds (a positive marker), failing after WAIT_MS. */
async function until<T>(what: string, probe: () => Promise<T | undefined | null | false>): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const dir = await mkdtemp(path.join(tmpdir(), 'clawbox-hybrid-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const certs = await createLinkCertificates({ dir: path.join(dir, 'certs') });
const brain = await startBrain(dir, certs);
t.teardown(() => {
  if (brain.child.exitCode === null) brain.child.kill('SIGKILL');
});

const test = makeTestContext({
  config: {
    devices: [
      { id: 'lamp', name: 'Desk lamp', driver: 'simulated', capabilities: ['switch'] },
      { id: 'fan', name: 'Ceiling fan', driver: 'simulated', capabilities: ['switch'] },
      { id: 'porch', name: 'Porch light', driver: 'simulated', capabilities: ['switch'] },
    ],
    // Work leaves the box only for a brain in the box's own data region (README, "Your data").
    data: { region: 'eu' },
    brain: {
      region: 'eu',
      endpoint: `grpcs://127.0.0.1:${brain.port}`,
      tls: { ca: certs.ca_cert, cert: certs.edge_cert, key: certs.edge_key },
      health_interval_ms: 200,
      local_only: { devices: ['porch'] },
    },
  },
});
t.teardown(() => test.cleanup());
const quiet = new Writable({ write: (_chunk, _enc, done) => done() });
const app = createApp({ config: test.ctx.config, env: {}, logging: createLogging({ level: (process.env.CLAWBOX_TEST_LOG as 'info' | undefined) ?? 'silent', components: {}, pretty: false, destination: process.env.CLAWBOX_TEST_LOG ? process.stderr : quiet }) });
await app.start();
t.teardown(() => app.stop());

const status = async () => {
  const body = (await (await fetch(`http://127.0.0.1:${app.http.port}/api/status`)).json()) as { sections: { brain?: { link?: Record<string, unknown> } } };
  return body.sections.brain?.link;
};
t.comment('edge started');
const link = await until('the brain link to come up', async () => {
  const current = await status();
  return current?.state === 'up' ? current : null;
});

const everyone = principalWithFilters('mqtt', 'tester', ['#']);
const ask = (text: string, options: { principal?: typeof everyone; session?: string; deadline_ms?: number } = {}) =>
  app.frontDoor
    .invoke<{ text: string; path: string; actions: unknown[]; refused?: Array<{ device: string | null; code: string }> }>(
      'agent.request',
      { text, deadline_ms: options.deadline_ms ?? 5000, ...(options.session ? { session: options.session } : {}) },
      { principal: options.principal ?? everyone, source: 'mqtt' },
    )
    .then(
      (value) => ({ ok: true as const, value }),
      (error: { code?: string }) => ({ ok: false as const, code: error.code ?? String(error) }),
    );

t.test('the link is up: TLS 1.3 with TLS_AES_256_GCM_SHA384, both sides authenticated; files are 0600', async (t) => {
  t.equal(link?.state, 'up', 'the edge reports the link up in /api/status');
  t.equal(link?.protocol, 'TLSv1.3');
  t.equal(link?.cipher, 'TLS_AES_256_GCM_SHA384');
  t.equal(link?.mutual_tls, true);
  t.match(link?.peer_certificate_expires_at, /^\d{4}-/, 'the brain certificate expiry is shown');
  t.match((link?.certificate as { expires_at?: string })?.expires_at, /^\d{4}-/, 'our certificate expiry is shown');
  for (const file of Object.values(certs).filter((f) => f.startsWith('/'))) {
    t.equal(statSync(file).mode & 0o777, 0o600, `${path.basename(file)} is 0600`);
  }
});

/**
 * One TLS handshake against the brain with these options: what was negotiated, or the error. In TLS 1.3 the
 * server judges the client certificate after the client's side of the handshake, so a refusal may arrive
 * after secureConnect: `verdict` waits for the server to close or to keep the connection (a ping answered).
 */
function handshake(options: object, verdict = false): Promise<{ protocol: string | null; cipher: string | null } | { error: string }> {
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: brain.port,
      servername: 'localhost',
      ALPNProtocols: ['h2'],
      ca: readFileSync(certs.ca_cert),
      cert: readFileSync(certs.edge_cert),
      key: readFileSync(certs.edge_key),
      ...options,
    });
    socket.once('error', (error) => resolve({ error: error.message }));
    socket.once('secureConnect', () => {
      const result = { protocol: socket.getProtocol(), cipher: socket.getCipher()?.standardName ?? null };
      if (!verdict) {
        socket.destroy();
        resolve(result);
        return;
      }
      // An HTTP/2 preface: an accepted client gets the server's SETTINGS back; a refused one an alert.
      socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00');
      socket.once('data', () => {
        socket.destroy();
        resolve(result);
      });
      socket.once('close', () => resolve({ error: 'closed by the server' }));
    });
  });
}

t.test('the brain negotiates TLS 1.3 + AES-256-GCM only and refuses clients without a valid certificate', async (t) => {
  t.same(await handshake({}, true), { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' }, 'what a well-configured edge gets (and is accepted)');
  t.match(await handshake({ ciphers: 'TLS_AES_128_GCM_SHA256' }), { error: /handshake failure/ }, 'an AES-128 client is refused');
  t.match(await handshake({ maxVersion: 'TLSv1.2' }), { error: /protocol version/ }, 'a TLS 1.2 client is refused');
  t.match(await handshake({ cert: undefined, key: undefined }, true), { error: /certificate required|closed by the server/ }, 'a client without a certificate is refused');
  // A certificate from another CA over gRPC: the link never comes up and nothing reaches the brain.
  const other = await createLinkCertificates({ dir: path.join(dir, 'other') });
  const before = brain.requests.length;
  const stranger = new GrpcBrainLink({ target: `127.0.0.1:${brain.port}`, tls: { ca: certs.ca_cert, cert: other.edge_cert, key: other.edge_key } });
  await stranger.start();
  t.teardown(() => stranger.stop());
  t.equal(stranger.available(), false, 'a foreign client certificate gets no link');
  t.equal(stranger.status().state, 'down');
  const attempt = await stranger.generate({ prefix: '', prompt: 'User: hi\nAssistant: ', max_tokens: 8, tool_schema: null, session: '', temperature: 0, stop: [] }, { deadline: Date.now() + 2000 }).then(
    () => 'answered',
    (error: { code?: string }) => error.code,
  );
  t.not(attempt, 'answered');
  t.equal(brain.requests.length, before, 'the brain received nothing from it');
});

t.test('a request the edge cannot serve in time (no local model) is answered by the brain within its deadline', async (t) => {
  const answer = await ask('what do you think about the weather');
  t.ok(answer.ok, JSON.stringify(answer));
  if (!answer.ok) return;
  t.equal(answer.value.path, 'remote');
  t.equal(answer.value.text, 'from the brain');
  await brain.received(/weather/);
});

t.test('an action the brain proposes runs through the edge front door like a local one', async (t) => {
  const done = await ask('propose lamp on');
  t.ok(done.ok && done.value.path === 'remote', JSON.stringify(done));
  t.equal(app.devices.get('lamp')?.state.state, 'ON', 'the lamp was switched');
  // A caller allowed the agent and the lamp only: the brain proposes the fan, the edge refuses it.
  const narrow = principalWithFilters('mqtt', 'narrow', ['agent/request', 'lamp/set']);
  const before = app.devices.get('fan')?.state.state ?? null;
  const refused = await ask('propose fan on', { principal: narrow });
  t.ok(refused.ok, JSON.stringify(refused));
  if (!refused.ok) return;
  t.equal(refused.value.actions.length, 0, 'nothing ran');
  t.match(refused.value.refused, [{ device: 'fan', code: 'FORBIDDEN' }], 'refused at the edge as FORBIDDEN');
  t.equal(app.devices.get('fan')?.state.state ?? null, before, 'the fan did not change');
  await brain.received(/propose fan on/);
});

t.test('local_only devices never leave the box; session ids leave pseudonymised', async (t) => {
  const local = await ask('propose porch on');
  t.same(local, { ok: false, code: 'LOCAL_ONLY' }, 'a request naming a local_only device is not offloaded (no local model: refused)');
  const fast = await ask('turn on the porch light');
  t.ok(fast.ok && fast.value.path === 'fast', 'the fast path still controls it on the box');
  const chat = await ask('tell me a joke', { session: 'telegram:alice-4471' });
  t.ok(chat.ok && chat.value.path === 'remote', JSON.stringify(chat));
  const got = await brain.received(/joke/);
  t.match(got.session, /^p-[A-Za-z0-9_-]{22}$/, 'the session key is a pseudonym');
  const everything = JSON.stringify(brain.requests);
  t.notMatch(everything, /porch/i, 'no request the brain received names the local_only device');
  t.notMatch(everything, /alice|telegram/i, 'no request carries the sender id');
  t.match(everything, /Desk lamp/, 'the shared devices are in the directory it received');
  const offloads = await app.audit.query({ op: 'brain.offload' });
  t.ok(offloads.length >= 3, 'every offload is in the audit log');
  const last = offloads.at(-1)!;
  t.match(last.proposed, { brain: `grpc:127.0.0.1:${brain.port}`, devices: ['lamp', 'fan'] }, 'what left and to which brain');
  t.notOk(JSON.stringify(offloads).includes('porch'));
});

t.test('the brain killed mid-request: the edge answers by the next rung (BUSY) before the deadline', async (t) => {
  const pending = ask('slow thinking please', { deadline_ms: 8000 });
  await brain.received(/slow thinking/);
  brain.child.kill('SIGKILL');
  const answer = await pending;
  t.same(answer.ok ? answer : { ok: false, code: answer.code }, { ok: false, code: 'BUSY' }, 'BUSY, not a wait for the deadline');
  // The breaker and the health checks take the remote rung out: the next request is not offloaded.
  await until('the link to go down', async () => (await status())?.state === 'down');
  const next = await ask('another question for the brain', { deadline_ms: 3000 });
  t.notOk(next.ok, 'without the brain and without a local model there is no answer');
  if (!next.ok) t.ok(['BUSY', 'MODEL_NOT_LOADED'].includes(next.code), next.code);
});
