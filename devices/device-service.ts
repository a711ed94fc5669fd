/**
 * DeviceService: the one path by which anything touches a device. The topic API, the agent, the IoT
 * plugin and the status page all call execute()/read(); each call is validated against the device's
 * derived command schema, queued per device, run by the driver under a deadline, and ends in exactly one
 * result or one typed error. State changes are published retained on `<base>/<id>`, persisted, and
 * announced on the event bus.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Component, RuntimeContext } from '../runtime/context.js';
import { ClawboxError, type ErrorCode, toClawboxError } from '../runtime/errors.js';
import type { Logger } from '../runtime/logging.js';
import type { Messaging, PublishOptions } from '../runtime/messaging.js';
import type { FrontDoor } from '../runtime/operations/front-door.js';
import type { MqttAdapter } from '../runtime/operations/mqtt-adapter.js';
import { Journal } from '../runtime/store/journal.js';
import type { StoreDocument } from '../runtime/store/state-store.js';
import { CommandValidator, type DeviceSchemas } from './command-schema.js';
import { type DeviceConfigEntry, devicesConfigSchema } from './config-schema.js';
import { selectConfiguredDevices } from './demo.js';
import type { DeviceDriver, DriverContext } from './driver.js';
import { type DriverLoader, loadBuiltinDriver } from './drivers/index.js';
import { Backstop } from './backstop.js';
import { CommandLane } from './command-lane.js';
import type { DeviceStateEvent } from './events.js';
import { HaDiscovery } from './ha-discovery.js';
import { LogLimiter } from './log-limiter.js';
import { OrderedPublisher } from './ordered-publisher.js';
import type {
  Availability,
  DeviceCommand,
  DeviceCommandResult,
  DeviceDefinition,
  DeviceErrorInfo,
  DeviceSnapshot,
  DeviceState,
  ExecuteOptions,
} from './model.js';
import {
  type DevicesDocument,
  type StoredState,
  RegistryStore,
  emptyDevicesDocument,
  parseDeviceEntry,
  resolveDefinitions,
  toDefinition,
} from './registry.js';
import { DEVICE_BRIDGE_REQUESTS, deviceMqttRoutes } from './mqtt-routes.js';
import { deviceOperations } from './operations.js';

export type { DeviceCommandResult, DeviceSnapshot, ExecuteOptions } from './model.js';

export interface DeviceServiceDeps {
  messaging: Messaging;
  /** Where the device operations are declared and how they are reached over MQTT (none in unit tests). */
  api?: { frontDoor: FrontDoor; mqtt: MqttAdapter } | null;
  /** Tests and plugins may add drivers; defaults to the built-in catalog. */
  loadDriver?: DriverLoader;
  /** Devices at most, configured and runtime-added together (default: the config schema's bound). */
  maxDevices?: number;
  /** Commands waiting per device before BUSY (default 256). */
  maxQueuePerDevice?: number;
  /** Records a state journal takes before it is folded into the document (default 4,096; tests fold sooner). */
  journalFoldAfter?: number;
  /**
   * Largest payload the device topics accept (default 16 KiB, never above broker.max_payload_bytes).
   * The broker itself drops anything over broker.max_payload_bytes before it reaches the device layer.
   */
  maxPayloadBytes?: number;
}

export const DEFAULT_DEVICE_PAYLOAD_BYTES = 16 * 1024;

interface DeviceRuntime {
  def: DeviceDefinition;
  driver: DeviceDriver | null;
  state: DeviceState;
  availability: Availability;
  updatedAt: number | null;
  lastError: DeviceErrorInfo | null;
  /** Commands in arrival order; as many at once as the driver takes (one, unless it pipelines). */
  queue: CommandLane;
  pending: number;
  /** Set when the device is removed, so late driver callbacks are ignored. */
  gone: boolean;
  /** The last availability publish; stopping waits for it (a driver's own `offline` may still be queued). */
  availabilityPublished?: Promise<void>;
  /** The last state change's write and publish: changes are acknowledged one after another, in order. */
  acknowledged: Promise<void>;
  /** This device's messages (state, availability), in order. */
  publisher: OrderedPublisher;
}

/** Extra time the service waits beyond a driver's own deadline before declaring the call lost. */
const BACKSTOP_MS = 500;

