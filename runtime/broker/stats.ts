/**
 * Broker traffic figures: plain integer counters on the hot path, rates over the last ~10 s from one
 * sample per second, and Prometheus metrics that read the counters only when scraped.
 */
import type { Registry } from 'prom-client';
import { Counter, Gauge } from '../metrics.js';

const WINDOW_S = 10;

export class BrokerStats {
  received = 0;
  sent = 0;
  readonly #samples: { at: number; received: number; sent: number }[] = [];
  #timer: NodeJS.Timeout | undefined;

  start(): void {
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), 1000);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #sample(): void {
    this.#samples.push({ at: performance.now(), received: this.received, sent: this.sent });
    if (this.#samples.length > WINDOW_S + 1) this.#samples.shift();
  }

  /** Messages per second over the sampled window (up to the last ~10 s). */
  rates(): { in_per_s: number; out_per_s: number } {
    const oldest = this.#samples[0];
    if (!oldest) return { in_per_s: 0, out_per_s: 0 };
    const seconds = (performance.now() - oldest.at) / 1000;
    if (seconds < 0.5) return { in_per_s: 0, out_per_s: 0 };
    const round = (n: number): number => Math.round(n * 10) / 10;
    return {
      in_per_s: round((this.received - oldest.received) / seconds),
      out_per_s: round((this.sent - oldest.sent) / seconds),
    };
  }
}

export interface BrokerMetrics {
  remove(): void;
}

/** Registers the broker's metrics; `remove()` takes them out again so a restart can register anew. */
export function registerBrokerMetrics(registry: Registry, stats: BrokerStats, clients: () => number): BrokerMetrics {
  const names = ['clawbox_broker_clients', 'clawbox_broker_messages_total'];
  for (const name of names) registry.removeSingleMetric(name);
  new Gauge({
    name: 'clawbox_broker_clients',
    help: 'MQTT clients connected to the embedded broker',
    registers: [registry],
    collect() {
      this.set(clients());
    },
  });
  let reported = { in: 0, out: 0 };
  new Counter({
    name: 'clawbox_broker_messages_total',
    help: 'PUBLISH messages the embedded broker received (in) and delivered to clients (out)',
    labelNames: ['direction'],
    registers: [registry],
    collect() {
      // Counters only rise: add what happened since the last scrape.
      this.labels('in').inc(stats.received - reported.in);
      this.labels('out').inc(stats.sent - reported.out);
      reported = { in: stats.received, out: stats.sent };
    },
  });
  return {
    remove() {
      for (const name of names) registry.removeSingleMetric(name);
    },
  };
}
