/**
 * A short server-side history of sensor readings, so a chart has points the moment a page opens: for
 * each device and numeric sensor property (a sensor capability's readings, a thermostat's current
 * temperature), the values reported over the last 24 hours, thinned as they age. Memory only: a
 * restart starts a new history. Bounded three ways: points per series, series in all, and age.
 *
 * Reached through the `device.history` operation (`GET /api/devices/:id/history`).
 */
import type { Component, RuntimeContext } from '../runtime/context.js';
import { ClawboxError } from '../runtime/errors.js';
import type { FrontDoor } from '../runtime/operations/front-door.js';
import { type AnyOperation, defineOperation } from '../runtime/operations/operation.js';
import type { DeviceStateEvent } from './events.js';
import { DEVICE_ID_PATTERN } from './model.js';

export interface HistoryPoint {
  /** Epoch milliseconds. */
  t: number;
  v: number;
}

export interface HistoryOptions {
  /** Points kept per series; past it the older half is thinned to every second point. Default 480. */
  maxPoints?: number;
  /** Series (device × property) kept in all; the least recently updated one goes first. Default 512. */
  maxSeries?: number;
  /** Points older than this are dropped. Default 24 h. */
  maxAgeMs?: number;
}

/** The numeric properties worth a chart, by device: read from the device's capabilities. */
export type ChartedProperties = (deviceId: string) => readonly string[];

/** Capabilities as DeviceSnapshot lists them (a type name or an object with `type`). */
export function chartedProperties(capabilities: readonly unknown[]): string[] {
  const out: string[] = [];
  for (const cap of capabilities) {
    if (typeof cap !== 'object' || cap === null) continue;
    const { type, readings } = cap as { type?: unknown; readings?: unknown };
    if (type === 'sensor' && Array.isArray(readings)) {
      for (const r of readings) if (typeof r?.property === 'string') out.push(r.property);
    } else if (type === 'thermostat') out.push('current_temperature');
  }
  return out;
}

export class SensorHistory {
  readonly #maxPoints: number;
  readonly #maxSeries: number;
  readonly #maxAgeMs: number;
  /** `<device>\0<property>` -> points, oldest first; Map order = least recently updated first. */
  readonly #series = new Map<string, HistoryPoint[]>();

  constructor(options: HistoryOptions = {}) {
    this.#maxPoints = Math.max(8, options.maxPoints ?? 480);
    this.#maxSeries = Math.max(1, options.maxSeries ?? 512);
    this.#maxAgeMs = options.maxAgeMs ?? 24 * 60 * 60 * 1000;
  }

  record(device: string, property: string, value: unknown, at = Date.now()): void {
    if (typeof value !== 'number' || !Number.isFinite(value)) return;
    const key = `${device}\u0000${property}`;
    const points = this.#series.get(key) ?? [];
    this.#series.delete(key);
    this.#series.set(key, points);
    const last = points.at(-1);
    if (last && at <= last.t) {
      // Same instant (a state echoed twice) or a clock step back: the newest value wins.
      last.v = value;
    } else points.push({ t: at, v: value });
    this.#trim(points, at);
    while (this.#series.size > this.#maxSeries) this.#series.delete(this.#series.keys().next().value!);
  }