export class DeviceService implements Component {
  readonly name = 'devices';
  readonly #messaging: Messaging;
  /** The broker itself: each device orders its own messages over it (DeviceRuntime.publisher). */
  readonly #broker: Messaging;
  readonly #loadDriver: DriverLoader;
  readonly #maxQueue: number;
  readonly #maxPayload: number;
  readonly #devices = new Map<string, DeviceRuntime>();
  readonly #validator = new CommandValidator();
  readonly #backstop = new Backstop();
  #ctx: RuntimeContext | null = null;
  #log: Logger | null = null;
  #limiter: LogLimiter | null = null;
  #doc: StoreDocument<DevicesDocument> | null = null;
  #registry: RegistryStore | null = null;
  readonly #api: DeviceServiceDeps['api'];
  /** Runtime additions stop here with LIMIT_REACHED, so a client cannot grow the registry without bound. */
  readonly deviceLimit: number;
  #unregisterApi: Array<() => void> = [];
  #discovery: HaDiscovery | null = null;
  #unregisterStatus: (() => void) | null = null;
  /** Released when the write that holds the changes not yet in a write is on disk. */
  #nextCommit: Commit | null = null;
  /** The state writes in flight (journal appends; the document's rewrite where no journal is open). */
  readonly #writes = new Set<Promise<void>>();
  #writeScheduled = false;
  /** False after a state write failed, until one succeeds: the broker's copy is then the only one on disk. */
  #statesOnDisk = true;
  /**
   * State changes are journaled (one synchronous append each batch) and folded into the document now and
   * then. Two journals take turns: while the document is rewritten to replace one, states go to the other.
   */
  #journals: Array<Journal<StateRecord>> = [];
  /** The journal that takes the appends. */
  #active = 0;
  /** The fold in progress: the document written, then the journal it replaces emptied. */
  #folding: Promise<void> | null = null;
  readonly #foldAfter: number;
  #journalPending: PendingRecord[] = [];
  /** The number of the last state change: the journal's replay orders by it. */
  #seq = 0;
  #running = false;

  constructor(deps: DeviceServiceDeps) {
    // The device layer's messages go out in order (see ordered-publisher.ts for the aedes reason): those
    // of one device in the order things happened to it, while devices do not wait for one another.
    this.#messaging = new OrderedPublisher(deps.messaging);
    this.#broker = deps.messaging;
    this.#loadDriver = deps.loadDriver ?? loadBuiltinDriver;
    this.#maxQueue = deps.maxQueuePerDevice ?? 256;
    this.#foldAfter = deps.journalFoldAfter ?? COMPACT_AFTER;
    this.#maxPayload = deps.maxPayloadBytes ?? DEFAULT_DEVICE_PAYLOAD_BYTES;
    this.#api = deps.api ?? null;
    this.deviceLimit = deps.maxDevices ?? devicesConfigSchema.maxItems;
  }

  get baseTopic(): string {
    return this.#messaging.baseTopic;
  }

