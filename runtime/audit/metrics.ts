/** The audit log's Prometheus figures in the runtime registry (ctx.metrics). */
import type { Registry } from 'prom-client';
import { Counter, Gauge } from '../metrics.js';
import type { VerifyResult } from './verify.js';

const NAMES = ['clawbox_audit_records_total', 'clawbox_audit_queue_length', 'clawbox_audit_verify_result', 'clawbox_audit_verify_timestamp_seconds'];

/** Value of clawbox_audit_verify_result. */
export function verifyResultValue(result: VerifyResult): number {
  if (!result.ok) return 0;
  return result.complete ? 1 : -1;
}

export class AuditMetrics {
  readonly #registry: Registry;
  readonly #records: Counter;
  readonly #result: Gauge;
  readonly #time: Gauge;

  constructor(registry: Registry, pending: () => number) {
    this.#registry = registry;
    const registers = [registry];
    this.#records = new Counter({ name: 'clawbox_audit_records_total', help: 'Audit records written and synced to disk.', registers });
    new Gauge({
      name: 'clawbox_audit_queue_length',
      help: 'Audit records waiting for the disk.',
      registers,
      collect() {
        this.set(pending());
      },
    });
    this.#result = new Gauge({
      name: 'clawbox_audit_verify_result',
      help: 'Last verification of the audit chain: 1 passed, 0 failed, -1 stopped at its time bound with no problem found so far.',
      registers,
    });
    this.#time = new Gauge({ name: 'clawbox_audit_verify_timestamp_seconds', help: 'When the last verification of the audit chain finished (Unix time).', registers });
  }

  committed(records: number): void {
    this.#records.inc(records);
  }

  verified(result: VerifyResult, at: Date): void {
    this.#result.set(verifyResultValue(result));
    this.#time.set(at.getTime() / 1000);
  }

  /** Takes the figures out of the registry so a restarted component can register them again. */
  remove(): void {
    for (const name of NAMES) this.#registry.removeSingleMetric(name);
  }
}
