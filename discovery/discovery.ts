/**
 * Announces the box over mDNS with bonjour-service (pure JavaScript, no Avahi needed) while it runs, and
 * withdraws the announcements (goodbye packets) when it stops. A network without multicast only costs a
 * warning: the box keeps serving.
 */
import type { Bonjour, Service } from 'bonjour-service';
import type { Component, RuntimeContext } from '../runtime/context.js';
import { isLoopbackHost } from '../runtime/http/auth.js';
import type { Logger } from '../runtime/logging.js';
import { type Announcement, type BoxFacts, announcementsFor } from './announcements.js';

export interface DiscoveryOptions {
  /** Read at start, after HTTP and the broker listen: ports, TLS and the box's name. */
  facts(ctx: RuntimeContext): BoxFacts;
  /** Tests browse on their own Bonjour; production uses the default multicast interface. */
  bonjourOptions?: ConstructorParameters<typeof Bonjour>[0];
}

export function discoveryEnabled(config: RuntimeContext['config']): boolean {
  const enabled = config.discovery?.enabled ?? 'auto';
  return enabled === true || (enabled === 'auto' && config.mode === 'appliance' && !isLoopbackHost(config.http.host));
}

export class Discovery implements Component {
  readonly name = 'discovery';
  readonly #options: DiscoveryOptions;
  #bonjour: Bonjour | undefined;
  #services: Service[] = [];
  #announced: Announcement[] = [];
  #log: Logger | undefined;

  constructor(options: DiscoveryOptions) {
    this.#options = options;
  }

  /** What is announced now (empty when off). */
  get announced(): readonly Announcement[] {
    return this.#announced;
  }

  async start(ctx: RuntimeContext): Promise<void> {
    this.#log = ctx.logger('discovery');
    if (!discoveryEnabled(ctx.config)) return;
    const facts = this.#options.facts(ctx);
    const announcements = announcementsFor({ ...facts, name: ctx.config.discovery?.name ?? facts.name });
    const log = this.#log;
    // bonjour-service is loaded only when the box announces itself (appliance mode on a network).
    const { Bonjour } = await import('bonjour-service');
    const bonjour = new Bonjour(this.#options.bonjourOptions ?? {}, (error: Error) => log.warn({ err: error }, 'mDNS announcements failed; the box is not found by name on this network'));
    this.#bonjour = bonjour;
    for (const a of announcements) {
      const service = bonjour.publish({ name: a.name, type: a.type, port: a.port, txt: a.txt, probe: true });
      service.on('error', (error: Error) => log.warn({ err: error, type: a.type }, 'an mDNS announcement failed'));
      this.#services.push(service);
    }
    this.#announced = announcements;
    log.info({ services: announcements.map((a) => `_${a.type}._tcp:${a.port}`), name: announcements[0]?.name }, 'announcing on mDNS');
  }

  async stop(): Promise<void> {
    const bonjour = this.#bonjour;
    this.#bonjour = undefined;
    this.#services = [];
    this.#announced = [];
    if (!bonjour) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      bonjour.unpublishAll(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    bonjour.destroy();
  }
}