  async start(ctx: RuntimeContext): Promise<void> {
    this.#ctx = ctx;
    this.#log = ctx.logger('devices');
    this.#limiter = new LogLimiter(this.#log);
    this.#doc = await ctx.store.open<DevicesDocument>('devices', emptyDevicesDocument);
    await this.#openJournals(ctx.store.dir);
    this.#registry = new RegistryStore(this.#doc);
    this.#discovery = new HaDiscovery(this.#messaging, ctx.version, this.#log);
    this.#running = true;

    const configured = selectConfiguredDevices(ctx.config.devices ?? [], ctx.config.mode);
    const { definitions, problems } = resolveDefinitions(configured, this.#doc.data);
    for (const problem of problems) {
      this.#log.error({ code: 'CONFIG_INVALID', device: problem.id }, `device ${problem.id}: ${problem.message}`);
    }
    const accepted: DeviceDefinition[] = [];
    for (const def of definitions) {
      const clash = cmndClash(def, accepted);
      if (clash) this.#log.error({ code: 'CONFIG_INVALID', device: def.id }, `device ${def.id} skipped: ${clash}`);
      else accepted.push(def);
    }
    await Promise.all(accepted.map((def) => this.#startDevice(def)));

    if (this.#api) {
      const { frontDoor, mqtt } = this.#api;
      for (const operation of deviceOperations(this)) this.#unregisterApi.push(frontDoor.register(operation));
      const maxPayload = Math.min(this.#maxPayload, ctx.config.broker.max_payload_bytes);
      for (const route of deviceMqttRoutes(this, this.baseTopic, maxPayload)) this.#unregisterApi.push(mqtt.route(route));
      for (const [name, operation] of Object.entries(DEVICE_BRIDGE_REQUESTS)) this.#unregisterApi.push(mqtt.bridge(name, operation));
    }
    await this.#discovery.start(() => [...this.#devices.values()].map((rt) => rt.def));
    // The status page's device table: one row per device (full snapshots are in list() and /api/devices).
    this.#unregisterStatus = ctx.status.register('devices', () =>
      this.list().map((d) => ({
        id: d.id,
        name: d.name,
        driver: d.driver,
        capabilities: d.capabilities.map((c) => c.type),
        availability: d.availability,
        state: d.state,
        updated_at: d.updated_at,
        last_error: d.last_error,
      })),
    );
    this.#log.info(
      { devices: accepted.map((d) => d.id), demo: accepted.some((d) => d.origin === 'demo') },
      `driving ${accepted.length} device(s)`,
    );
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#unregisterStatus?.();
    this.#unregisterStatus = null;
    for (const unregister of this.#unregisterApi.splice(0)) unregister();
    await this.#discovery?.stop();
    await Promise.all([...this.#devices.values()].map((rt) => this.#stopDevice(rt, 'runtime stopping')));
    this.#devices.clear();
    await this.#flushState();
    for (const journal of this.#journals.splice(0)) await journal.close();
  }

  // ---- public API ----------------------------------------------------------------------------------

  list(): DeviceSnapshot[] {
    return [...this.#devices.values()].map((rt) => this.#snapshot(rt));
  }

  get(id: string): DeviceSnapshot | undefined {
    const rt = this.#devices.get(id);
    return rt ? this.#snapshot(rt) : undefined;
  }

  /** The JSON Schema a command for this device must match (the agent builds its grammar from it). */
  commandSchema(id: string): Record<string, unknown> {
    return structuredClone(this.#schemas(id).command);
  }

  stateSchema(id: string): Record<string, unknown> {
    return structuredClone(this.#schemas(id).state);
  }

  /**
   * THE validated command path. Resolves with the state after the command, or rejects with one
   * ClawboxError: DEVICE_NOT_FOUND, COMMAND_INVALID, PROPERTY_UNKNOWN, PROPERTY_READ_ONLY,
   * VALUE_WRONG_TYPE, VALUE_OUT_OF_RANGE, DEVICE_UNAVAILABLE, BUSY, DEVICE_TIMEOUT, DEVICE_ERROR.
   * Failures are also published on `<base>/<id>/error` and emitted as `device.error`.
   */
  async execute(id: string, command: unknown, options: ExecuteOptions): Promise<DeviceCommandResult> {
    try {
      const rt = this.#require(id);
      const valid = this.#validator.validate(rt.def, command);
      // The device is free for the next command once it answered; this caller's answer waits until the
      // new state is on disk and published (see #applyState), in the device's order.
      const { result, acknowledged } = await this.#enqueue(rt, options.signal, async () => {
        const resolved = resolveToggle(valid, rt.state);
        const patch = await this.#withBackstop(rt, rt.driver!.execute(resolved, rt.def.timeout_ms), 'the command');
        // Commands always publish, so a client sees one state message per accepted command.
        const applied = this.#applyState(rt, patch, options.source, true);
        const result: DeviceCommandResult = {
          device: id,
          command: resolved,
          state: applied.state,
          ...(options.transaction === undefined ? {} : { transaction: options.transaction }),
        };
        return { result, acknowledged: applied.acknowledged };
        // TOGGLE is resolved from the state every earlier command left: it waits until they are answered.
      }, isToggle(valid));
      await acknowledged;
      return result;
    } catch (error) {
      throw this.#fail(id, error, options);
    }
  }

  /** Asks the device for the named properties (all when null) and publishes the state. */
  async read(id: string, properties: readonly string[] | null, options: ExecuteOptions): Promise<DeviceSnapshot> {
    try {
      const rt = this.#require(id);
      if (properties) {
        const known = this.#validator.schemas(rt.def).stateProperties;
        const unknown = properties.find((p) => !known.has(p));
        if (unknown !== undefined) {
          throw new ClawboxError('PROPERTY_UNKNOWN', `${id} has no property "${unknown.slice(0, 64)}"`, {
            property: unknown.slice(0, 64),
          });
        }
      }
      const { snapshot, acknowledged } = await this.#enqueue(rt, options.signal, async () => {
        const patch = await this.#withBackstop(rt, rt.driver!.read(properties, rt.def.timeout_ms), 'the read');
        const { acknowledged } = this.#applyState(rt, patch, options.source, true);
        return { snapshot: this.#snapshot(rt), acknowledged };
      });
      await acknowledged;
      return snapshot;
    } catch (error) {
      throw this.#fail(id, error, options);
    }
  }

  /** Adds a device at run time (bridge `device/add`); persisted. */
  async add(input: unknown): Promise<DeviceSnapshot> {
    const entry = parseDeviceEntry(input);
    if (this.#devices.has(entry.id)) {
      throw new ClawboxError('DEVICE_EXISTS', `a device with id "${entry.id}" already exists`, { device: entry.id });
    }
    let def: DeviceDefinition;
    try {
      def = toDefinition(entry, 'runtime');
    } catch (error) {
      throw new ClawboxError('PAYLOAD_INVALID', (error as Error).message);
    }
    const clash = cmndClash(def, [...this.#devices.values()].map((rt) => rt.def));
    if (clash) throw new ClawboxError('PAYLOAD_INVALID', clash);
    await this.#registry!.add(entry);
    await this.#startDevice(def);
    await this.#discovery?.publishDevice(def);
    this.#ctx?.bus.emit('device.registry', { action: 'added', id: def.id, name: def.name });
    return this.get(def.id)!;
  }

  /** Removes a device (bridge `device/remove`); clears its retained topics; persisted. */
  async remove(id: string): Promise<void> {
    const rt = this.#require(id);
    await this.#registry!.remove(id, rt.def.origin);
    this.#devices.delete(id);
    this.#validator.forget(id);
    await this.#stopDevice(rt, 'removed');
    rt.gone = true;
    await this.#discovery?.clearDevice(rt.def);
    const base = this.baseTopic;
    // Nothing republishes a removed device's topics: the broker must have these on disk itself.
    await this.#publish(rt, `${base}/${id}`, '', DURABLE);
    await this.#publish(rt, `${base}/${id}/availability`, '', DURABLE);
    this.#ctx?.bus.emit('device.registry', { action: 'removed', id });
  }

  /** Changes the display name (the id, and so every topic, stays); persisted. */
  async rename(id: string, name: unknown): Promise<DeviceSnapshot> {
    const rt = this.#require(id);
    if (typeof name !== 'string' || name.trim().length === 0 || name.length > 120) {
      throw new ClawboxError('PAYLOAD_INVALID', 'name must be a non-empty string of at most 120 characters');
    }
    await this.#registry!.rename(id, name);
    rt.def = { ...rt.def, name };
    await this.#discovery?.publishDevice(rt.def);
    this.#ctx?.bus.emit('device.registry', { action: 'renamed', id, name });
    return this.#snapshot(rt);
  }

  /** Error bookkeeping for failures the topic API detects before a device is involved (bad JSON, oversize). */
  async reportInputError(id: string, error: ClawboxError, options: ExecuteOptions): Promise<void> {
    this.#fail(id, error, options);
  }

  // ---- device lifecycle ----------------------------------------------------------------------------

  async #startDevice(def: DeviceDefinition): Promise<void> {
    const stored = this.#doc!.data.states[def.id];
    const rt: DeviceRuntime = {
      def,
      driver: null,
      state: this.#validator.sanitizeState(def, stored?.state ?? {}),
      availability: 'offline',
      updatedAt: stored?.updated_at ?? null,
      lastError: null,
      queue: new CommandLane(() => rt.driver?.maxInFlight ?? 1),
      pending: 0,
      gone: false,
      acknowledged: Promise.resolve(),
      publisher: new OrderedPublisher(this.#broker),
    };
    this.#devices.set(def.id, rt);
    const base = this.baseTopic;
    await this.#publish(rt, `${base}/${def.id}/availability`, 'offline', REPUBLISHED);
    // The last known state survives restarts: republish it retained before the driver says anything. This
    // is also what makes the broker's copy current again after a crash (it is written behind the journal).
    if (Object.keys(rt.state).length > 0) await this.#publish(rt, `${base}/${def.id}`, JSON.stringify(rt.state), REPUBLISHED);
    await this.#discovery?.publishDevice(def);

    const driverCtx: DriverContext = {
      definition: def,
      logger: this.#log!.child({ device: def.id }),
      messaging: this.#messaging,
      initialState: { ...rt.state },
      report: (patch) => {
        if (rt.gone) return;
        this.#applyState(rt, patch, 'device', false);
      },
      setAvailability: (availability, reason) => {
        if (rt.gone) return;
        void this.#setAvailability(rt, availability, reason);
      },
    };
    try {
      const factory = await this.#loadDriver(def.driver);
      rt.driver = factory(driverCtx);
      await rt.driver.start();
    } catch (error) {
      const err = toClawboxError(error);
      rt.lastError = { code: err.code, message: err.message, at: Date.now() };
      this.#log!.error({ code: err.code, device: def.id }, `device ${def.id} failed to start: ${err.message}`);
    }
  }

  async #stopDevice(rt: DeviceRuntime, reason: string): Promise<void> {
    try {
      await rt.driver?.stop();
    } catch (error) {
      this.#log?.warn({ device: rt.def.id, err: error }, `driver of ${rt.def.id} failed to stop cleanly`);
    }
    await this.#setAvailability(rt, 'offline', reason);
    // States the device answered before it stopped are still written and published (a removed device's
    // retained topics are cleared after this, so no late state lands on them).
    await rt.acknowledged;
    // A driver that reported `offline` while stopping left that publish in the queue, and the call above
    // returned at once: the broker stops next, so wait until it is out.
    await rt.availabilityPublished;
    rt.gone = true;
  }

  async #setAvailability(rt: DeviceRuntime, availability: Availability, reason?: string): Promise<void> {
    if (rt.availability === availability) return;
    rt.availability = availability;
    this.#log?.info({ device: rt.def.id, availability, reason }, `${rt.def.id} is ${availability}`);
    this.#ctx?.bus.emit('device.availability', {
      id: rt.def.id,
      availability,
      ...(reason === undefined ? {} : { reason }),
    });
    // Every start publishes `offline` first and the driver's availability after: nothing to keep on disk.
    rt.availabilityPublished = this.#publish(rt, `${this.baseTopic}/${rt.def.id}/availability`, availability, REPUBLISHED);
    await rt.availabilityPublished;
  }

  // ---- commands ------------------------------------------------------------------------------------

  #require(id: string): DeviceRuntime {
    const rt = typeof id === 'string' ? this.#devices.get(id) : undefined;
    if (!rt) {
      const shown = String(id).slice(0, 64);
      throw new ClawboxError('DEVICE_NOT_FOUND', `no device with id "${shown}"`, { device: shown });
    }
    return rt;
  }

  #schemas(id: string): DeviceSchemas {
    return this.#validator.schemas(this.#require(id).def);
  }

  /** Per-device FIFO with a bound; offline devices fail fast, before and after waiting in line. */
  async #enqueue<T>(rt: DeviceRuntime, signal: AbortSignal | undefined, job: () => Promise<T>, exclusive = false): Promise<T> {
    notAborted(rt, signal);
    this.#assertOnline(rt);
    if (rt.pending >= this.#maxQueue) {
      throw new ClawboxError('BUSY', `${rt.def.id} has ${rt.pending} commands waiting`, {
        device: rt.def.id,
        retry_after_ms: Math.max(10, rt.def.timeout_ms / 4),
      });
    }
    rt.pending++;
    try {
      return await rt.queue.run(() => {
        // The last moment a command can still be dropped honestly: it has not reached the driver. (A throw
        // here rejects the lane's promise.)
        notAborted(rt, signal);
        this.#assertOnline(rt);
        return job();
      }, { exclusive });
    } finally {
      rt.pending--;
    }
  }

  #assertOnline(rt: DeviceRuntime): void {
    if (rt.gone) throw new ClawboxError('DEVICE_NOT_FOUND', `${rt.def.id} was removed`, { device: rt.def.id });
    if (rt.availability !== 'online' || !rt.driver) {
      throw new ClawboxError('DEVICE_UNAVAILABLE', `${rt.def.id} is offline`, { device: rt.def.id });
    }
  }

