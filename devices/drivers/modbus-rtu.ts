/**
 * modbus-rtu: Modbus RTU slaves on a serial line, through modbus-serial. Each state property maps to one
 * coil, discrete input, holding or input register at an address, with scale and offset (value = raw x
 * scale + offset; signed 16-bit optional) and an optional value map for enums (ON <-> 1, heat <-> 2).
 * A command writes each property and reads it back; polling reads every mapped property. The port
 * going away marks the device offline at once; it reopens with backoff and counts as online again only
 * when the slave answers.
 */
import { existsSync } from 'node:fs';
import ModbusSerial from 'modbus-serial';
import type { ModbusRTU } from 'modbus-serial/ModbusRTU.js';
import { ClawboxError } from '../../runtime/errors.js';
import type { DeviceDriver, DriverContext, DriverFactory } from '../driver.js';
import type { Availability, DeviceCommand, DeviceState, StateValue } from '../model.js';
import { AvailabilityState, Reconnector, SerialQueue, StatePoller, timeoutError } from './common.js';

interface RegisterMap {
  type: 'coil' | 'discrete' | 'holding' | 'input';
  address: number;
  scale?: number;
  offset?: number;
  signed?: boolean;
}

export interface ModbusRtuOptions {
  path: string;
  baud_rate?: number;
  parity?: 'none' | 'even' | 'odd';
  data_bits?: 7 | 8;
  stop_bits?: 1 | 2;
  unit_id?: number;
  registers: Record<string, RegisterMap>;
  values?: Record<string, Record<string, string | number>>;
  poll_interval_ms?: number;
  reconnect?: { initial_ms?: number; max_ms?: number };
}

const PRESENCE_CHECK_MS = 250;

/** Capability value <-> raw register value. */
export class RegisterCodec {
  constructor(
    private readonly registers: Record<string, RegisterMap>,
    private readonly values: Record<string, Record<string, string | number>> = {},
  ) {}

  toRaw(property: string, value: StateValue): number | boolean {
    const reg = this.registers[property]!;
    const mapped = this.values[property]?.[String(value)];
    let number = mapped !== undefined ? Number(mapped) : value === 'ON' ? 1 : value === 'OFF' ? 0 : Number(value);
    if (typeof value === 'boolean') number = value ? 1 : 0;
    if (reg.type === 'coil' || reg.type === 'discrete') return number !== 0;
    const raw = Math.round((number - (reg.offset ?? 0)) / (reg.scale ?? 1));
    if (!Number.isFinite(raw) || raw < (reg.signed ? -32768 : 0) || raw > (reg.signed ? 32767 : 65535)) {
      throw new ClawboxError('VALUE_OUT_OF_RANGE', `${property}=${value} does not fit its 16-bit register`);
    }
    return raw & 0xffff;
  }

  fromRaw(property: string, raw: number | boolean): StateValue {
    const reg = this.registers[property]!;
    const map = this.values[property];
    let number = typeof raw === 'boolean' ? (raw ? 1 : 0) : raw;
    if (typeof raw !== 'boolean' && reg.signed && number > 32767) number -= 65536;
    if (map) {
      for (const [value, wire] of Object.entries(map)) if (Number(wire) === number) return value;
    }
    if (typeof raw === 'boolean' && property === 'state') return raw ? 'ON' : 'OFF';
    if (typeof raw === 'boolean') return raw;
    const value = number * (reg.scale ?? 1) + (reg.offset ?? 0);
    return Math.round(value * 1e6) / 1e6;
  }
}

class ModbusRtuDriver implements DeviceDriver {
  readonly #o: ModbusRtuOptions;
  readonly #id: string;
  readonly #availability: AvailabilityState;
  readonly #reconnector: Reconnector;
  readonly #queue = new SerialQueue();
  readonly #codec: RegisterCodec;
  #client: ModbusRTU | null = null;
  #presence: NodeJS.Timeout | null = null;
  readonly #poller: StatePoller;
  #stopped = false;

