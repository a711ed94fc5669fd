/**
 * prom-client's metric classes, for the runtime registry (ctx.metrics) and the features that add to it.
 *
 * Import them from here, not from 'prom-client': the package's index also loads its cluster aggregator,
 * its Pushgateway client and every default metric (with @opentelemetry/api), which an idle box holds in
 * memory for nothing. This takes the classes from the package's own files, and the default metrics
 * (process CPU, memory, heap, event loop lag, GC) are registered on the first scrape of the registry
 * (`RuntimeRegistry.metrics()`): the event-loop-lag and GC figures count from then on; CPU time counts
 * from the process's start, and the others read the process as it is. prom-client is pinned (package.json); runtime/metrics.test.ts checks both.
 */
import { createRequire } from 'node:module';
import type PromClient from 'prom-client';

const require = createRequire(import.meta.url);

export type { Registry as PromRegistry } from 'prom-client';
export const Counter = require('prom-client/lib/counter') as typeof PromClient.Counter;
export type Counter<T extends string = string> = PromClient.Counter<T>;
export const Gauge = require('prom-client/lib/gauge') as typeof PromClient.Gauge;
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
export const Histogram = require('prom-client/lib/histogram') as typeof PromClient.Histogram;
export type Histogram<T extends string = string> = PromClient.Histogram<T>;
const PromRegistryClass = require('prom-client/lib/registry') as typeof PromClient.Registry;

/** The runtime's registry: default metrics (with `prefix`) are added when it is first read. */
export class RuntimeRegistry extends PromRegistryClass {
  readonly #prefix: string;
  #defaultsRegistered = false;

  constructor(prefix: string) {
    super();
    this.#prefix = prefix;
  }

  override async metrics(): Promise<string> {
    this.#registerDefaults();
    return super.metrics();
  }

  override async getMetricsAsJSON(): Promise<PromClient.MetricObjectWithValues<PromClient.MetricValue<string>>[]> {
    this.#registerDefaults();
    return super.getMetricsAsJSON();
  }

  #registerDefaults(): void {
    if (this.#defaultsRegistered) return;
    this.#defaultsRegistered = true;
    const collectDefaultMetrics = require('prom-client/lib/defaultMetrics') as typeof PromClient.collectDefaultMetrics;
    const before = process.cpuUsage();
    collectDefaultMetrics({ register: this, prefix: this.#prefix });
    // prom-client's CPU counters add what was used since they were registered: add what came before, so
    // they count from the process's start as when they were registered at start.
    const add = (name: string, micros: number) => (this.getSingleMetric(`${this.#prefix}${name}`) as Counter | undefined)?.inc(micros / 1e6);
    add('process_cpu_user_seconds_total', before.user);
    add('process_cpu_system_seconds_total', before.system);
    add('process_cpu_seconds_total', before.user + before.system);
  }
}