  /** A driver that neither answers nor times out must not hold the queue forever. */
  #withBackstop<T>(rt: DeviceRuntime, work: Promise<T>, what: string): Promise<T> {
    const ms = rt.def.timeout_ms + BACKSTOP_MS;
    return this.#backstop.guard(work, ms, () => new ClawboxError('DEVICE_TIMEOUT', `${rt.def.id} did not answer ${what} within ${ms} ms`));
  }

  #fail(id: unknown, error: unknown, options: ExecuteOptions): ClawboxError {
    const err = toClawboxError(error);
    const shownId = typeof id === 'string' ? id.slice(0, 64) : String(id);
    const rt = typeof id === 'string' ? this.#devices.get(id) : undefined;
    if (rt) rt.lastError = { code: err.code, message: err.message, at: Date.now() };
    this.#ctx?.bus.emit('device.error', {
      id: shownId,
      code: err.code,
      message: err.message,
      source: options.source,
      ...(options.transaction === undefined ? {} : { transaction: options.transaction }),
    });
    this.#limiter?.warn(
      `${err.code}:${shownId}`,
      { code: err.code, device: shownId, source: options.source },
      `command for ${shownId} failed: ${err.message}`,
    );
    return err;
  }

  // ---- state ---------------------------------------------------------------------------------------

  /**
   * Takes a state the device reported or confirmed: the in-memory state changes now (so the next command
   * on the device, TOGGLE say, sees it), while the write and the publish follow in the background. The
   * caller answers its client only once `acknowledged` resolves: durable first, then announced, so a
   * state anyone has seen survives kill -9. Acknowledgements of one device run in the order of its changes.
   */
  #applyState(
    rt: DeviceRuntime,
    patch: DeviceState,
    source: DeviceStateEvent['source'],
    always: boolean,
  ): { state: DeviceState; acknowledged: Promise<void> } {
    const clean = this.#validator.sanitizeState(rt.def, patch);
    const changed = Object.keys(clean).filter((key) => rt.state[key] !== clean[key]);
    if (changed.length === 0 && !always) return { state: { ...rt.state }, acknowledged: rt.acknowledged };
    Object.assign(rt.state, clean);
    rt.updatedAt = Date.now();
    const state = { ...rt.state };
    this.#ctx?.bus.emit('device.state', { id: rt.def.id, state, changed, source });
    // Serialized once: the retained message and the journal record carry the same bytes.
    const payload = JSON.stringify(state);
    const durable = changed.length > 0 ? this.#persistState(rt, payload) : null;
    const previous = rt.acknowledged;
    const acknowledged = (async () => {
      await previous;
      const journaled = durable ? await durable : this.#statesOnDisk;
      // The journal holds the state and the next start republishes it: the broker need not wait for its disk.
      await this.#publish(rt, `${this.baseTopic}/${rt.def.id}`, payload, journaled ? REPUBLISHED : DURABLE);
    })();
    rt.acknowledged = acknowledged;
    return { state: { ...state }, acknowledged };
  }

  /**
   * Replays both state journals over the document, in the order of their records' numbers (a crash during
   * a fold leaves records in both, some of them already in the document: replayed in order, each device
   * ends at its newest), then folds them in (the document is written, the journals emptied).
   */
  async #openJournals(dir: string): Promise<void> {
    const options = { logger: this.#log!, valid: isStateRecord, preallocate: JOURNAL_PREALLOCATE };
    const opened = await Promise.all(JOURNAL_FILES.map((name) => Journal.open<StateRecord>(path.join(dir, name), options)));
    this.#journals = opened.map((o) => o.journal);
    this.#active = 0;
    this.#seq = Math.max(...opened.map((o) => o.lastSeq));
    // Stable: records of one number (old unnumbered lines of the first journal) keep their file order.
    const records = opened.flatMap((o) => o.records).sort((a, b) => a.seq - b.seq);
    if (records.length === 0) return;
    for (const record of records) this.#doc!.data.states[record.id] = { state: record.state, updated_at: record.updated_at };
    await this.#doc!.update(() => {});
    for (const journal of this.#journals) if (journal.records > 0) await journal.reset();
    this.#log?.debug({ records: records.length }, 'device states replayed from the journal');
  }

  /**
   * Resolves once a write that includes this change is done: true if it is on disk (failures are logged,
   * not thrown). `json` is the state as JSON (what the retained message carries).
   */
  #persistState(rt: DeviceRuntime, json: string): Promise<boolean> {
    if (!this.#doc) return Promise.resolve(false);
    // The in-memory document is updated now; the journal gets the change with the next group commit.
    const stored = { state: { ...rt.state }, updated_at: rt.updatedAt };
    this.#doc.data.states[rt.def.id] = stored;
    this.#journalPending.push({ seq: ++this.#seq, id: rt.def.id, ...stored, json });
    this.#nextCommit ??= newCommit();
    if (!this.#writeScheduled) {
      this.#writeScheduled = true;
      // Changes made in the same turn (before the microtasks run out) go into one write.
      queueMicrotask(() => {
        this.#writeScheduled = false;
        this.#startWrite();
      });
    }
    return this.#nextCommit.promise;
  }

  /**
   * Group commit of the last known states, with up to WRITES_IN_FLIGHT journal appends overlapping: a
   * change goes into a write at once if a slot is free, otherwise with every change made until one frees
   * (a burst costs a few appends, not one each), and each change is released as soon as the write that
   * holds it is on disk. Past `journalFoldAfter` records in the active journal the appends go to the other
   * one, and the document is rewritten in the background (#fold): no change waits for that.
   */
  #startWrite(): void {
    const commit = this.#nextCommit;
    const doc = this.#doc;
    if (!commit || !doc || this.#writes.size >= WRITES_IN_FLIGHT) return;
    const batch = this.#journalPending.splice(0);
    if (!this.#folding && (this.#journals[this.#active]?.records ?? 0) + batch.length > this.#foldAfter) this.#fold(doc);
    const journal = this.#journals[this.#active];
    this.#nextCommit = null;
    const write = (async () => {
      try {
        // Without a journal (stopped) the document itself is the write.
        if (journal) await journal.append(batch, stateRecordLine);
        else await doc.update(() => {});
      } catch (error) {
        // Kept for the next write (the next change, or stop), so a passing failure loses nothing; the
        // records keep their numbers, so a newer change written meanwhile still wins the replay.
        this.#journalPending.unshift(...batch);
        this.#log?.error({ code: 'STATE_UNWRITABLE', err: error }, 'could not persist device state');
        this.#statesOnDisk = false;
        commit.resolve(false);
        // Changes made during the failed write are not held either: they go with the next write.
        this.#nextCommit?.resolve(false);
        this.#nextCommit = null;
        return;
      }
      this.#statesOnDisk = true;
      commit.resolve(true);
    })();
    this.#writes.add(write);
    void write.then(() => {
      this.#writes.delete(write);
      // Changes that waited for a free slot go now.
      this.#startWrite();
    });
  }

  /**
   * Switches the appends to the other journal and folds the full one into the document: the document as it
   * is now holds every change so far (also those still on their way into the full journal), so once it is
   * written the full journal can be emptied. A crash before that leaves records in both journals, which the
   * next start replays in order. If the document cannot be written, the full journal keeps its records.
   */
  #fold(doc: StoreDocument<DevicesDocument>): void {
    const full = this.#journals[this.#active]!;
    this.#active = (this.#active + 1) % this.#journals.length;
    this.#folding = (async () => {
      try {
        await doc.update(() => {});
        await full.reset();
      } catch (error) {
        this.#log?.error({ code: 'STATE_UNWRITABLE', err: error }, 'could not fold the device state journal into devices.json');
      } finally {
        this.#folding = null;
      }
    })();
  }

  async #flushState(): Promise<void> {
    // Let a write scheduled for this turn start, then wait until none is in flight.
    await Promise.resolve();
    while (this.#writes.size > 0) await Promise.all(this.#writes);
    await this.#folding;
    if (this.#journalPending.length === 0 || !this.#doc) return;
    // A write failed earlier: one last try with the whole document (it holds every change).
    try {
      await this.#doc.update(() => {});
      this.#journalPending = [];
      for (const journal of this.#journals) await journal.reset();
    } catch (error) {
      this.#log?.error({ code: 'STATE_UNWRITABLE', err: error }, 'could not persist device state at stop');
    }
  }

  async #publish(rt: DeviceRuntime, topic: string, payload: string, options: PublishOptions): Promise<void> {
    try {
      await rt.publisher.publish(topic, payload, options);
    } catch (error) {
      this.#limiter?.warn(`publish:${topic}`, { topic, err: error }, `could not publish on ${topic}`);
    }
  }

  #snapshot(rt: DeviceRuntime): DeviceSnapshot {
    return {
      id: rt.def.id,
      name: rt.def.name,
      driver: rt.def.driver,
      origin: rt.def.origin,
      capabilities: structuredClone(rt.def.capabilities),
      availability: rt.availability,
      state: { ...rt.state },
      updated_at: rt.updatedAt,
      last_error: rt.lastError ? { ...rt.lastError } : null,
      agent_policy: rt.def.agent_policy,
      ...(rt.def.aliases ? { aliases: [...rt.def.aliases] } : {}),
      ...(rt.def.area ? { area: rt.def.area } : {}),
    };
  }

  /** Performance clock for callers that measure command latency. */
  static now(): number {
    return performance.now();
  }
}

