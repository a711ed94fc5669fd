#!/usr/bin/env node
// The installed command runs the compiled runtime (npm ci builds it; `npm run build` rebuilds it).
import { existsSync } from 'node:fs';

const cli = new URL('../dist/runtime/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('clawbox: the runtime is not built; run `npm run build` (npm ci does it for you)\n');
  process.exit(1);
}
const { run } = await import(cli.href);
await run(process.argv.slice(2));
