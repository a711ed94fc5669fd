/**
 * The brain for bench:overload, in its own process on the same machine: loads one GGUF with the models
 * feature's engine and serves it with the brain's gRPC service (mutual TLS 1.3). Prints `READY <port>`.
 * Usage: tsx bench/brain-child.ts MODEL.gguf CERT_DIR SEQUENCES
 */
import path from 'node:path';
import { LlamaLogLevel, getLlama } from 'node-llama-cpp';
import pino from 'pino';
import { modelBackend } from '../brain/backend.js';
import { BrainServer } from '../brain/server.js';
import { withModelDefaults } from '../models/config-schema.js';
import { ModelEngine } from '../models/engine/engine.js';

const [file, certs, sequencesArg] = process.argv.slice(2) as [string, string, string];
const sequences = Number(sequencesArg);
const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
const engine = await ModelEngine.load({
  entry: withModelDefaults({ name: 'brain', path: file, context_size: 1024 * sequences, sequences, gpu: 'cpu' }),
  logger: pino({ level: 'silent' }),
  llama,
});
const server = new BrainServer({
  host: '127.0.0.1',
  port: 0,
  tls: { ca: path.join(certs, 'ca.crt'), cert: path.join(certs, 'brain.crt'), key: path.join(certs, 'brain.key') },
  backend: modelBackend(() => ({ engine, name: 'brain' })),
});
const port = await server.start();
process.stdout.write(`READY ${port} ${engine.info.threads}\n`);
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
