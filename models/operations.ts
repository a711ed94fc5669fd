/**
 * The model layer's operation: `models.list`, the configured models with their role, state and, once
 * loaded, backend and figures. Reached as `<base>/bridge/request/models` and `GET /api/models`.
 */
import { type AnyOperation, defineOperation } from '../runtime/operations/operation.js';

export interface ModelLister {
  configured(): Array<{ name: string; role: string; path: string }>;
  status(): Record<string, unknown>;
}

export function modelOperations(models: ModelLister): AnyOperation[] {
  return [
    defineOperation<Record<string, never>, unknown>({
      name: 'models.list',
      summary: 'the configured models: role, name, file, and the loaded state of main and small',
      input: { type: 'object', additionalProperties: false, properties: {} },
      permission: () => 'bridge/request/models',
      changesWorld: false,
      deadlineMs: 5_000,
      handler: async () => ({
        configured: models.configured(),
        loaded: models.status(),
      }),
    }),
  ];
}
