/**
 * `clawbox plugins new <name> --lang node|python`: a plugin folder that works as it is — manifest, entry
 * with one example tool, and a test that runs without clawbox (node --test / python3 -m unittest).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ClawboxError } from '../runtime/errors.js';
import { PLUGIN_NAME_PATTERN } from './config-schema.js';
import { MANIFEST_FILE } from './manifest.js';
import { PYTHON_HELPER_DIR } from './runner/channels.js';

export type ScaffoldLang = 'node' | 'python';

function manifest(name: string, lang: ScaffoldLang): string {
  return `${JSON.stringify(
    {
      name,
      version: '0.1.0',
      description: `${name}: an example plugin (edit me).`,
      runtime: lang,
      entry: lang === 'node' ? 'index.mjs' : 'plugin.py',
      tools: [
        {
          name: 'greet',
          description: 'Greets someone by name.',
          arguments: {
            type: 'object',
            required: ['name'],
            additionalProperties: false,
            properties: { name: { type: 'string', minLength: 1, maxLength: 100 } },
          },
          result: { type: 'object', required: ['text'], properties: { text: { type: 'string' } } },
        },
      ],
      config: {
        type: 'object',
        additionalProperties: false,
        properties: { greeting: { type: 'string', default: 'Hello' } },
      },
      permissions: { devices: false, topics: { publish: [], subscribe: [] }, network: false, database: false },
    },
    null,
    2,
  )}\n`;
}

const NODE_ENTRY = `// A clawbox plugin. Tools get arguments already checked against clawbox.plugin.json; return JSON.
// Throw an Error with a clawbox code for expected failures: Object.assign(new Error('msg'), { code: 'PAYLOAD_INVALID' }).
let greeting = 'Hello';

export function greet({ name }) {
  return { text: \`\${greeting}, \${name}!\` };
}

export default {
  start(ctx) {
    greeting = ctx.config.greeting ?? greeting;
    ctx.log.info('started', { greeting });
  },
  tools: { greet },
};
`;

const NODE_TEST = `// Run with: npm test (node --test). clawbox runs the same module in a worker thread.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import plugin from './index.mjs';

test('greet uses the configured greeting', async () => {
  await plugin.start({ config: { greeting: 'Hi' }, log: { info() {} } });
  assert.deepEqual(await plugin.tools.greet({ name: 'Ada' }), { text: 'Hi, Ada!' });
});
`;

const PY_ENTRY = `"""A clawbox plugin. Tools get arguments already checked against clawbox.plugin.json; return JSON data.
Raise PluginError("PAYLOAD_INVALID", "...") for expected failures. print() goes to the clawbox log."""
from clawbox_plugin import Plugin, PluginError  # noqa: F401  (provided by clawbox on sys.path)

plugin = Plugin()
settings = {"greeting": "Hello"}


@plugin.on_start
def start(ctx):
    settings["greeting"] = ctx.config.get("greeting", settings["greeting"])
    ctx.log("info", "started")


@plugin.tool("greet")
def greet(args, call):
    return {"text": "%s, %s!" % (settings["greeting"], args["name"])}


if __name__ == "__main__":
    plugin.run()
`;

function pyTest(helperDir: string): string {
  return `"""Run with: python3 -m unittest -v  — talks JSON-RPC to the plugin exactly as clawbox does."""
import json
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
HELPER = os.environ.get("CLAWBOX_PYTHON_HELPER", ${JSON.stringify(helperDir)})


class PluginTest(unittest.TestCase):
    def setUp(self):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([HELPER, HERE]))
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "plugin.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        self.next_id = 0

    def tearDown(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=5)
        self.proc.stdout.close()

    def rpc(self, method, params):
        self.next_id += 1
        self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}) + "\\n")
        self.proc.stdin.flush()
        while True:
            message = json.loads(self.proc.stdout.readline())
            if message.get("id") == self.next_id:
                return message

    def test_greet(self):
        self.assertEqual(self.rpc("initialize", {"config": {"greeting": "Hi"}})["result"], {"tools": ["greet"]})
        answer = self.rpc("call", {"id": "c1", "tool": "greet", "args": {"name": "Ada"}})
        self.assertEqual(answer["result"], {"text": "Hi, Ada!"})


if __name__ == "__main__":
    unittest.main()
`;
}

/** Writes the plugin folder; returns its path. Refuses a bad name or an existing folder. */
export function scaffoldPlugin(name: string, lang: ScaffoldLang, parentDir: string): { dir: string; files: string[] } {
  if (!new RegExp(PLUGIN_NAME_PATTERN).test(name)) {
    throw new ClawboxError('USAGE', `plugin name "${name}" must be lower case letters, digits and dashes, starting with a letter`);
  }
  const dir = path.resolve(parentDir, name);
  if (existsSync(dir)) throw new ClawboxError('USAGE', `${dir} already exists; pick another name or folder`);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const files: Record<string, string> =
    lang === 'node'
      ? {
          [MANIFEST_FILE]: manifest(name, 'node'),
          'index.mjs': NODE_ENTRY,
          'test.mjs': NODE_TEST,
          'package.json': `${JSON.stringify({ name: `clawbox-plugin-${name}`, private: true, type: 'module', scripts: { test: 'node --test' } }, null, 2)}\n`,
        }
      : {
          [MANIFEST_FILE]: manifest(name, 'python'),
          'plugin.py': PY_ENTRY,
          'test_plugin.py': pyTest(PYTHON_HELPER_DIR),
        };
  for (const [file, text] of Object.entries(files)) writeFileSync(path.join(dir, file), text, { mode: 0o644 });
  return { dir, files: Object.keys(files) };
}
