/**
 * A brain process for tests: `node --import tsx brain/testing/brain-process.ts CONFIG.yaml` runs the brain
 * role (createBrainApp: HTTP + models + the gRPC brain service) with the scripted backend, prints
 * `READY <grpc port> <http port>` once serving and `REQ <json>` for every request it receives.
 */
import { createBrainApp } from '../../app/brain-wiring.js';
import { loadConfig } from '../../app/config.js';
import { createLogging } from '../../runtime/logging.js';
import { scriptedBackend } from './scripted-backend.js';

const { config, source } = loadConfig({ file: process.argv[2]!, env: {} });
const logging = createLogging({ level: 'warn', components: {}, pretty: false, destination: process.stderr });
const app = createBrainApp({ config, configSource: source, logging, env: {}, backend: scriptedBackend((request) => process.stdout.write(`REQ ${JSON.stringify(request)}\n`)) });
await app.start();
process.stdout.write(`READY ${app.brain.port} ${app.http.port}\n`);
const stop = () => void app.stop().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The test holds our stdin: when it goes away (even killed), so do we.
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
