/**
 * A part of a feature that an idle box does not need, loaded on first use: its modules are imported the
 * first time a caller needs it (once; callers meanwhile wait for the same load). Whatever an idle box never
 * uses then costs it no V8 heap for module sources, bytecode and tables. A load that fails is logged and
 * fails its callers with the error; the next use tries again. Only the composition root (app/) uses this.
 *
 * Whether each one is loaded yet is the metric `clawbox_feature_loaded{feature}` (0 or 1): what an operator,
 * the footprint benchmark and the tests read (app/lazy-features.test.ts).
 */
import { ClawboxError } from '../runtime/errors.js';
import type { Logger } from '../runtime/logging.js';
import { Gauge, type PromRegistry } from '../runtime/metrics.js';

export class LazyFeature<T> {
  #loading: Promise<T> | null = null;
  #value: T | undefined;
  #loaded = false;
  #closed = false;

  constructor(
    readonly name: string,
    private readonly load: () => Promise<T>,
    private readonly logger?: () => Logger | null,
  ) {}

  get loaded(): boolean {
    return this.#loaded;
  }

  /** The part, loading it on the first call. */
  get(): Promise<T> {
    if (this.#closed) return Promise.reject(new ClawboxError('BUSY', `${this.name} is stopped`));
    this.#loading ??= (async () => {
      const began = performance.now();
      try {
        const value = await this.load();
        this.#value = value;
        this.#loaded = true;
        this.logger?.()?.info({ feature: this.name, ms: Math.round(performance.now() - began) }, `${this.name} loaded on first use`);
        return value;
      } catch (error) {
        this.#loading = null;
        this.logger?.()?.error({ err: error, feature: this.name }, `${this.name} could not be loaded`);
        throw error;
      }
    })();
    return this.#loading;
  }

  /** No load from now on (its owner stopped); resolves with what was loaded or is loading, for the owner to close. */
  async close(): Promise<T | undefined> {
    this.#closed = true;
    return this.#loading?.catch(() => undefined);
  }

  /** The part if it is loaded, else undefined: for readers that must not load it (status, data export). */
  peek(): T | undefined {
    return this.#value;
  }
}

/** `clawbox_feature_loaded{feature}`: 1 once a part loaded on first use is loaded, 0 before. */
export function registerFeatureGauge(registry: PromRegistry, features: readonly { readonly name: string; readonly loaded: boolean }[]): void {
  // Read at scrape time; the registry keeps the only reference it needs.
  new Gauge({
    name: 'clawbox_feature_loaded',
    help: 'Whether a part loaded on first use is loaded yet (1) or not (0)',
    labelNames: ['feature'],
    registers: [registry],
    collect() {
      for (const feature of features) this.set({ feature: feature.name }, feature.loaded ? 1 : 0);
    },
  });
}
