import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import YAML from 'yaml';
import { loadConfig } from '../app/config.js';
import { runModelsCommand } from './cli.js';
import { rejectionCode, tempDir, tinyModel } from './testing/fixtures.js';

function io() {
  const out = { stdout: '', stderr: '' };
  const stdout = (s: string) => {
    out.stdout += s;
  };
  const stderr = (s: string) => {
    out.stderr += s;
  };
  return { out, io: { stdout, stderr, env: {} } };
}

t.test('models add / list / verify against a real config file', async (t) => {
  const dir = await tempDir(t);
  const model = await tinyModel(t, { quant: 'Q4_0' });
  const config = path.join(dir, 'config.yaml');
  await writeFile(config, '# hand-written\nbroker:\n  port: 1884 # keep me\n');

  const add = io();
  t.equal(await runModelsCommand(['add', model.path, '--name', 'tiny', '--config', config], loadConfig, add.io), 0);
  t.match(add.out.stdout, /added tiny .*llama .* Q4_0/);
  const text = await readFile(config, 'utf8');
  t.match(text, /# keep me/, 'comments survive');
  const written = YAML.parse(text);
  t.same(written.models, [{ name: 'tiny', path: model.path, sha256: model.sha256, role: 'main', context_size: 2048 }]);
  t.equal(await rejectionCode(runModelsCommand(['add', model.path, '--name', 'tiny', '--config', config], loadConfig, io().io)), 'USAGE', 'duplicate name');
  t.equal(await rejectionCode(runModelsCommand(['add', model.path, '--name', 'other', '--config', config], loadConfig, io().io)), 'USAGE', 'second main');
  t.equal(await rejectionCode(runModelsCommand(['add', path.join(dir, 'none.gguf'), '--config', config], loadConfig, io().io)), 'MODEL_FILE_MISSING');

  const list = io();
  t.equal(await runModelsCommand(['list', '--config', config], loadConfig, list.io), 0);
  t.match(list.out.stdout, /tiny\s+main\s+llama\s+140K\s+Q4_0\s+2048/);

  const verify = io();
  t.equal(await runModelsCommand(['verify', '--config', config], loadConfig, verify.io), 0);
  t.match(verify.out.stdout, /ok\s+tiny: llama Q4_0, sha256 ok/);

  await writeFile(config, text.replace(model.sha256, 'f'.repeat(64)));
  const bad = io();
  t.equal(await runModelsCommand(['verify', 'tiny', '--config', config, '--json'], loadConfig, bad.io), 1, 'a failed verify exits 1');
  t.match(JSON.parse(bad.out.stdout), [{ name: 'tiny', ok: false, code: 'MODEL_HASH_MISMATCH' }]);
  t.equal(await rejectionCode(runModelsCommand(['verify', 'nope', '--config', config], loadConfig, io().io)), 'NOT_FOUND');
  t.equal(await rejectionCode(runModelsCommand(['frobnicate'], loadConfig, io().io)), 'USAGE');

  const bare = io();
  t.equal(await runModelsCommand(['add', model.path], loadConfig, bare.io), 0, 'without a config file the entry is printed');
  t.match(YAML.parse(bare.out.stdout), { models: [{ sha256: model.sha256 }] });
});
