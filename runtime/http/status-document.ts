/**
 * The document behind `/api/status` and the page's live stream: who we are, the lifecycle state, every
 * registered status section (broker, system, devices, model, scheduler, ... whichever exist) and the
 * recent warnings from the log ring.
 */
import type { RuntimeContext } from '../context.js';
import type { LifecycleState } from '../events.js';
import type { LogEntry } from '../logging.js';
import { isoTimestamp } from '../system/timestamps.js';

/** How many recent warnings the document carries (the ring keeps more). */
export const WARNINGS_IN_STATUS = 50;

export interface StatusDocument {
  version: string;
  mode: 'local' | 'appliance';
  state: LifecycleState;
  /** ISO 8601 time the runtime started. */
  started_at: string;
  uptime_s: number;
  /** One entry per registered status section, e.g. `broker`, `system`, `devices`. */
  sections: Record<string, unknown>;
  /** Newest last; `time` is epoch milliseconds. */
  warnings: LogEntry[];
}

export async function buildStatusDocument(ctx: RuntimeContext): Promise<StatusDocument> {
  return {
    version: ctx.version,
    mode: ctx.config.mode,
    state: ctx.lifecycleState(),
    started_at: isoTimestamp(ctx.startedAt),
    uptime_s: Math.max(0, Math.floor((Date.now() - ctx.startedAt) / 1000)),
    sections: await ctx.status.snapshot(),
    warnings: ctx.logRing.entries().slice(-WARNINGS_IN_STATUS),
  };
}
