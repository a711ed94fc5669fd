/**
 * The brain link's wire types, loaded from brain/proto/brain.proto with @grpc/proto-loader (no code
 * generation step: the .proto file in the repo is the one definition). From dist/ the file is found at
 * the repository (or image) root's brain/proto/.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

function protoPath(): string {
  const candidates = ['./proto/brain.proto', '../../brain/proto/brain.proto'].map((p) => fileURLToPath(new URL(p, import.meta.url)));
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`brain.proto not found (looked in ${candidates.join(', ')})`);
  return found;
}

/** Field names as in the .proto (snake_case); 64-bit and enum fields are not used. */
let loaded: grpc.ServiceClientConstructor | null = null;

export function brainServiceClient(): grpc.ServiceClientConstructor {
  if (loaded) return loaded;
  const definition = loadSync(protoPath(), { keepCase: true, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { clawbox: { brain: { v1: { Brain: grpc.ServiceClientConstructor } } } };
  loaded = pkg.clawbox.brain.v1.Brain;
  return loaded;
}

export interface WireGenerateRequest {
  prefix: string;
  prompt: string;
  max_tokens: number;
  tool_schema_json: string;
  session: string;
  temperature: number;
  stop: string[];
}

export interface WireUsage {
  prompt_tokens: number;
  cached_tokens: number;
  evaluated_tokens: number;
  generated_tokens: number;
  queue_ms: number;
  prefill_ms: number;
  decode_ms: number;
}

export interface WireGenerateReply {
  text: string;
  stop_reason: string;
  usage: WireUsage | null;
  model: string;
}

export interface WireGenerateChunk {
  kind?: 'text' | 'done';
  text?: string;
  done?: WireGenerateReply;
}

export interface WireHealthReply {
  serving: boolean;
  model: string;
  sequences: number;
  fips: boolean;
}