/** Journal records folded into the document after this many (a few hundred KB; replayed in milliseconds). */
const COMPACT_AFTER = 4096;
/** The journal's room made ahead of its appends (journal.ts): about what COMPACT_AFTER records take. */
const JOURNAL_PREALLOCATE = 512 * 1024;
/** The two state journals that take turns (see #fold), in the state directory. */
const JOURNAL_FILES = ['devices.journal', 'devices.journal.2'];
/**
 * Journal appends at once: two overlapping synchronous writes cost about what one does on a disk that
 * queues them, so a change rarely waits for another's write; more would only take thread-pool threads
 * (four by default) from everything else.
 */
const WRITES_IN_FLIGHT = 2;

/** A group commit of states: resolves with whether the write holding them is on disk. */
interface Commit {
  promise: Promise<boolean>;
  resolve: (onDisk: boolean) => void;
}

function newCommit(): Commit {
  let resolve!: (onDisk: boolean) => void;
  const promise = new Promise<boolean>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Retained device messages that every start publishes again (states from the journal, availability). */
const REPUBLISHED: PublishOptions = { retain: true, qos: 0, republishedAtStart: true };
/** Retained messages the broker itself must keep on disk before the publish resolves. */
const DURABLE: PublishOptions = { retain: true, qos: 0 };

interface StateRecord extends StoredState {
  /** The change's number: replay applies records in this order. */
  seq: number;
  id: string;
}

/** A record waiting for the journal, with its state as JSON already (the retained message's payload). */
interface PendingRecord extends StateRecord {
  json: string;
}

/** A record's journal line, built around the state's JSON: the text JSON.stringify gives for the record. */
function stateRecordLine(record: PendingRecord): string {
  return `{"seq":${record.seq},"id":${JSON.stringify(record.id)},"state":${record.json},"updated_at":${JSON.stringify(record.updated_at)}}`;
}

function isStateRecord(value: unknown): value is StateRecord {
  const r = value as StateRecord;
  return (
    typeof r === 'object' &&
    r !== null &&
    Number.isSafeInteger(r.seq) &&
    typeof r.id === 'string' &&
    typeof r.state === 'object' &&
    r.state !== null &&
    !Array.isArray(r.state) &&
    (r.updated_at === null || typeof r.updated_at === 'number')
  );
}

/**
 * `cmnd/<x>/...` is answered by the topic API for clawbox device x, and published by the mqtt-remote
 * driver for a Tasmota device with topic x on the same broker: the two must never be the same x.
 */
function cmndClash(def: DeviceDefinition, others: readonly DeviceDefinition[]): string | null {
  const remoteTopic = (d: DeviceDefinition) => {
    const remote = d.options.remote as { protocol?: string; topic?: string; url?: string } | undefined;
    return d.driver === 'mqtt-remote' && remote?.protocol === 'tasmota' && !remote.url ? remote.topic : undefined;
  };
  const mine = remoteTopic(def);
  if (mine !== undefined && (mine === def.id || others.some((o) => o.id === mine))) {
    return `remote Tasmota topic "${mine}" is also a clawbox device id; cmnd/${mine}/... would loop`;
  }
  const other = others.find((o) => remoteTopic(o) === def.id);
  if (other) return `id "${def.id}" is the Tasmota topic of device ${other.id}; cmnd/${def.id}/... would loop`;
  return null;
}

function isToggle(command: DeviceCommand): boolean {
  return command.state === 'TOGGLE';
}

/** TOGGLE becomes ON or OFF from the last known state, just before the driver runs (so order holds). */
export function resolveToggle(command: DeviceCommand, state: DeviceState): DeviceCommand {
  if (command.state !== 'TOGGLE') return command;
  return { ...command, state: state.state === 'ON' ? 'OFF' : 'ON' };
}

export type { DeviceConfigEntry, ErrorCode };

/** A command whose caller gave up before it reached the driver is not run, and says so. */
function notAborted(rt: DeviceRuntime, signal: AbortSignal | undefined): void {
  if (!signal?.aborted) return;
  const reason = signal.reason instanceof ClawboxError ? signal.reason : null;
  throw new ClawboxError(reason?.code === 'BUSY' ? 'BUSY' : 'DEADLINE_EXCEEDED', `${rt.def.id}: not run, ${reason?.message ?? 'the caller gave up'}`, {
    device: rt.def.id,
    not_run: true,
  });
}
