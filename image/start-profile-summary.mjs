#!/usr/bin/env node
/**
 * `node image/start-profile-summary.mjs PROFILE [UNTIL_MS] [--json]`: where a V8 CPU profile (`node --cpu-prof`)
 * of the runtime's start spent its time until the runtime was ready: up to the first sample in which the
 * start (`runStart`, app/cli.ts) calls the systemd notifier's `ready`, or else UNTIL_MS after the profile
 * began. (The profile begins once Node has started, not when the process did.) Each sample goes to one kind
 * of work, judged by its stack:
 *
 * - `module loading`: Node's module loader (finding, reading, compiling and linking a file: its frames and the
 *   native calls they make, such as stat, file reads, package.json reads and compiling with the code cache);
 * - `builtin compile`: compiling Node's own `node:` modules (the code cache built into Node is not used when
 *   V8 runs with flags other than those Node was built with, see image/README.md);
 * - `clawbox code`, `package NAME`, `node MODULE`: running that code (the innermost frame with a source);
 * - `(idle)`, `(garbage collector)`, `(program)`: as V8 reports them.
 *
 * Prints a table (ms and share of the total) and, with --json, the same as JSON. image/start-profile.sh runs it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** The kind of work one sample's stack (innermost frame first) was doing. */
function kindOf(stack) {
  const innermost = stack[0].functionName;
  if (innermost === '(idle)' || innermost === '(garbage collector)' || innermost === '(program)') return innermost;
  if (stack.some((frame) => frame.functionName === 'compileForInternalLoader')) return 'builtin compile';
  // The innermost frame that is either the module loader or code of the runtime or a package decides:
  // node:fs, node:path and the like count as the work of whoever called them.
  const decisive = stack.find((frame) => isLoader(frame.url) || isUserCode(frame.url));
  if (decisive && isLoader(decisive.url)) return 'module loading';
  const url = (decisive ?? stack.find((frame) => frame.url))?.url;
  if (!url) return '(native, no caller)';
  const inPackage = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (inPackage) return `package ${inPackage[1]}`;
  if (url.includes('/dist/')) return 'clawbox code';
  if (url.startsWith('node:')) return `node ${url.replace(/^node:(?:internal\/)?([^/]+).*$/, '$1')}`;
  return url;
}

const isLoader = (url) => url.startsWith('node:internal/modules/') || url.startsWith('node:internal/deps/cjs-module-lexer');
const isUserCode = (url) => url !== '' && !url.startsWith('node:');

/** Whether this stack (innermost frame first) is the start telling systemd it is ready. */
function isReady(stack) {
  return stack.some((frame, i) => frame.functionName === 'ready' && stack[i + 1]?.functionName === 'runStart');
}

export function summarize(profile, untilMs = Number.POSITIVE_INFINITY) {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parents = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
  const stackOf = (id) => {
    const stack = [];
    for (let at = id; at !== undefined; at = parents.get(at)) stack.push(nodes.get(at).callFrame);
    return stack;
  };
  const byKind = new Map();
  let elapsedUs = 0;
  let totalUs = 0;
  let until = 'limit';
  for (let i = 0; i < profile.samples.length; i++) {
    const deltaUs = profile.timeDeltas[i] ?? 0;
    elapsedUs += deltaUs;
    if (elapsedUs > untilMs * 1000) break;
    const stack = stackOf(profile.samples[i]);
    if (isReady(stack)) {
      until = 'ready';
      break;
    }
    totalUs += deltaUs;
    const kind = kindOf(stack);
    byKind.set(kind, (byKind.get(kind) ?? 0) + deltaUs);
  }
  const rows = [...byKind]
    .sort((a, b) => b[1] - a[1])
    .map(([kind, us]) => ({ kind, ms: Math.round(us / 1000), share: totalUs ? us / totalUs : 0 }));
  return { totalMs: Math.round(totalUs / 1000), until, rows };
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const args = process.argv.slice(2).filter((arg) => arg !== '--json');
  const [file, until] = args;
  if (!file) {
    process.stderr.write('usage: node image/start-profile-summary.mjs PROFILE [UNTIL_MS] [--json]\n');
    process.exit(64);
  }
  const summary = summarize(JSON.parse(readFileSync(file, 'utf8')), until ? Number(until) : undefined);
  if (process.argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } else {
    const end = summary.until === 'ready' ? 'until ready' : 'no ready in the profile: until the limit';
    process.stdout.write(`${'ms'.padStart(7)}  share  kind (${summary.totalMs} ms sampled, ${end})\n`);
    for (const row of summary.rows.slice(0, 20)) {
      process.stdout.write(`${String(row.ms).padStart(7)}  ${(row.share * 100).toFixed(1).padStart(4)} %  ${row.kind}\n`);
    }
  }
}
