/**
 * The brain link's parts in one process (the two-process test is hybrid.test.ts): certificate rotation
 * without a restart, cancellation and the gRPC deadline reaching the brain's generation, the FIPS
 * requirement, the circuit breaker, `clawbox brain certs`, and the OpenAI-compatible link against a
 * stand-in server on loopback (llama-server, vLLM and Ollama cannot run here; the stand-in speaks the
 * /v1/chat/completions and /v1/models shapes they share).
 */
import { getFips } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { BrainBackend, BrainRequest } from './backend.js';
import { CircuitBreaker } from './breaker.js';
import { createLinkCertificates } from './certs.js';
import { runBrainCommand } from './cli.js';
import { GrpcBrainLink } from './client.js';
import { OpenAiBrainLink } from './openai-client.js';
import { BrainServer } from './server.js';

const REQUEST: BrainRequest = { prefix: 'p', prompt: 'User: hi\nAssistant: ', max_tokens: 8, tool_schema: null, session: '', temperature: 0, stop: [] };

async function until(what: string, probe: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A backend that waits until aborted and reports how it ended. */
function waitingBackend() {
  const aborted: string[] = [];
  let started = 0;
  const backend: BrainBackend = {
    generate: (_request, { signal }) =>
      new Promise((_resolve, reject) => {
        started++;
        signal.addEventListener('abort', () => {
          aborted.push(String((signal.reason as { message?: string })?.message ?? signal.reason));
          reject(signal.reason);
        });
      }),
    health: () => ({ serving: true, model: 'waiting', sequences: 2 }),
  };
  return { backend, aborted, started: () => started };
}

async function pair(t: { teardown(fn: () => unknown): void }, backend: BrainBackend, days = 365) {
  const dir = await mkdtemp(path.join(tmpdir(), 'clawbox-brain-link-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const certs = await createLinkCertificates({ dir, days });
  const server = new BrainServer({ host: '127.0.0.1', port: 0, tls: { ca: certs.ca_cert, cert: certs.brain_cert, key: certs.brain_key }, backend });
  const port = await server.start();
  t.teardown(() => server.stop());
  const link = new GrpcBrainLink({ target: `127.0.0.1:${port}`, tls: { ca: certs.ca_cert, cert: certs.edge_cert, key: certs.edge_key }, health_interval_ms: 200 });
  await link.start();
  t.teardown(() => link.stop());
  return { dir, certs, server, link, port };
}

t.test('cancelling the call aborts the generation on the brain', async (t) => {
  const waiting = waitingBackend();
  const { link } = await pair(t, waiting.backend);
  const controller = new AbortController();
  const call = link.generate(REQUEST, { deadline: Date.now() + 60_000, signal: controller.signal }).catch((error: { code?: string }) => error.code);
  await until('the brain to start generating', () => waiting.started() === 1);
  controller.abort();
  t.equal(await call, 'DEADLINE_EXCEEDED', 'the caller is told it was cancelled');
  await until('the brain to abort', () => waiting.aborted.length === 1);
  t.match(waiting.aborted[0], /cancelled|deadline/);
});

t.test("the caller's deadline is the gRPC deadline: the brain stops when it passes", async (t) => {
  const waiting = waitingBackend();
  const { link } = await pair(t, waiting.backend);
  const code = await link.generate(REQUEST, { deadline: Date.now() + 500 }).catch((error: { code?: string }) => error.code);
  t.equal(code, 'DEADLINE_EXCEEDED');
  await until('the brain to abort', () => waiting.aborted.length === 1);
});

t.test('certificates are rotated without a restart: new files, new handshakes, the link stays up', async (t) => {
  const backend: BrainBackend = {
    generate: async () => ({ text: 'ok', stop_reason: 'eos', model: 'x', usage: { prompt_tokens: 1, cached_tokens: 0, evaluated_tokens: 1, generated_tokens: 1, queue_ms: 0, prefill_ms: 0, decode_ms: 0 } }),
    health: () => ({ serving: true, model: 'x', sequences: 1 }),
  };
  const { dir, server, link } = await pair(t, backend, 365);
  const before = link.status();
  t.equal(before.state, 'up');
  // A whole new CA and key pairs in place (as `clawbox brain certs --force` writes them), valid 30 days.
  await createLinkCertificates({ dir, days: 30, force: true });
  await until('both sides to reload', () => server.status().rotations >= 1 && link.status().certificate?.expires_at !== before.certificate?.expires_at);
  await until('the link up on the new certificates', () => link.status().state === 'up' && link.status().peer_certificate_expires_at === server.status().certificate?.expires_at);
  t.not(link.status().peer_certificate_expires_at, before.peer_certificate_expires_at, 'the brain presents its new certificate');
  const reply = await link.generate(REQUEST, { deadline: Date.now() + 10_000 });
  t.equal(reply.text, 'ok', 'requests flow over the new certificates');
});

t.test('brain.require_fips refuses to start the link without the FIPS provider', async (t) => {
  if (getFips() === 1) {
    t.pass('this Node runs in FIPS mode; the refusal cannot be shown here');
    return;
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'clawbox-brain-fips-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const certs = await createLinkCertificates({ dir });
  const link = new GrpcBrainLink({ target: '127.0.0.1:1', tls: { ca: certs.ca_cert, cert: certs.edge_cert, key: certs.edge_key }, require_fips: true });
  await t.rejects(link.start(), { code: 'FIPS_REQUIRED' });
  t.equal(link.status().fips, false, 'and reports fips: false');
});

t.test('circuit breaker: opens after the threshold, one trial after the cool-down, doubling on failure', async (t) => {
  let now = 0;
  const breaker = new CircuitBreaker({ threshold: 2, cooldown_ms: 100, max_cooldown_ms: 250, now: () => now });
  breaker.failure();
  t.equal(breaker.state, 'closed');
  breaker.failure();
  t.equal(breaker.state, 'open');
  t.notOk(breaker.allow());
  now = 100;
  t.equal(breaker.state, 'half_open');
  t.ok(breaker.allow(), 'one trial');
  t.notOk(breaker.allow(), 'only one');
  breaker.failure();
  t.equal(breaker.snapshot().cooldown_ms, 200);
  now = 250;
  t.equal(breaker.state, 'open', 'the longer cool-down holds');
  now = 300;
  t.ok(breaker.allow());
  breaker.success();
  t.equal(breaker.state, 'closed');
  t.equal(breaker.snapshot().cooldown_ms, 100);
});

t.test('clawbox brain certs writes the six files 0600 and refuses to overwrite without --force', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'clawbox-brain-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let out = '';
  const io = {
    stdout: (text: string) => {
      out += text;
    },
  };
  const loadConfig = (() => {
    throw new Error('not needed with --dir');
  }) as never;
  t.equal(await runBrainCommand(['certs', '--dir', dir, '--host', 'brain.lan', '--days', '10'], loadConfig, io), 0);
  t.match(out, /brain link certificates in/);
  const { X509Certificate } = await import('node:crypto');
  const cert = new X509Certificate(await readFile(path.join(dir, 'brain.crt')));
  t.match(cert.subjectAltName, /DNS:brain\.lan/);
  t.ok(cert.checkIssued(new X509Certificate(await readFile(path.join(dir, 'ca.crt')))), 'signed by the link CA');
  await t.rejects(runBrainCommand(['certs', '--dir', dir], loadConfig, io), { code: 'USAGE' });
  await t.rejects(runBrainCommand(['certs', '--dir', dir, '--days', '0', '--force'], loadConfig, io), { code: 'USAGE' });
});

t.test('an OpenAI-compatible endpoint as the brain (stand-in server on loopback)', async (t) => {
  const bodies: Array<Record<string, unknown>> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/v1/models') return void res.end(JSON.stringify({ data: [{ id: 'big' }] }));
      bodies.push(JSON.parse(body) as Record<string, unknown>);
      res.end(JSON.stringify({ model: 'big', choices: [{ message: { content: '{"device":"none","reply":"hello"}' }, finish_reason: 'stop' }], usage: { prompt_tokens: 12, completion_tokens: 9 } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const port = (server.address() as { port: number }).port;
  t.throws(() => new OpenAiBrainLink({ url: 'http://192.0.2.1:8000' }), { code: 'CONFIG_INVALID' }, 'plain http only to loopback');
  const link = new OpenAiBrainLink({ url: `http://127.0.0.1:${port}`, model: 'big' });
  await link.start();
  t.teardown(() => link.stop());
  t.ok(link.available());
  const schema = { type: 'object', properties: { device: { type: 'string' } } };
  const reply = await link.generate({ ...REQUEST, tool_schema: schema, session: 'p-abc' }, { deadline: Date.now() + 10_000 });
  t.equal(reply.text, '{"device":"none","reply":"hello"}');
  t.equal(reply.usage.generated_tokens, 9);
  t.match(bodies[0], { model: 'big', max_tokens: 8, user: 'p-abc', response_format: { type: 'json_schema', json_schema: { schema } } });
  t.match(bodies[0]?.messages, [{ role: 'system', content: 'p' }, { role: 'user' }]);
});
