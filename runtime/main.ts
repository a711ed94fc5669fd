// Process entry: `node dist/runtime/main.js <args>` (what bin/clawbox.js loads) or, from the sources,
// `node --import tsx runtime/main.ts <args>` (what the tests spawn).
import { run } from './cli.js';

await run(process.argv.slice(2));
