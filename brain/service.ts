/**
 * The two runtime components of a hybrid deployment:
 * - BrainService (role brain): serves the brain API from this box's models; status section `brain`.
 * - BrainLinkService (role edge with `brain.endpoint`): holds the link to the brain and the data policy
 *   the agent's remote rung uses; status section `brain` (link, cipher, certificate expiry, breaker).
 */
import path from 'node:path';
import type { Component, RuntimeContext } from '../runtime/context.js';
import { ClawboxError } from '../runtime/errors.js';
import type { BrainBackend } from './backend.js';
import type { BrainLink } from './client.js';
import { type BrainConfig, brainConfigOf } from './config-schema.js';
import { DataPolicy, loadPseudonymKey } from './policy.js';
import { checkFips } from './fips.js';
import type { BrainServer } from './server.js';
import type { TlsFiles } from './tls.js';

/** The link's files: as configured, else `<state>/brain-certs/` as `clawbox brain certs` writes them. */
export function tlsFilesFor(config: BrainConfig, stateDir: string, side: 'brain' | 'edge'): TlsFiles {
  const dir = path.join(stateDir, 'brain-certs');
  return {
    ca: config.tls?.ca ?? path.join(dir, 'ca.crt'),
    cert: config.tls?.cert ?? path.join(dir, `${side}.crt`),
    key: config.tls?.key ?? path.join(dir, `${side}.key`),
  };
}

export class BrainService implements Component {
  readonly name = 'brain';
  readonly #backend: () => BrainBackend;
  #server: BrainServer | null = null;
  #unregister: (() => void) | null = null;

  /** `backend` is asked at start (the model backend over the models feature, or a test backend). */
  constructor(deps: { backend: () => BrainBackend }) {
    this.#backend = deps.backend;
  }

  get port(): number {
    return this.#server?.port ?? 0;
  }

  async start(ctx: RuntimeContext): Promise<void> {
    const config = brainConfigOf(ctx.config);
    const logger = ctx.logger('brain');
    checkFips(config.require_fips);
    // gRPC is loaded only where a brain link is configured.
    const { BrainServer } = await import('./server.js');
    const server = new BrainServer({
      host: config.listen.host,
      port: config.listen.port,
      tls: tlsFilesFor(config, ctx.stateDir, 'brain'),
      backend: this.#backend(),
      max_in_flight: config.max_in_flight,
      logger,
    });
    await server.start();
    this.#server = server;
    this.#unregister = ctx.status.register('brain', () => ({ role: 'brain', server: server.status(), backend: this.#backend().health() }));
  }

  async stop(): Promise<void> {
    this.#unregister?.();
    this.#unregister = null;
    await this.#server?.stop();
    this.#server = null;
  }
}

export class BrainLinkService implements Component {
  readonly name = 'brain-link';
  #link: BrainLink | null = null;
  #policy: DataPolicy | null = null;
  #config: BrainConfig | null = null;
  #unregister: (() => void) | null = null;

  /** The link while running with an endpoint configured, else null (no remote rung). */
  get link(): BrainLink | null {
    return this.#link;
  }

  get policy(): DataPolicy | null {
    return this.#policy;
  }

  get config(): BrainConfig | null {
    return this.#config;
  }

  async start(ctx: RuntimeContext): Promise<void> {
    const config = brainConfigOf(ctx.config);
    this.#config = config;
    if (config.role !== 'edge') return;
    if (!config.endpoint) {
      // The status page can say "no brain" rather than guess from a missing section.
      this.#unregister = ctx.status.register('brain', () => ({ role: 'edge', link: null }));
      return;
    }
    const logger = ctx.logger('brain-link');
    const key = await loadPseudonymKey(config.pseudonym_key_file ?? path.join(ctx.stateDir, 'brain', 'pseudonym.key'));
    this.#policy = new DataPolicy(config.local_only, key);
    const [{ GrpcBrainLink }, { OpenAiBrainLink }] = await Promise.all([import('./client.js'), import('./openai-client.js')]);
    const link: BrainLink = config.endpoint.startsWith('grpcs://')
      ? new GrpcBrainLink({
          target: config.endpoint.slice('grpcs://'.length),
          tls: tlsFilesFor(config, ctx.stateDir, 'edge'),
          require_fips: config.require_fips,
          health_interval_ms: config.health_interval_ms,
          breaker: config.breaker,
          logger,
        })
      : new OpenAiBrainLink({
          url: config.endpoint,
          ...(config.model ? { model: config.model } : {}),
          ...(config.api_key_file ? { api_key_file: config.api_key_file } : {}),
          ...(config.tls?.ca ? { tls: tlsFilesFor(config, ctx.stateDir, 'edge') } : {}),
          require_fips: config.require_fips,
          health_interval_ms: config.health_interval_ms,
          breaker: config.breaker,
          logger,
        });
    try {
      await link.start();
    } catch (error) {
      // FIPS and certificate problems stop the runtime with their code; an unreachable brain does not.
      if (error instanceof ClawboxError && (error.code === 'FIPS_REQUIRED' || error.code === 'TLS_INVALID')) throw error;
      logger.warn({ err: error }, 'brain link did not start; serving without the remote rung');
      this.#unregister = ctx.status.register('brain', () => ({ role: 'edge', link: null, error: (error as Error).message }));
      return;
    }
    this.#link = link;
    this.#unregister = ctx.status.register('brain', () => ({
      role: 'edge',
      link: link.status(),
      local_only: config.local_only,
      prefer_remote: config.prefer_remote,
    }));
  }

  async stop(): Promise<void> {
    this.#unregister?.();
    this.#unregister = null;
    await this.#link?.stop();
    this.#link = null;
  }
}
