/**
 * Simulated devices: a lamp, a dimmable light, a thermostat, a temperature/humidity sensor and a cover,
 * behaving like the real thing from their capabilities (a cover closes to position 0, a heating
 * thermostat drifts towards its target). They make `npm start` show working devices with no hardware.
 * Each simulated device also exposes fault controls (unplug, unresponsive, report) for tests and demos.
 */
import { thermostatRange } from '../capabilities.js';
import type { DeviceDriver, DriverContext, DriverFactory } from '../driver.js';
import type { Availability, DeviceCommand, DeviceState } from '../model.js';
import { AvailabilityState, delay, timeoutError } from './common.js';

export interface SimulatorControl {
  /** The device disappears (cable pulled) / comes back. */
  unplug(): void;
  replug(): void;
  /** The device stays connected but stops answering. */
  setResponsive(responsive: boolean): void;
  /** The device changes on its own (a switch pressed on the wall) and reports it. */
  physicalChange(patch: DeviceState): void;
  readonly hardware: Readonly<DeviceState>;
}

/** Controls of the simulated devices started in this process, by device id (last started wins). */
export const simulatorControls = new Map<string, SimulatorControl>();

function initialHardware(ctx: DriverContext): DeviceState {
  const state: DeviceState = {};
  for (const cap of ctx.definition.capabilities) {
    switch (cap.type) {
      case 'switch':
        state.state = 'OFF';
        break;
      case 'dimmer':
        state.brightness = 100;
        break;
      case 'sensor':
        for (const reading of cap.readings) state[reading.property] = baseline(reading.property);
        break;
      case 'thermostat': {
        const { min, max, modes } = thermostatRange(cap);
        state.target_temperature = Math.min(max, Math.max(min, 20));
        state.mode = modes[0] ?? 'off';
        state.current_temperature = 19.5;
        break;
      }
      case 'cover':
        state.state = 'CLOSED';
        state.position = 0;
        break;
    }
  }
  // Restore what the store remembers for properties the device has (a lamp keeps its state across restarts).
  for (const [key, value] of Object.entries(ctx.initialState)) if (key in state) state[key] = value;
  return state;
}

function baseline(property: string): number {
  if (property.includes('humid')) return 45;
  if (property.includes('temp')) return 21;
  return 0;
}

const round1 = (n: number) => Math.round(n * 10) / 10;

class SimulatedDriver implements DeviceDriver {
  readonly #availability: AvailabilityState;
  readonly #hardware: DeviceState;
  readonly #latency: number;
  readonly #reportEvery: number;
  #plugged = true;
  #responsive = true;
  #timer: NodeJS.Timeout | null = null;
  #control: SimulatorControl | null = null;

  constructor(private readonly ctx: DriverContext) {
    this.#availability = new AvailabilityState(ctx);
    this.#hardware = initialHardware(ctx);
    const options = (ctx.definition.options.simulated ?? {}) as { latency_ms?: number; report_interval_ms?: number };
    this.#latency = options.latency_ms ?? 0;
    this.#reportEvery = options.report_interval_ms ?? 0;
  }

  get availability(): Availability {
    return this.#availability.value;
  }

  async start(): Promise<void> {
    const driver = this;
    this.#control = {
      unplug: () => {
        this.#plugged = false;
        this.#availability.set('offline', 'unplugged');
      },
      replug: () => {
        this.#plugged = true;
        this.#availability.set('online');
        this.ctx.report({ ...this.#hardware });
      },
      setResponsive: (responsive) => {
        this.#responsive = responsive;
      },
      physicalChange: (patch) => {
        Object.assign(this.#hardware, patch);
        if (this.#plugged) this.ctx.report({ ...patch });
      },
      get hardware() {
        return { ...driver.#hardware };
      },
    };
    simulatorControls.set(this.ctx.definition.id, this.#control);
    this.#availability.set('online');
    this.ctx.report({ ...this.#hardware });
    if (this.#reportEvery > 0) {
      this.#timer = setInterval(() => this.#drift(), this.#reportEvery);
      this.#timer.unref();
    }
  }

  async execute(command: DeviceCommand, timeoutMs: number): Promise<DeviceState> {
    await this.#exchange(timeoutMs, 'the command');
    const patch: DeviceState = {};
    for (const [key, value] of Object.entries(command)) {
      if (this.#isCover() && key === 'state') {
        const position = value === 'OPEN' ? 100 : value === 'CLOSE' ? 0 : (this.#hardware.position as number);
        patch.state = value === 'STOP' ? 'STOPPED' : position === 0 ? 'CLOSED' : 'OPEN';
        patch.position = position;
      } else if (this.#isCover() && key === 'position') {
        patch.position = value;
        patch.state = value === 0 ? 'CLOSED' : 'OPEN';
      } else {
        patch[key] = value;
      }
    }
    Object.assign(this.#hardware, patch);
    return patch;
  }

  async read(properties: readonly string[] | null, timeoutMs: number): Promise<DeviceState> {
    await this.#exchange(timeoutMs, 'the read');
    if (!properties) return { ...this.#hardware };
    return Object.fromEntries(properties.filter((p) => p in this.#hardware).map((p) => [p, this.#hardware[p] ?? null]));
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#availability.set('offline', 'stopped');
    if (simulatorControls.get(this.ctx.definition.id) === this.#control) simulatorControls.delete(this.ctx.definition.id);
  }

  #isCover(): boolean {
    return this.ctx.definition.capabilities.some((c) => c.type === 'cover');
  }

  /** What talking to the device costs: fails fast when unplugged, times out when unresponsive. */
  async #exchange(timeoutMs: number, what: string): Promise<void> {
    this.#availability.assertOnline();
    if (!this.#responsive) {
      await delay(timeoutMs);
      throw timeoutError(this.ctx.definition.id, what, timeoutMs);
    }
    if (this.#latency > 0) {
      if (this.#latency >= timeoutMs) {
        await delay(timeoutMs);
        throw timeoutError(this.ctx.definition.id, what, timeoutMs);
      }
      await delay(this.#latency);
    }
  }

  /** Sensors wander a little; a thermostat's room warms towards the target when heating. */
  #drift(): void {
    if (!this.#plugged) return;
    const patch: DeviceState = {};
    for (const cap of this.ctx.definition.capabilities) {
      if (cap.type === 'sensor') {
        for (const { property } of cap.readings) {
          const now = Number(this.#hardware[property] ?? baseline(property));
          const next = round1(now + (baseline(property) - now) * 0.1 + (Math.random() - 0.5) * 0.4);
          patch[property] = next;
        }
      }
      if (cap.type === 'thermostat') {
        const current = Number(this.#hardware.current_temperature ?? 19.5);
        const target = this.#hardware.mode === 'off' ? 18 : Number(this.#hardware.target_temperature);
        patch.current_temperature = round1(current + (target - current) * 0.2);
      }
    }
    Object.assign(this.#hardware, patch);
    this.ctx.report(patch);
  }
}

export const createSimulatedDriver: DriverFactory = (ctx) => new SimulatedDriver(ctx);
