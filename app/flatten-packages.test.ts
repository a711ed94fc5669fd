/**
 * bin/flatten-packages.js, as the OS image uses it (image/lib/app.sh, after bin/bundle.js): each package of
 * FLATTENED_PACKAGES becomes one file in the app's node_modules, and the bundled runtime that loads them
 * still starts and serves (a device command round trip over MQTT, through the broker's persistence, which
 * uses two of them). Refused: a package that names its own files, and a node_modules that is a link (a
 * checkout's). Real packages copied from this checkout's node_modules, real runtime, real MQTT client.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { ROOT } from '../test/cli-helpers.js';
import { commandRoundTrip, startInstalled } from './testing/installed-runtime.js';

const BUILT = existsSync(path.join(ROOT, 'dist', 'app', 'main.js'));
const FLATTEN = pathToFileURL(path.join(ROOT, 'bin', 'flatten-packages.js')).href;
const { FLATTENED_PACKAGES, flattenPackages } = (await import(FLATTEN)) as {
  FLATTENED_PACKAGES: Map<string, string>;
  flattenPackages(appDir: string, names?: Iterable<string>): Promise<Record<string, number>>;
};

/** The packages the flattened ones load and those that load them at start: copied, so they resolve each other in the copy. */
const COPIED_WITH_THEM = ['aedes-persistence-level', 'level', 'classic-level'];

