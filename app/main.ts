// Process entry: `node dist/app/main.js <args>` (what bin/clawbox.js loads) or, from the sources,
// `node --import tsx app/main.ts <args>` (what the tests spawn).
// First, before any module imports node:http: its getters that load Node's bundled undici go (see the file).
import '../runtime/system/lean-builtins.js';
// Then, before anything can load mqtt-packet: its disabled debug loggers are made cheap (see the file).
import '../runtime/broker/quiet-debug.js';
// And before mqtt-packet loads, bl's stream steps aside for a stand-in (see the file).
import '../runtime/broker/mqtt-packet-memory.js';
import { run } from './cli.js';

await run(process.argv.slice(2));
