/**
 * The model layer's operations. `models.list` (the configured models with their role, and the loaded
 * state) may be read by anyone with `bridge/request/models`; the management operations change what the
 * box runs or downloads, so each needs its own permission, which only the admin (`#`) has by default:
 *
 *   models.verify      bridge/request/models/verify     GGUF header + sha256 of one configured model
 *   models.activate    bridge/request/models/activate   make a configured model the main one
 *   models.pull        bridge/request/models/pull       start a background download (one at a time)
 *   models.pull.cancel bridge/request/models/pull       stop it (the partial file is kept)
 *
 * Reached as `<base>/bridge/request/models[/…]` and under `/api/models` (http-routes.ts).
 */
import { type AnyOperation, defineOperation } from '../runtime/operations/operation.js';
import type { ModelManager } from './management.js';

export interface ModelLister {
  configured(): Array<{ name: string; role: string; path: string; sha256?: string | null; source?: string | null }>;
  status(): Record<string, unknown>;
}

/** What management needs of ModelManager (null: a service without it answers list only). */
export type ModelManagement = Pick<ModelManager, 'verify' | 'activate' | 'startPull' | 'cancelPull' | 'view'>;

const MODEL_NAME = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' } as const;
const byName = { type: 'object', required: ['name'], additionalProperties: false, properties: { name: MODEL_NAME } } as const;

/** Hashing a multi-gigabyte file on a small board takes minutes. */
const VERIFY_DEADLINE_MS = 30 * 60_000;
/** Loading a large model from an SD card as well. */
const ACTIVATE_DEADLINE_MS = 15 * 60_000;

export function modelOperations(models: ModelLister, manager: ModelManagement | null = null): AnyOperation[] {
  const list = defineOperation<Record<string, never>, unknown>({
    name: 'models.list',
    summary: 'the configured models: role, name, file, and the loaded state of main and small',
    input: { type: 'object', additionalProperties: false, properties: {} },
    permission: () => 'bridge/request/models',
    changesWorld: false,
    deadlineMs: 5_000,
    handler: async () => ({
      configured: models.configured(),
      loaded: models.status(),
      ...(manager ? manager.view() : {}),
    }),
  });
  if (!manager) return [list];
  return [
    list,
    defineOperation<{ name: string }, unknown>({
      name: 'models.verify',
      summary: "check one configured model's file: GGUF header and architecture, and its sha256 against the config's",
      input: byName,
      permission: () => 'bridge/request/models/verify',
      changesWorld: false,
      deadlineMs: VERIFY_DEADLINE_MS,
      handler: (input, ctx) => manager.verify(input.name, ctx.signal),
    }),
    defineOperation<{ name: string }, unknown>({
      name: 'models.activate',
      summary: 'make a configured model the main one: load it (the current one serves meanwhile), then record it in the config',
      input: byName,
      permission: () => 'bridge/request/models/activate',
      changesWorld: true,
      deadlineMs: ACTIVATE_DEADLINE_MS,
      handler: (input, ctx) => manager.activate(input.name, ctx.signal),
    }),
    defineOperation<{ uri: string; name?: string; sha256?: string }, unknown>({
      name: 'models.pull',
      summary: 'download a GGUF model in the background (https:// or hf:), check it and add it to the config; progress in the status',
      input: {
        type: 'object',
        required: ['uri'],
        additionalProperties: false,
        properties: {
          uri: { type: 'string', minLength: 1, maxLength: 2048 },
          name: MODEL_NAME,
          sha256: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' },
        },
      },
      permission: () => 'bridge/request/models/pull',
      changesWorld: true,
      deadlineMs: 10_000,
      handler: async (input) => manager.startPull({ uri: input.uri, name: input.name, sha256: input.sha256?.toLowerCase() }),
    }),
    defineOperation<Record<string, never>, unknown>({
      name: 'models.pull.cancel',
      summary: 'stop the running model download; pulling the same URI again resumes it',
      input: { type: 'object', additionalProperties: false, properties: {} },
      permission: () => 'bridge/request/models/pull',
      changesWorld: true,
      deadlineMs: 5_000,
      handler: async () => manager.cancelPull(),
    }),
  ];
}
