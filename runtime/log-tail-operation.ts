/** `logs.tail`: the last log lines of every level (already redacted), for the web app's live log view. */
import type { LogTail, TailEntry } from './logging.js';
import { defineOperation } from './operations/operation.js';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

export interface LogsTailInput {
  /** Only entries numbered after this one. */
  after?: number;
  /** At least this level. */
  level?: (typeof LEVELS)[number];
  component?: string;
  limit?: number;
}

export function logsTailOperation(tail: LogTail) {
  return defineOperation<LogsTailInput, { entries: TailEntry[]; last: number }>({
    name: 'logs.tail',
    summary: 'recent log lines after a sequence number, filtered by level and component',
    input: {
      type: 'object',
      additionalProperties: false,
      properties: {
        after: { type: 'integer', minimum: 0 },
        level: { enum: [...LEVELS] },
        component: { type: 'string', minLength: 1, maxLength: 64 },
        limit: { type: 'integer', minimum: 1, maximum: 1000 },
      },
    },
    permission: () => 'bridge/request/logs',
    changesWorld: false,
    deadlineMs: 5_000,
    handler: async (input) => {
      const all = tail.since(input.after ?? 0);
      const min = LEVELS.indexOf(input.level ?? 'trace');
      const entries = all.filter((e) => LEVELS.indexOf(e.level) >= min && (!input.component || e.component === input.component));
      return { entries: entries.slice(-(input.limit ?? 300)), last: all.at(-1)?.seq ?? input.after ?? 0 };
    },
  });
}
