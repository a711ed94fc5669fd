/**
 * `clawbox models pull` against a local HTTP server serving generated GGUF files (nothing is downloaded
 * from outside): a plain URL, a cut connection, an interrupted pull resumed with a range request, a
 * wrong sha256, too little free space, `hf:` URIs against a local Hugging Face endpoint, and the local
 * state-dir config that the next start reads.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import YAML from 'yaml';
import { loadConfig } from '../app/config.js';
import { runModelsCommand } from './cli.js';
import { readDownloads } from './download-progress.js';
import { generateModel } from './gguf/generate.js';
import { checkModelUri, displayUri, pullModel } from './pull.js';
import { sha256File } from './registry.js';
import { rejectionCode, tempDir, tinyModel } from './testing/fixtures.js';
import { startModelServer } from './testing/model-server.js';

function cliIo(env: NodeJS.ProcessEnv, signal?: AbortSignal) {
  const out = { stdout: '', stderr: '' };
  return {
    out,
    io: {
      stdout: (s: string) => {
        out.stdout += s;
      },
      stderr: (s: string) => {
        out.stderr += s;
      },
      env,
      isTTY: false,
      ...(signal ? { signal } : {}),
    },
  };
}

t.test('model URIs are checked before any network access', async (t) => {
  t.equal(checkModelUri('https://example.org/m.gguf'), 'https');
  t.equal(checkModelUri('hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M'), 'hf');
  t.equal(checkModelUri('hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf'), 'hf');
  t.equal(checkModelUri('hf:bartowski/Llama-3.2-1B-Instruct-GGUF'), 'hf');
  t.equal(displayUri('https://h.example/m.gguf?X-Amz-Signature=abc#x'), 'https://h.example/m.gguf?…', 'a signed URL is stored and shown without its query');
  t.equal(displayUri('hf:a/b:Q4_K_M'), 'hf:a/b:Q4_K_M');
  for (const bad of ['file:///etc/passwd', 'ftp://host/m.gguf', 'https://user:secret@host/m.gguf', '/tmp/m.gguf', 'hf:', 'hf:owner', 'https://host/a b.gguf', `https://host/${'a'.repeat(3000)}`]) {
    t.throws(() => checkModelUri(bad), { code: 'USAGE' }, bad.slice(0, 40));
  }
  const dir = await tempDir(t);
  t.equal(await rejectionCode(runModelsCommand(['pull', 'file:///etc/passwd'], loadConfig, cliIo({ CLAWBOX_STATE_DIR: dir }).io)), 'USAGE');
  t.equal(await rejectionCode(runModelsCommand(['pull', 'https://h/m.gguf', '--keep-free=-1'], loadConfig, cliIo({ CLAWBOX_STATE_DIR: dir }).io)), 'USAGE');
  t.equal(await rejectionCode(runModelsCommand(['pull', 'https://h/m.gguf', '--sha256', 'xyz'], loadConfig, cliIo({ CLAWBOX_STATE_DIR: dir }).io)), 'USAGE');
  t.same(await readdir(dir), [], 'nothing written for refused arguments');
});

t.test('pull over HTTP into the state dir; the local config it writes is what the next start loads', async (t) => {
  const model = await tinyModel(t, { quant: 'Q4_0' });
  // One cut connection mid-transfer: ipull retries the chunk with a range request.
  const server = await startModelServer({ file: model.path, cuts: 1, cutAfterBytes: 40_000 });
  t.teardown(() => server.close());
  const stateDir = await tempDir(t);
  const env = { CLAWBOX_STATE_DIR: stateDir };
  const run = cliIo(env);
  const code = await runModelsCommand(['pull', `${server.url}/files/tiny-q4.gguf`, '--sha256', model.sha256, '--keep-free', '0'], loadConfig, run.io);
  t.equal(code, 0, run.out.stderr);
  const file = path.join(stateDir, 'models', 'tiny-q4.gguf');
  t.equal(await sha256File(file), model.sha256, 'the file is complete despite the cut connection');
  t.ok(server.requests.filter((r) => r.range).length >= 2, 'the cut range was requested again');
  t.match(run.out.stdout, /pulled tiny-q4 into .*tiny-q4\.gguf and added it to .*config\.yaml: llama .* Q4_0/);
  t.match(run.out.stderr, /downloading tiny-q4\.gguf: 100%/);

  const loaded = loadConfig({ env });
  t.equal(loaded.source, path.join(stateDir, 'config.yaml'), 'local mode without a file reads <state dir>/config.yaml');
  t.match(loaded.config.models, [{ name: 'tiny-q4', path: file, sha256: model.sha256, source: `${server.url}/files/tiny-q4.gguf`, role: 'main' }]);

  const list = cliIo(env);
  t.equal(await runModelsCommand(['list'], loadConfig, list.io), 0);
  t.match(list.out.stdout, /tiny-q4\s+main\s+llama\s+\S+\s+Q4_0\s+2048\s+\S+\s+KiB\s+\S+tiny-q4\.gguf\s+verified/, 'the hash pull computed counts as verified');

  const [record] = await readDownloads(stateDir);
  t.match(record, { phase: 'done', name: 'tiny-q4', downloaded_bytes: model.bytes, total_bytes: model.bytes }, 'the progress record the status page shows');

  const again = cliIo(env);
  t.equal(await rejectionCode(runModelsCommand(['pull', `${server.url}/files/tiny-q4.gguf`], loadConfig, again.io)), 'USAGE', 'the same name twice is refused before downloading');
  const second = cliIo(env);
  t.equal(
    await rejectionCode(runModelsCommand(['pull', `${server.url}/files/other.gguf`, '--keep-free', '0'], loadConfig, second.io)),
    'USAGE',
    'a second main model is refused before downloading',
  );
});

t.test('an interrupted pull keeps its partial file and the next one resumes with a range request', async (t) => {
  const dir = await tempDir(t);
  // Larger than ipull's 5 MiB chunk, so one chunk is complete when the transfer stops.
  await mkdir(path.join(dir, 'src'));
  const model = await generateModel({
    path: path.join(dir, 'src', 'mid.gguf'),
    shape: { n_vocab: 4096, n_embd: 512, n_layer: 2, n_head: 8, n_head_kv: 8, n_ff: 1024, context_length: 2048 },
    quant: 'Q8_0',
    seed: 3,
  });
  t.ok(model.bytes > 7 << 20, `the model spans more than one chunk (${model.bytes} bytes)`);
  const stallAt = 6 << 20;
  const server = await startModelServer({ file: model.path, stallAtOffset: stallAt });
  t.teardown(() => server.close());
  const stateDir = path.join(dir, 'state');
  const env = { CLAWBOX_STATE_DIR: stateDir };
  const uri = `${server.url}/m/mid.gguf`;

  const stop = new AbortController();
  const first = cliIo(env, stop.signal);
  const pulling = runModelsCommand(['pull', uri, '--name', 'mid', '--keep-free', '0', '--json'], loadConfig, first.io);
  // The positive marker: ipull records a finished chunk by writing its progress after the file's last
  // byte in the partial file, so the partial file grows past the model's size.
  const partial = path.join(stateDir, 'models', 'mid.gguf.ipull');
  const deadline = Date.now() + 90_000;
  while (((await stat(partial).catch(() => null))?.size ?? 0) <= model.bytes && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  stop.abort();
  t.equal(await pulling, 130, 'Ctrl-C exits 130');
  t.match(first.out.stderr, /the partial download is kept .* run the same command again to resume/);
  t.ok(existsSync(path.join(stateDir, 'models', 'mid.gguf.ipull')), 'the partial file is kept');
  t.notOk(existsSync(path.join(stateDir, 'models', 'mid.gguf')), 'no final file yet');
  t.notOk(existsSync(path.join(stateDir, 'config.yaml')), 'nothing added to the config yet');
  const interrupted = await readDownloads(stateDir);
  t.match(interrupted, [{ phase: 'failed', error: { code: 'MODEL_DOWNLOAD_FAILED' } }], 'the record says the pull stopped');

  server.set({ stallAtOffset: undefined });
  const before = server.requests.length;
  const second = cliIo(env);
  t.equal(await runModelsCommand(['pull', uri, '--name', 'mid', '--keep-free', '0', '--sha256', model.sha256], loadConfig, second.io), 0, second.out.stderr);
  const ranges = server.requests.slice(before).flatMap((r) => (r.range ? [Number(/bytes=(\d+)-/.exec(r.range)?.[1])] : []));
  t.ok(ranges.length > 0 && ranges.every((start) => start >= 5 << 20), `resumed from the first incomplete chunk (ranges from ${ranges.join(', ')})`);
  t.equal(await sha256File(path.join(stateDir, 'models', 'mid.gguf')), model.sha256);
  t.match(YAML.parse(await readFile(path.join(stateDir, 'config.yaml'), 'utf8')), { models: [{ name: 'mid', sha256: model.sha256 }] });
});

t.test('Ctrl-C on the real command: exit 130, the partial file kept, the progress record says so', async (t) => {
  const dir = await tempDir(t);
  await mkdir(path.join(dir, 'src'));
  const model = await generateModel({
    path: path.join(dir, 'src', 'mid.gguf'),
    shape: { n_vocab: 4096, n_embd: 512, n_layer: 2, n_head: 8, n_head_kv: 8, n_ff: 1024, context_length: 2048 },
    quant: 'Q8_0',
    seed: 4,
  });
  const server = await startModelServer({ file: model.path, stallAtOffset: 6 << 20 });
  t.teardown(() => server.close());
  const stateDir = path.join(dir, 'state');
  const main = fileURLToPath(new URL('../app/main.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', main, 'models', 'pull', `${server.url}/m/mid.gguf`, '--keep-free', '0'], {
    env: { ...process.env, CLAWBOX_STATE_DIR: stateDir, CLAWBOX_CONFIG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => child.kill('SIGKILL'));
  const partial = path.join(stateDir, 'models', 'mid.gguf.ipull');
  const deadline = Date.now() + 90_000;
  while (((await stat(partial).catch(() => null))?.size ?? 0) <= model.bytes && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGINT');
  t.equal(await exited, 130, stderr);
  t.match(stderr, /interrupted: the partial download is kept/);
  t.ok(existsSync(partial), 'the partial file is kept');
  t.match(await readDownloads(stateDir), [{ phase: 'failed', error: { code: 'MODEL_DOWNLOAD_FAILED' } }]);
});

t.test('a wrong sha256 deletes the download and changes no config', async (t) => {
  const model = await tinyModel(t);
  const server = await startModelServer({ file: model.path });
  t.teardown(() => server.close());
  const stateDir = await tempDir(t);
  const run = cliIo({ CLAWBOX_STATE_DIR: stateDir });
  const code = await rejectionCode(runModelsCommand(['pull', `${server.url}/x/tiny.gguf`, '--sha256', 'a'.repeat(64), '--keep-free', '0'], loadConfig, run.io));
  t.equal(code, 'MODEL_HASH_MISMATCH');
  t.notOk(existsSync(path.join(stateDir, 'models', 'tiny.gguf')), 'the wrong file is deleted');
  t.notOk(existsSync(path.join(stateDir, 'config.yaml')), 'no config written');
  t.match(await readDownloads(stateDir), [{ phase: 'failed', error: { code: 'MODEL_HASH_MISMATCH' } }]);
});

t.test('too little free space is refused before the transfer', async (t) => {
  const model = await tinyModel(t);
  const server = await startModelServer({ file: model.path });
  t.teardown(() => server.close());
  const stateDir = await tempDir(t);
  const run = cliIo({ CLAWBOX_STATE_DIR: stateDir });
  // A reserve larger than any disk here stands in for a full disk.
  const code = await rejectionCode(runModelsCommand(['pull', `${server.url}/x/tiny.gguf`, '--keep-free', '9999999'], loadConfig, run.io));
  t.equal(code, 'NO_SPACE');
  t.equal(server.requests.filter((r) => r.range).length, 0, 'no byte of the model was requested');
  t.notOk(existsSync(path.join(stateDir, 'config.yaml')));
  const error = await pullModel({ uri: `${server.url}/x/tiny.gguf`, dir: path.join(stateDir, 'models'), keepFreeBytes: Number.MAX_SAFE_INTEGER }).catch((e: unknown) => e);
  t.match(error, { code: 'NO_SPACE', details: { needed_bytes: model.bytes } }, 'the error says how much is needed');

  const missing = await pullModel({ uri: `${server.url}/missing/tiny.gguf`, dir: path.join(stateDir, 'models'), keepFreeBytes: 0 }).catch((e: unknown) => e);
  t.match(missing, { code: 'MODEL_DOWNLOAD_FAILED' }, 'a 404 is a coded download failure');
});

t.test('hf: URIs resolve against the configured Hugging Face endpoint', async (t) => {
  const model = await tinyModel(t, { quant: 'Q8_0' });
  const server = await startModelServer({ file: model.path, manifestFile: 'tiny-model-Q8_0.gguf' });
  t.teardown(() => server.close());
  const stateDir = await tempDir(t);
  const env = { CLAWBOX_STATE_DIR: stateDir };

  const byFile = cliIo(env);
  t.equal(await runModelsCommand(['pull', 'hf:someone/tiny-model-GGUF/tiny-model-Q8_0.gguf', '--hf-endpoint', server.url, '--keep-free', '0', '--role', 'small'], loadConfig, byFile.io), 0, byFile.out.stderr);
  t.ok(server.requests.some((r) => r.url === '/someone/tiny-model-GGUF/resolve/main/tiny-model-Q8_0.gguf?download=true'), 'hf:owner/repo/file maps to /owner/repo/resolve/main/file');

  const byQuant = cliIo(env);
  t.equal(await runModelsCommand(['pull', 'hf:someone/tiny-model-GGUF:q8_0', '--hf-endpoint', server.url, '--keep-free', '0', '--name', 'by-quant'], loadConfig, byQuant.io), 0, byQuant.out.stderr);
  t.ok(server.requests.some((r) => r.url === '/v2/someone/tiny-model-GGUF/manifests/Q8_0'), 'hf:owner/repo:quant asks the manifest for the file');
  const config = loadConfig({ env }).config;
  t.match(config.models, [
    { name: 'tiny-model-Q8_0', role: 'small', source: 'hf:someone/tiny-model-GGUF/tiny-model-Q8_0.gguf', sha256: model.sha256 },
    { name: 'by-quant', role: 'main', source: 'hf:someone/tiny-model-GGUF:q8_0', sha256: model.sha256 },
  ]);
  server.set({ manifestFile: undefined });
  t.equal(
    await rejectionCode(pullModel({ uri: 'hf:someone/tiny-model-GGUF:Q2_K', dir: path.join(stateDir, 'models'), huggingFaceEndpoint: server.url })),
    'MODEL_DOWNLOAD_FAILED',
    'an unknown quantization is a coded failure',
  );
});