  #trim(points: HistoryPoint[], now: number): void {
    let old = 0;
    while (old < points.length - 1 && now - points[old]!.t > this.#maxAgeMs) old++;
    if (old > 0) points.splice(0, old);
    if (points.length <= this.#maxPoints) return;
    // Recent points keep full detail; the older half keeps every second point.
    const half = Math.floor(points.length / 2);
    const thinned = points.slice(0, half).filter((_, i) => i % 2 === 0);
    points.splice(0, half, ...thinned);
  }

  /** The points of one series, oldest first (at most `limit`, the newest). */
  points(device: string, property: string, limit = this.#maxPoints): HistoryPoint[] {
    const points = this.#series.get(`${device}\u0000${property}`) ?? [];
    const now = Date.now();
    return points.filter((p) => now - p.t <= this.#maxAgeMs).slice(-limit).map((p) => ({ ...p }));
  }

  /** Every charted property of a device that has points. */
  properties(device: string): string[] {
    const prefix = `${device}\u0000`;
    return [...this.#series.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  }

  forget(device: string): void {
    for (const property of this.properties(device)) this.#series.delete(`${device}\u0000${property}`);
  }
}

export interface HistoryComponentDeps {
  frontDoor: FrontDoor;
  /** The charted properties of a device now (empty for an unknown device). */
  charted: ChartedProperties;
  /** Whether the device exists (DEVICE_NOT_FOUND otherwise). */
  exists: (deviceId: string) => boolean;
  options?: HistoryOptions;
}

/** Listens to `device.state` and answers `device.history`. */
export class SensorHistoryComponent implements Component {
  readonly name = 'device-history';
  readonly history: SensorHistory;
  readonly #deps: HistoryComponentDeps;
  #off: Array<() => void> = [];

  constructor(deps: HistoryComponentDeps) {
    this.#deps = deps;
    this.history = new SensorHistory(deps.options);
  }

  async start(ctx: RuntimeContext): Promise<void> {
    // Capabilities change only through the registry: look them up once per device, not per reading.
    const charted = new Map<string, readonly string[]>();
    const chartedOf = (id: string) => {
      let properties = charted.get(id);
      if (!properties) {
        properties = this.#deps.charted(id);
        if (charted.size >= 4096) charted.clear();
        charted.set(id, properties);
      }
      return properties;
    };
    const onState = (event: DeviceStateEvent) => {
      for (const property of chartedOf(event.id)) {
        if (property in event.state) this.history.record(event.id, property, event.state[property]);
      }
    };
    const onRegistry = (event: { action: string; id: string }) => {
      charted.delete(event.id);
      if (event.action === 'removed') this.history.forget(event.id);
    };
    this.#off.push(ctx.bus.on('device.state', onState), ctx.bus.on('device.registry', onRegistry), this.#deps.frontDoor.register(historyOperation(this.history, this.#deps)));
  }

  async stop(): Promise<void> {
    for (const off of this.#off.splice(0)) off();
  }
}

export function historyOperation(history: SensorHistory, deps: Pick<HistoryComponentDeps, 'charted' | 'exists'>): AnyOperation {
  return defineOperation<{ device: string; property?: string; limit?: number }, unknown>({
    name: 'device.history',
    summary: "recent readings of a device's sensor properties (last 24 h, thinned as they age; memory only)",
    input: {
      type: 'object',
      required: ['device'],
      additionalProperties: false,
      properties: {
        device: { type: 'string', pattern: DEVICE_ID_PATTERN },
        property: { type: 'string', minLength: 1, maxLength: 64 },
        limit: { type: 'integer', minimum: 1, maximum: 2000 },
      },
    },
    // Reading history is reading state: the same permission as the device list.
    permission: () => 'bridge/request/devices',
    changesWorld: false,
    deadlineMs: 5_000,
    device: (input) => input.device,
    handler: async (input) => {
      if (!deps.exists(input.device)) throw new ClawboxError('DEVICE_NOT_FOUND', `no device with id "${input.device}"`);
      const charted = deps.charted(input.device);
      if (input.property !== undefined && !charted.includes(input.property)) {
        throw new ClawboxError('PROPERTY_UNKNOWN', `${input.device} has no charted property "${input.property.slice(0, 64)}" (charted: ${charted.join(', ') || 'none'})`);
      }
      const properties = input.property !== undefined ? [input.property] : charted;
      return {
        device: input.device,
        series: Object.fromEntries(properties.map((p) => [p, history.points(input.device, p, input.limit)])),
      };
    },
  });
}
