/**
 * Status providers: each component registers a function that reports its public figures (broker clients,
 * devices, model, scheduler). The status page, /api/status and /metrics read only through here.
 */
export type StatusProvider = () => unknown;

export class StatusRegistry {
  readonly #providers = new Map<string, StatusProvider>();

  register(section: string, provider: StatusProvider): () => void {
    if (this.#providers.has(section)) throw new Error(`status section "${section}" is registered twice`);
    this.#providers.set(section, provider);
    return () => this.#providers.delete(section);
  }

  /** One snapshot of every section; a failing provider reports its error instead of breaking the page. */
  async snapshot(): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    for (const [section, provider] of this.#providers) {
      try {
        out[section] = await provider();
      } catch (error) {
        out[section] = { error: error instanceof Error ? error.message : String(error) };
      }
    }
    return out;
  }
}
