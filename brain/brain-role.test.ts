/**
 * The real brain role: `clawbox start --mode brain` in its own process, serving a generated tiny GGUF
 * (models/gguf/generate.ts; its text is gibberish, so only the shape of the answer is checked) over the
 * gRPC API with mutual TLS. The edge side is a GrpcBrainLink in this process.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import YAML from 'yaml';
import { tempDir, tinyModel } from '../models/testing/fixtures.js';
import { createLinkCertificates } from './certs.js';
import { GrpcBrainLink } from './client.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

t.test('clawbox start --mode brain serves its model over the link; usage comes back; SIGTERM stops it', async (t) => {
  const dir = await tempDir(t, 'clawbox-brain-role-');
  const model = await tinyModel(t);
  const certs = await createLinkCertificates({ dir: path.join(dir, 'certs') });
  const config = path.join(dir, 'config.yaml');
  writeFileSync(
    config,
    YAML.stringify({
      state_dir: path.join(dir, 'state'),
      http: { port: 0 },
      models: [{ name: 'tiny', path: model.path, context_size: 512, sequences: 2, gpu: 'cpu' }],
      brain: { listen: { host: '127.0.0.1', port: 0 }, tls: { ca: certs.ca_cert, cert: certs.brain_cert, key: certs.brain_key } },
    }),
  );
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'app/main.ts'), 'start', '--mode', 'brain', '--config', config], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CLAWBOX_LOG_LEVEL: 'info' },
  });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /"brainPort":(\d+)/.exec(line);
      if (match) resolve(Number(match[1]));
    });
    void exited.then((code) => reject(new Error(`the brain exited with ${code} before serving`)));
  });
  const link = new GrpcBrainLink({ target: `127.0.0.1:${port}`, tls: { ca: certs.ca_cert, cert: certs.edge_cert, key: certs.edge_key }, health_interval_ms: 200 });
  await link.start();
  t.teardown(() => link.stop());
  // Serving once its model has loaded (positive marker: the health check says so).
  for (const deadline = Date.now() + 60_000; !link.available(); ) {
    if (Date.now() > deadline) throw new Error(`the brain never served: ${JSON.stringify(link.status())}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.equal(link.status().brain?.model, 'tiny');
  const schema = { type: 'object', properties: { device: { enum: ['lamp', 'none'] } }, required: ['device'] };
  const reply = await link.generate(
    { prefix: 'You control devices.\n', prompt: 'User: lamp on\nAssistant: ', max_tokens: 128, tool_schema: schema, session: 'p-test', temperature: 0, stop: [] },
    { deadline: Date.now() + 30_000 },
  );
  // The grammar holds the output to the schema; random weights may still ramble in whitespace until the budget.
  if (reply.stop_reason === 'max_tokens') t.match(reply.text, /^\s*\{\s*"device"/, 'the answer follows the tool schema (cut by the budget)');
  else t.match(JSON.parse(reply.text), { device: /^(lamp|none)$/ }, 'the answer follows the tool schema');
  t.ok(reply.usage.generated_tokens > 0, 'usage in the reply');
  t.ok(reply.usage.prompt_tokens > 0);
  t.equal(reply.model, 'tiny');
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'stops cleanly on SIGTERM');
});
