/**
 * Test-only: a RuntimeContext with what the audit log uses (state dir, logger, status registry, prom
 * registry) and a temp state dir; warnings and errors are collected for asserts. The members the audit log
 * never touches are left out, so these tests do not depend on the config loader or the broker.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { RuntimeContext } from '../../context.js';
import { StatusRegistry } from '../../status.js';

export interface AuditTestContext {
  ctx: RuntimeContext;
  stateDir: string;
  /** Log lines at warn or above, parsed. */
  logs: Array<Record<string, unknown>>;
  cleanup(): void;
}

export function auditTestContext(stateDir?: string): AuditTestContext {
  const scratch = stateDir ?? mkdtempSync(path.join(tmpdir(), 'clawbox-audit-'));
  const logs: Array<Record<string, unknown>> = [];
  const root = pino({ level: 'warn' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const unused = undefined as never;
  const ctx: RuntimeContext = {
    config: {} as RuntimeContext['config'],
    configSource: null,
    version: '0.0.0-test',
    startedAt: Date.now(),
    stateDir: scratch,
    store: unused,
    bus: unused,
    status: new StatusRegistry(),
    metrics: new Registry(),
    logRing: unused,
    logger: (component) => root.child({ component }),
    lifecycleState: () => 'serving',
  };
  return { ctx, stateDir: scratch, logs, cleanup: () => (stateDir ? undefined : rmSync(scratch, { recursive: true, force: true })) };
}
