/**
 * Device ownership: every replica has the same devices, and each device's driver runs on exactly one of
 * them, the holder of the device's lease (leases.ts). The device layer's driver loader is wrapped so that
 * every driver it makes is a leased driver:
 *
 * - the holder runs the real driver, renews the lease at every heartbeat, and broadcasts what the driver
 *   reports (state, availability) on a Redis channel;
 * - the others run no driver: they mirror those broadcasts into their device layer (so the status, the
 *   agent and their retained topics agree), and send commands to the holder (rpc.ts);
 * - a holder that dies stops renewing; within lease_ttl_ms plus one heartbeat another replica's round
 *   takes the lease and starts the real driver. A holder that cannot renew (Redis unreachable, or another
 *   replica has the lease) stops its driver.
 *
 * Host-bound drivers (serial-line, modbus-rtu) only run where their port exists: a replica claims such a
 * device only if the port path exists there, so it never moves to a host without the port.
 *
 * The types below are the device layer's driver contract as this folder needs it (devices/driver.ts),
 * restated structurally so that cluster/ does not import the devices folder's internals.
 */
import { existsSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { ClawboxError } from '../runtime/errors.js';
import type { Logger } from '../runtime/logging.js';
import { KEYS } from './keys.js';
import type { LeaseTable } from './leases.js';
import type { ClusterRpc } from './rpc.js';

type Availability = 'online' | 'offline';
type State = Record<string, unknown>;

export interface DriverContextLike {
  readonly definition: { id: string; driver: string; options: Record<string, unknown> };
  readonly logger: Logger;
  report(patch: State): void;
  setAvailability(availability: Availability, reason?: string): void;
}

export interface DriverLike {
  readonly availability: Availability;
  start(): Promise<void>;
  execute(command: Record<string, unknown>, timeoutMs: number): Promise<State>;
  read(properties: readonly string[] | null, timeoutMs: number): Promise<State>;
  stop(): Promise<void>;
}

export type FactoryLike<C extends DriverContextLike, D extends DriverLike> = (ctx: C) => D;

const HOST_BOUND = new Set(['serial-line', 'modbus-rtu']);

interface DeviceEvent {
  from: string;
  id: string;
  report?: State;
  availability?: Availability;
  reason?: string;
}

interface CommandCall {
  id: string;
  kind: 'execute' | 'read';
  command?: Record<string, unknown>;
  properties?: string[] | null;
  timeout_ms: number;
}

/** One device on this replica: the real driver while it holds the lease, a mirror otherwise. */
class LeasedDriver implements DriverLike {
  #real: DriverLike | null = null;
  #availability: Availability = 'offline';
  #stopped = false;
  #changing: Promise<void> = Promise.resolve();

  constructor(
    readonly ctx: DriverContextLike,
    private readonly makeReal: () => DriverLike,
    private readonly cluster: LeasedDrivers,
  ) {}

  get id(): string {
    return this.ctx.definition.id;
  }

  get owned(): boolean {
    return this.#real !== null;
  }

  get availability(): Availability {
    return this.#real ? this.#real.availability : this.#availability;
  }

  /** May this replica hold the device at all (host-bound devices only where their port is). */
  get claimable(): boolean {
    if (!HOST_BOUND.has(this.ctx.definition.driver)) return true;
    const port = this.ctx.definition.options.port;
    return typeof port === 'string' && existsSync(port);
  }

  async start(): Promise<void> {
    this.cluster.add(this);
    // The first round resolves start: the device is driven here, or mirrored from its holder.
    await this.cluster.round(this);
  }

  /**
   * The device layer published its own last known state and `offline` at its start (retained, for every
   * replica's clients): until the holder has told this replica the current ones once, each round asks.
   */
  synced = false;

  async sync(): Promise<void> {
    if (this.synced || this.#real) return;
    const snapshot = await this.cluster.snapshot(this.id, this.ctx);
    if (!snapshot) return;
    // An offline answer may come from a holder still starting its driver: ask again next round.
    this.synced = snapshot.availability === 'online';
    this.mirror({ from: 'holder', id: this.id, ...snapshot });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.cluster.remove(this);
    await this.lose('the runtime is stopping', true);
  }

  /** Called with the outcome of a claim: starts or stops the real driver. */
  async held(holding: boolean): Promise<void> {
    if (holding && !this.#real && !this.#stopped) await this.#serially(() => this.#startReal());
    else if (!holding && this.#real) await this.lose('another replica holds the lease now', false);
  }

  async lose(reason: string, release: boolean): Promise<void> {
    await this.#serially(async () => {
      const real = this.#real;
      if (!real) return;
      this.#real = null;
      this.ctx.logger.info({ reason }, `${this.id}: driver stopped on this replica (${reason})`);
      await real.stop().catch(() => {});
      if (release) await this.cluster.leases.release(this.id).catch(() => {});
    });
  }

  #serially(work: () => Promise<void>): Promise<void> {
    const next = this.#changing.then(work, work);
    this.#changing = next.catch(() => {});
    return next;
  }

  async #startReal(): Promise<void> {
    const real = this.makeReal();
    this.#real = real;
    this.ctx.logger.info(`${this.id}: this replica holds the lease and runs the driver`);
    await real.start();
    // The real driver's first availability may already have been reported; tell the others too.
    this.cluster.broadcast({ from: '', id: this.id, availability: real.availability });
  }

  /** What the real driver reports goes to this replica's device layer and to the other replicas. */
  reportFromReal(patch: State): void {
    this.ctx.report(patch);
    this.cluster.broadcast({ from: '', id: this.id, report: patch });
  }

  availabilityFromReal(availability: Availability, reason?: string): void {
    this.ctx.setAvailability(availability, reason);
    this.cluster.broadcast({ from: '', id: this.id, availability, ...(reason ? { reason } : {}) });
  }

  /** A broadcast from the holder. */
  mirror(event: DeviceEvent): void {
    if (this.#real) return;
    if (event.report) this.ctx.report(event.report);
    if (event.availability) {
      this.#availability = event.availability;
      this.ctx.setAvailability(event.availability, event.reason ?? `reported by replica ${event.from}`);
    }
  }

  /** The device as the real driver reads it now, for a replica that just started. */
  async current(timeoutMs: number): Promise<{ availability: Availability; report?: State }> {
    const real = this.#real;
    if (!real) throw new ClawboxError('DEVICE_NOT_OWNED', `${this.id} is not driven by this replica any more`, { device: this.id });
    if (real.availability !== 'online') return { availability: real.availability };
    return { availability: 'online', report: await real.read(null, timeoutMs) };
  }

  /**
   * Runs a command from another replica on the real driver. What the device confirmed goes to this
   * replica's device layer and to every replica, as if the device had reported it.
   */
  async serve(call: CommandCall): Promise<State> {
    // A driver this replica has just taken over finishes starting first.
    await this.#changing;
    const real = this.#real;
    if (!real) throw new ClawboxError('DEVICE_NOT_OWNED', `${this.id} is not driven by this replica any more`, { device: this.id });
    const patch = call.kind === 'execute' ? await real.execute(call.command ?? {}, call.timeout_ms) : await real.read(call.properties ?? null, call.timeout_ms);
    this.reportFromReal(patch);
    return patch;
  }

  async execute(command: Record<string, unknown>, timeoutMs: number): Promise<State> {
    if (!this.#real) return this.cluster.forward({ id: this.id, kind: 'execute', command, timeout_ms: timeoutMs });
    // This replica's device layer applies the result; the others learn it here.
    const patch = await this.#real.execute(command, timeoutMs);
    this.cluster.broadcast({ from: '', id: this.id, report: patch });
    return patch;
  }

  async read(properties: readonly string[] | null, timeoutMs: number): Promise<State> {
    if (!this.#real) return this.cluster.forward({ id: this.id, kind: 'read', properties: properties ? [...properties] : null, timeout_ms: timeoutMs });
    const patch = await this.#real.read(properties, timeoutMs);
    this.cluster.broadcast({ from: '', id: this.id, report: patch });
    return patch;
  }
}

export class LeasedDrivers {
  readonly #devices = new Map<string, LeasedDriver>();
  #timer: NodeJS.Timeout | null = null;
  #rounds: Promise<void> = Promise.resolve();

  constructor(
    readonly leases: LeaseTable,
    private readonly db: Redis,
    private readonly sub: Redis,
    private readonly rpc: ClusterRpc,
    private readonly replicaId: string,
    private readonly heartbeatMs: number,
    private readonly logger: Logger,
  ) {}

  /** Wraps a driver loader (devices' DriverLoader) so that every driver it makes is leased. */
  wrapLoader<C extends DriverContextLike, D extends DriverLike>(
    load: (name: string) => Promise<FactoryLike<C, D>>,
  ): (name: string) => Promise<FactoryLike<C, D>> {
    return async (name) => {
      const factory = await load(name);
      return ((ctx: C) => {
        let leased: LeasedDriver;
        const realCtx = {
          ...ctx,
          definition: ctx.definition,
          logger: ctx.logger,
          report: (patch: State) => leased.reportFromReal(patch),
          setAvailability: (a: Availability, reason?: string) => leased.availabilityFromReal(a, reason),
        } as C;
        leased = new LeasedDriver(ctx, () => factory(realCtx), this);
        return leased as unknown as D;
      }) as FactoryLike<C, D>;
    };
  }

  async start(): Promise<void> {
    this.sub.on('message', this.#onEvent);
    await this.sub.subscribe(KEYS.deviceEvents);
    this.rpc.handle('device.snapshot', async (body) => {
      const { id, timeout_ms } = body as { id: string; timeout_ms: number };
      const device = this.#devices.get(id);
      if (!device) throw new ClawboxError('DEVICE_NOT_FOUND', `no device with id "${String(id).slice(0, 64)}" here`);
      return device.current(timeout_ms);
    });
    this.rpc.handle('device.command', async (body) => {
      const call = body as CommandCall;
      const device = this.#devices.get(call.id);
      if (!device) throw new ClawboxError('DEVICE_NOT_FOUND', `no device with id "${String(call.id).slice(0, 64)}" here`);
      return device.serve(call);
    });
    // One round at a time: a round that waits on Redis is not joined by the next ones.
    let inRound = false;
    this.#timer = setInterval(() => {
      if (inRound) return;
      inRound = true;
      this.#rounds = this.#roundAll().finally(() => {
        inRound = false;
      });
    }, this.heartbeatMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#rounds;
    this.sub.off('message', this.#onEvent);
    await Promise.all([...this.#devices.values()].map((d) => d.lose('the runtime is stopping', true)));
  }

  add(device: LeasedDriver): void {
    this.#devices.set(device.id, device);
  }

  remove(device: LeasedDriver): void {
    if (this.#devices.get(device.id) === device) this.#devices.delete(device.id);
  }

  /** Devices whose driver runs here. */
  owned(): string[] {
    return [...this.#devices.values()].filter((d) => d.owned).map((d) => d.id);
  }

  ids(): string[] {
    return [...this.#devices.keys()];
  }

  /** One claim for one device: take or renew its lease when it may run here, and act on the outcome. */
  async round(device: LeasedDriver): Promise<void> {
    if (!device.claimable) {
      await device.sync().catch(() => {});
      return;
    }
    let holding: boolean;
    try {
      holding = await this.leases.claim(device.id);
    } catch (error) {
      // Redis unreachable: a lease this replica cannot renew will expire, and another replica may take
      // it; stop driving before that can happen twice.
      if (device.owned) this.logger.warn({ device: device.id, err: (error as Error).message }, `${device.id}: cannot renew the lease; stopping its driver here`);
      holding = false;
    }
    await device.held(holding);
    // Every round until the holder has answered once (it may not drive the device yet).
    if (!holding) void device.sync().catch(() => {});
  }

  async #roundAll(): Promise<void> {
    await Promise.all([...this.#devices.values()].map((d) => this.round(d).catch(() => {})));
  }

  broadcast(event: DeviceEvent): void {
    this.db.publish(KEYS.deviceEvents, JSON.stringify({ ...event, from: this.replicaId })).catch(() => {});
  }

  /** The holder's view of a device (null when nobody holds it). */
  async snapshot(id: string, ctx: DriverContextLike): Promise<{ availability: Availability; report?: State } | null> {
    const owner = await this.leases.owner(id);
    if (!owner || owner === this.replicaId) return null;
    const timeout = Number((ctx.definition as { timeout_ms?: number }).timeout_ms ?? 2000);
    return (await this.rpc.call(owner, 'device.snapshot', { id, timeout_ms: timeout }, { timeoutMs: timeout + 500, timeoutCode: 'DEVICE_TIMEOUT' })) as {
      availability: Availability;
      report?: State;
    };
  }

  async forward(call: CommandCall): Promise<State> {
    const owner = await this.leases.owner(call.id).catch(() => {
      throw new ClawboxError('DEVICE_UNAVAILABLE', `${call.id}: the cluster's Redis cannot be reached, so no replica drives it now`, { device: call.id });
    });
    if (!owner || owner === this.replicaId) {
      throw new ClawboxError('DEVICE_NOT_OWNED', `${call.id}: no replica drives it right now (its lease is free); retry shortly`, { device: call.id, retry_after_ms: this.heartbeatMs });
    }
    return (await this.rpc.call(owner, 'device.command', call, {
      timeoutMs: call.timeout_ms + 500,
      timeoutCode: 'DEVICE_TIMEOUT',
      unreachableCode: 'DEVICE_UNAVAILABLE',
    })) as State;
  }

  readonly #onEvent = (channel: string, text: string): void => {
    if (channel !== KEYS.deviceEvents) return;
    let event: DeviceEvent;
    try {
      event = JSON.parse(text) as DeviceEvent;
    } catch {
      return;
    }
    if (event.from === this.replicaId) return;
    this.#devices.get(event.id)?.mirror(event);
  };
}
