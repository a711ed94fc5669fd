/**
 * bin/clawbox.js on a Node.js older than 22 (the Debian one, where it is older) stops with one plain
 * sentence instead of a link error from a Node 22 API deep in the runtime.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ROOT } from './cli-helpers.js';

const OLD_NODE = ['/usr/bin/node', '/usr/local/bin/node'].find((file) => {
  if (!existsSync(file)) return false;
  const version = spawnSync(file, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
  return Number(version.split('.')[0]) < 22;
});

t.test('an older Node.js gets a clear refusal', { skip: OLD_NODE ? false : 'no Node.js older than 22 on this machine' }, async (t) => {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'clawbox-old-node-'));
  const result = spawnSync(OLD_NODE!, [path.join(ROOT, 'bin', 'clawbox.js'), 'start'], {
    encoding: 'utf8',
    env: { ...process.env, CLAWBOX_STATE_DIR: stateDir, NODE_OPTIONS: '' },
    timeout: 60_000,
  });
  t.equal(result.status, 1, 'exit status 1');
  t.match(result.stderr, /^clawbox: needs Node\.js 22 or later \(this is v\d+\.\d+\.\d+\)/, 'says what it needs and what it found');
  t.equal(result.stderr.trim().split('\n').length, 1, 'one line, no stack trace');
});