  constructor(private readonly ctx: DriverContext) {
    this.#o = ctx.definition.options.modbus as ModbusRtuOptions;
    this.#id = ctx.definition.id;
    this.#availability = new AvailabilityState(ctx);
    this.#poller = new StatePoller(ctx, this.#availability, () => (this.#stopped || !this.#client ? null : this.#readAll(null, Date.now() + this.ctx.definition.timeout_ms)));
    this.#codec = new RegisterCodec(this.#o.registers, this.#o.values);
    this.#reconnector = new Reconnector(
      () => this.#open(),
      { initial_ms: this.#o.reconnect?.initial_ms ?? 250, max_ms: this.#o.reconnect?.max_ms ?? 5000 },
      (error, attempt, next) => {
        this.ctx.logger[attempt === 1 ? 'warn' : 'debug'](
          { path: this.#o.path, attempt, retry_in_ms: next, reason: (error as Error).message },
          `cannot reach Modbus unit ${this.#o.unit_id ?? 1} on ${this.#o.path}; retrying`,
        );
      },
    );
  }

  get availability(): Availability {
    return this.#availability.value;
  }

  async start(): Promise<void> {
    this.#stopped = false;
    await this.#reconnector.start();
    this.#poller.start(this.#o.poll_interval_ms ?? 0);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#reconnector.stop();
    this.#poller.stop();
    const client = this.#client;
    if (client) this.#lost(client, 'stopped');
    this.#availability.set('offline', 'stopped');
  }

  async execute(command: DeviceCommand, timeoutMs: number): Promise<DeviceState> {
    this.#availability.assertOnline();
    const deadline = Date.now() + timeoutMs;
    return this.#queue.run(async () => {
      const patch: DeviceState = {};
      for (const [property, value] of Object.entries(command)) {
        const reg = this.#o.registers[property];
        if (!reg) throw new ClawboxError('COMMAND_INVALID', `${this.#id} has no Modbus register for "${property}"`);
        if (reg.type === 'discrete' || reg.type === 'input') {
          throw new ClawboxError('COMMAND_INVALID', `${this.#id}.${property} is a read-only ${reg.type} register`);
        }
        const raw = this.#codec.toRaw(property, value);
        await this.#call<unknown>(deadline, `writing ${property}`, (c) =>
          typeof raw === 'boolean' ? c.writeCoil(reg.address, raw) : c.writeRegister(reg.address, raw),
        );
        // Read back: the slave's own value is the confirmed state.
        patch[property] = await this.#readOne(property, deadline);
      }
      return patch;
    });
  }

  async read(properties: readonly string[] | null, timeoutMs: number): Promise<DeviceState> {
    this.#availability.assertOnline();
    return this.#readAll(properties, Date.now() + timeoutMs);
  }

  #readAll(properties: readonly string[] | null, deadline: number): Promise<DeviceState> {
    const names = (properties ?? Object.keys(this.#o.registers)).filter((p) => p in this.#o.registers);
    return this.#queue.run(async () => {
      const state: DeviceState = {};
      for (const property of names) state[property] = await this.#readOne(property, deadline);
      return state;
    });
  }

  async #readOne(property: string, deadline: number): Promise<StateValue> {
    const reg = this.#o.registers[property]!;
    const result = await this.#call<unknown>(deadline, `reading ${property}`, (c) => {
      switch (reg.type) {
        case 'coil':
          return c.readCoils(reg.address, 1);
        case 'discrete':
          return c.readDiscreteInputs(reg.address, 1);
        case 'holding':
          return c.readHoldingRegisters(reg.address, 1);
        case 'input':
          return c.readInputRegisters(reg.address, 1);
      }
    });
    const raw = (result as { data: Array<number | boolean> }).data[0] ?? 0;
    return this.#codec.fromRaw(property, raw);
  }

  /** One Modbus transaction under the remaining deadline, with errors mapped to device error codes. */
  async #call<T>(deadline: number, what: string, fn: (client: ModbusRTU) => Promise<T>): Promise<T> {
    const client = this.#client;
    if (!client) throw new ClawboxError('DEVICE_UNAVAILABLE', `${this.#id} is offline`, { device: this.#id });
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw timeoutError(this.#id, what, 0);
    client.setTimeout(remaining);
    try {
      return await fn(client);
    } catch (error) {
      const e = error as { name?: string; message?: string; modbusCode?: number; errno?: string };
      if (e.name === 'TransactionTimedOutError' || e.errno === 'ETIMEDOUT') throw timeoutError(this.#id, what, remaining);
      if (e.modbusCode !== undefined) {
        throw new ClawboxError('DEVICE_ERROR', `${this.#id}: Modbus exception ${e.modbusCode} ${what} (${e.message})`, {
          device: this.#id,
          modbus_code: e.modbusCode,
        });
      }
      if (!this.#client) throw new ClawboxError('DEVICE_UNAVAILABLE', `${this.#id} went offline ${what}`);
      throw new ClawboxError('DEVICE_ERROR', `${this.#id}: ${what} failed: ${e.message}`, { device: this.#id });
    }
  }

  async #open(): Promise<void> {
    if (this.#stopped) return;
    if (!existsSync(this.#o.path)) throw new Error(`${this.#o.path} does not exist`);
    // modbus-serial is CommonJS: its constructor is the module itself.
    const Client = ModbusSerial as unknown as new () => ModbusRTU;
    const client = new Client();
    await client.connectRTUBuffered(this.#o.path, {
      baudRate: this.#o.baud_rate ?? 9600,
      parity: this.#o.parity ?? 'none',
      dataBits: this.#o.data_bits ?? 8,
      stopBits: this.#o.stop_bits ?? 1,
    });
    client.setID(this.#o.unit_id ?? 1);
    this.#client = client;
    // modbus-serial relays the port's close and error events (its typings only declare some).
    const events = client as unknown as NodeJS.EventEmitter;
    events.on('close', () => this.#lost(client, 'disconnected'));
    events.on('error', (error: Error) => this.#lost(client, `port error: ${error.message}`));
    this.#presence = setInterval(() => {
      if (!existsSync(this.#o.path)) this.#lost(client, `${this.#o.path} disappeared`);
    }, PRESENCE_CHECK_MS);
    this.#presence.unref();
    // Online only when the slave answers: a USB adapter can be there while the slave is not.
    try {
      this.ctx.report(await this.#readAll(null, Date.now() + this.ctx.definition.timeout_ms));
    } catch (error) {
      this.#lost(client, 'the slave did not answer');
      throw error;
    }
    if (this.#stopped) return;
    if (this.#client !== client) throw new Error(`${this.#o.path} went away while opening`);
    this.#poller.connected();
    this.#availability.set('online');
    this.ctx.logger.info({ path: this.#o.path, unit: this.#o.unit_id ?? 1 }, `Modbus unit on ${this.#o.path} is online`);
  }

  #lost(client: ModbusRTU, reason: string): void {
    if (this.#client !== client) return;
    this.#client = null;
    if (this.#presence) clearInterval(this.#presence);
    this.#presence = null;
    this.#availability.set('offline', reason);
    const events = client as unknown as NodeJS.EventEmitter;
    events.removeAllListeners('close');
    events.on('error', () => {});
    try {
      client.close(() => {});
    } catch {
      // already closed
    }
    if (!this.#stopped) this.#reconnector.lost();
  }
}

export const createModbusRtuDriver: DriverFactory = (ctx) => new ModbusRtuDriver(ctx);
