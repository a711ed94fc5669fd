#!/usr/bin/env node
// The installed command runs the compiled runtime (npm ci builds it; `npm run build` rebuilds it).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/app/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('clawbox: the runtime is not built; run `npm run build` (npm ci does it for you)\n');
  process.exit(1);
}
await import(entry.href);
