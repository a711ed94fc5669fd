import { readFile, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import YAML from 'yaml';
import { loadConfig } from '../app/config.js';
import { runModelsCommand } from './cli.js';
import { rejectionCode, tempDir, tinyModel } from './testing/fixtures.js';

function io(env: NodeJS.ProcessEnv = {}) {
  const out = { stdout: '', stderr: '' };
  const stdout = (s: string) => {
    out.stdout += s;
  };
  const stderr = (s: string) => {
    out.stderr += s;
  };
  return { out, io: { stdout, stderr, env } };
}

t.test('models add / list / verify against a real config file', async (t) => {
  const dir = await tempDir(t);
  // The hash record goes to the state dir: a temp one, never the repository's ./.clawbox.
  const env = { CLAWBOX_STATE_DIR: path.join(dir, 'state') };
  const model = await tinyModel(t, { quant: 'Q4_0' });
  const config = path.join(dir, 'config.yaml');
  await writeFile(config, '# hand-written\nbroker:\n  port: 1884 # keep me\n');

  const add = io(env);
  t.equal(await runModelsCommand(['add', model.path, '--name', 'tiny', '--config', config], loadConfig, add.io), 0);
  t.match(add.out.stdout, /added tiny .*llama .* Q4_0/);
  const text = await readFile(config, 'utf8');
  t.match(text, /# keep me/, 'comments survive');
  const written = YAML.parse(text);
  t.same(written.models, [{ name: 'tiny', path: model.path, sha256: model.sha256, role: 'main', context_size: 2048 }]);
  t.equal(await rejectionCode(runModelsCommand(['add', model.path, '--name', 'tiny', '--config', config], loadConfig, io(env).io)), 'USAGE', 'duplicate name');
  t.equal(await rejectionCode(runModelsCommand(['add', model.path, '--name', 'other', '--config', config], loadConfig, io(env).io)), 'USAGE', 'second main');
  t.equal(await rejectionCode(runModelsCommand(['add', path.join(dir, 'none.gguf'), '--config', config], loadConfig, io(env).io)), 'MODEL_FILE_MISSING');

  const list = io(env);
  t.equal(await runModelsCommand(['list', '--config', config], loadConfig, list.io), 0);
  t.match(list.out.stdout, /tiny\s+main\s+llama\s+140K\s+Q4_0\s+2048/);

  const verify = io(env);
  t.equal(await runModelsCommand(['verify', '--config', config], loadConfig, verify.io), 0);
  t.match(verify.out.stdout, /ok\s+tiny: llama Q4_0, sha256 ok/);

  await writeFile(config, text.replace(model.sha256, 'f'.repeat(64)));
  const bad = io(env);
  t.equal(await runModelsCommand(['verify', 'tiny', '--config', config, '--json'], loadConfig, bad.io), 1, 'a failed verify exits 1');
  t.match(JSON.parse(bad.out.stdout), [{ name: 'tiny', ok: false, code: 'MODEL_HASH_MISMATCH' }]);
  t.equal(await rejectionCode(runModelsCommand(['verify', 'nope', '--config', config], loadConfig, io(env).io)), 'NOT_FOUND');
  t.equal(await rejectionCode(runModelsCommand(['frobnicate'], loadConfig, io(env).io)), 'USAGE');

});

t.test('local mode without a config file: models add writes <state dir>/config.yaml, which the next start reads', async (t) => {
  const stateDir = await tempDir(t);
  const model = await tinyModel(t, { quant: 'Q8_0' });
  const env = { CLAWBOX_STATE_DIR: stateDir };
  const bare = io();
  t.equal(await runModelsCommand(['add', model.path], loadConfig, { ...bare.io, env }), 0);
  const file = path.join(stateDir, 'config.yaml');
  t.match(bare.out.stdout, `added tiny to ${file}`);
  t.match(YAML.parse(await readFile(file, 'utf8')), { models: [{ name: 'tiny', path: model.path, sha256: model.sha256 }] });
  const loaded = loadConfig({ env });
  t.equal(loaded.source, file);
  t.match(loaded.config.models, [{ name: 'tiny', sha256: model.sha256 }]);

  const listed = io();
  t.equal(await runModelsCommand(['list'], loadConfig, { ...listed.io, env }), 0);
  t.match(listed.out.stdout, /tiny\s+main\s+llama.*\s+verified\n/, 'add recorded the hash it computed');
  // Touching the file changes its mtime: the recorded hash no longer vouches for it.
  const later = new Date(Date.now() + 5_000);
  await utimes(model.path, later, later);
  const touched = io();
  await runModelsCommand(['list', '--json'], loadConfig, { ...touched.io, env });
  t.match(JSON.parse(touched.out.stdout), [{ name: 'tiny', ok: true, verified: null }], 'changed since hashed: unverified');
  const verified = io();
  t.equal(await runModelsCommand(['verify'], loadConfig, { ...verified.io, env }), 0);
  const after = io();
  await runModelsCommand(['list'], loadConfig, { ...after.io, env });
  t.match(after.out.stdout, /\s+verified\n/, 'verify hashed it again and recorded the result');
});