/** `names` and every package they depend on, as this checkout's (flat) node_modules holds them. */
function withDependencies(names: Iterable<string>): Set<string> {
  const found = new Set<string>();
  const visit = (name: string) => {
    if (found.has(name)) return;
    found.add(name);
    const manifest = JSON.parse(readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    for (const dependency of Object.keys(manifest.dependencies ?? {})) visit(dependency);
  };
  for (const name of names) visit(name);
  return found;
}

/**
 * A staged app: bin, dist and package.json of this checkout, bundled as the image is; node_modules a folder
 * of links to this checkout's packages but for copies of the flattened packages, what they depend on and
 * what loads them (a link would resolve to the checkout's own copy).
 */
function stageApp(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clawbox-flatten-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const item of ['bin', 'dist', 'package.json']) cpSync(path.join(ROOT, item), path.join(dir, item), { recursive: true });
  rmSync(path.join(dir, 'dist', '.tsbuildinfo'), { force: true });
  rmSync(path.join(dir, 'dist', 'bundle'), { recursive: true, force: true });
  const copied = withDependencies([...FLATTENED_PACKAGES.keys(), ...COPIED_WITH_THEM]);
  const modules = path.join(dir, 'node_modules');
  for (const entry of readdirSync(path.join(ROOT, 'node_modules'))) {
    if (entry.startsWith('.')) continue;
    const scoped = entry.startsWith('@') ? readdirSync(path.join(ROOT, 'node_modules', entry)).map((name) => `${entry}/${name}`) : [entry];
    for (const name of scoped) {
      const target = path.join(modules, name);
      mkdirSync(path.dirname(target), { recursive: true });
      if (copied.has(name)) cpSync(path.join(ROOT, 'node_modules', name), target, { recursive: true });
      else symlinkSync(path.join(ROOT, 'node_modules', name), target);
    }
  }
  execFileSync(process.execPath, [path.join(dir, 'bin', 'bundle.js'), dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  return dir;
}

t.test('each flattened package is one file, and the bundled runtime serves with them', { skip: BUILT ? false : 'dist/ is not built' }, async (t) => {
  const dir = stageApp(t);
  const joined = await flattenPackages(dir);
  for (const name of FLATTENED_PACKAGES.keys()) t.ok(joined[name]! > 1, `${name}: ${joined[name]} files joined`);

  // What the runtime uses of each, in a fresh Node that loads them as the runtime does (require from the app).
  const used = execFileSync(process.execPath, ['--input-type=module', '-e', `
    import { createRequire } from 'node:module';
    const load = createRequire(${JSON.stringify(path.join(dir, 'package.json'))});
    const YAML = load('yaml');
    const lines = new YAML.LineCounter();
    const doc = YAML.parseDocument('base: &b { port: 1883 }\\nbroker: *b\\n', { lineCounter: lines });
    const msgpack = createRequire(load.resolve('aedes-persistence-level'))('msgpack-lite');
    const { encodeFromBufferPool } = await import(${JSON.stringify(pathToFileURL(path.join(dir, 'dist/runtime/broker/persistence.js')).href)});
    encodeFromBufferPool();
    const encoded = msgpack.encode({ topic: 'a/b', payload: Buffer.from('hi'), qos: 1 });
    const packed = msgpack.decode(encoded);
    const { AbstractLevel } = load('abstract-level');
    const { Bonjour } = load('bonjour-service');
    const files = Object.keys(load.cache).filter((file) => file.includes('/node_modules/') && /\\/node_modules\\/(yaml|msgpack-lite|abstract-level|bonjour-service)\\//.test(file)).map((file) => file.slice(file.indexOf('/node_modules/') + 14));
    console.log(JSON.stringify({ port: doc.toJS().broker.port, line: lines.linePos(doc.contents.items[1].key.range[0]).line,
      packed: [packed.topic, packed.payload.toString(), packed.qos], pooled: encoded.buffer.byteLength === Buffer.poolSize,
      level: typeof AbstractLevel, bonjour: typeof Bonjour, files }));
  `], { encoding: 'utf8' });
  const result = JSON.parse(used) as { port: number; line: number; packed: unknown[]; pooled: boolean; level: string; bonjour: string; files: string[] };
  t.equal(result.port, 1883, 'yaml: an alias resolved');
  t.equal(result.line, 2, 'yaml: line numbers (config errors name them)');
  t.same(result.packed, ['a/b', 'hi', 1], 'msgpack-lite: a packet round trip');
  t.ok(result.pooled, "msgpack-lite: the broker store's encoder patch (runtime/broker/persistence.ts) reaches the joined file");
  t.equal(result.level, 'function', 'abstract-level: AbstractLevel');
  t.equal(result.bonjour, 'function', 'bonjour-service: the named Bonjour export');
  t.same(result.files.sort(), ['abstract-level/index.js', 'bonjour-service/dist/index.js', 'msgpack-lite/index.js', 'yaml/dist/index.js'], 'one file each, their dependencies inside it');

  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'clawbox-flatten-state-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  // A config file, so that the start parses YAML as the appliance's does (without one it reads none).
  const config = path.join(stateDir, 'config.yaml');
  writeFileSync(config, 'log:\n  level: info\n');
  const runtime = await startInstalled(dir, stateDir, { CLAWBOX_CONFIG: config });
  t.teardown(runtime.stop);
  for (const name of ['yaml', 'msgpack-lite', 'abstract-level']) {
    const files = [...runtime.loaded].filter((url) => url.includes(`/node_modules/${name}/`));
    t.same(files, [pathToFileURL(createRequire(path.join(dir, 'package.json')).resolve(name)).href], `the runtime loaded ${name} from its one file`);
  }
  t.equal(await commandRoundTrip(runtime.mqttPort, 'lamp', 'ON'), 'ON', 'a device command round trip over MQTT');
  t.equal((await fetch(`http://127.0.0.1:${runtime.httpPort}/healthz`)).status, 200, '/healthz 200');
});

t.test('a package that names its own files is refused and left as it was', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clawbox-flatten-refused-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'package.json'), '{"name":"app","private":true}');
  const pkg = path.join(dir, 'node_modules', 'finds-files');
  mkdirSync(pkg, { recursive: true });
  writeFileSync(path.join(pkg, 'package.json'), '{"name":"finds-files","main":"index.js"}');
  const entry = "module.exports = require('./data.js');\n";
  writeFileSync(path.join(pkg, 'index.js'), entry);
  writeFileSync(path.join(pkg, 'data.js'), "module.exports = require('node:path').join(__dirname, 'table.bin');\n");
  await t.rejects(flattenPackages(dir, ['finds-files']), /data\.js uses __dirname/);
  t.equal(readFileSync(path.join(pkg, 'index.js'), 'utf8'), entry, 'the entry is unchanged');
});

t.test("a node_modules that is a link (a checkout's) is never rewritten", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clawbox-flatten-link-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  await t.rejects(flattenPackages(dir), /is a link/);
});
