// Process entry: `node dist/runtime/main.js <args>` (what bin/clawbox.js loads) or, from the sources,
// `node --import tsx runtime/main.ts <args>` (what the tests spawn).
// First, before anything can load mqtt-packet: its disabled debug loggers are made cheap (see the file).
import './broker/quiet-debug.js';
import { run } from './cli.js';

await run(process.argv.slice(2));
