/**
 * The driver contract. One driver instance drives one device. The DeviceService owns validation,
 * queueing, state, persistence and publishing; a driver only talks to its device:
 * - start() begins connecting and resolves after the first attempt, online or not (never throws for an
 *   absent device: it reports `offline` and keeps retrying with backoff);
 * - execute() and read() resolve with the state properties the device confirmed, or reject with a
 *   ClawboxError: DEVICE_UNAVAILABLE (offline, fails fast), DEVICE_TIMEOUT, DEVICE_ERROR;
 * - unsolicited state and availability changes go through the context callbacks.
 * Every driver passes the shared conformance suite in drivers/conformance.ts.
 */
import type { Logger } from '../runtime/logging.js';
import type { Messaging } from '../runtime/messaging.js';
import type { Availability, DeviceCommand, DeviceDefinition, DeviceState } from './model.js';

export interface DriverContext {
  readonly definition: DeviceDefinition;
  readonly logger: Logger;
  /** The runtime's internal MQTT client (mqtt-remote drives devices on the embedded broker with it). */
  readonly messaging: Messaging;
  /** Last known state from the store, so a driver can start from it (the simulated one does). */
  readonly initialState: Readonly<DeviceState>;
  /** The device reported state on its own (poll, unsolicited line, remote telemetry). */
  report(patch: DeviceState): void;
  /** The device came or went. */
  setAvailability(availability: Availability, reason?: string): void;
}

export interface DeviceDriver {
  readonly availability: Availability;
  /**
   * Commands the service may have running on this driver at once (default 1: one after the other). A
   * driver that pipelines (writes the next command before the last reply) must match each reply to its
   * own command and time each out on its own.
   */
  readonly maxInFlight?: number;
  start(): Promise<void>;
  /** `command` is already validated against the device schema and TOGGLE is resolved. */
  execute(command: DeviceCommand, timeoutMs: number): Promise<DeviceState>;
  /** Reads named properties, or all when `properties` is null. */
  read(properties: readonly string[] | null, timeoutMs: number): Promise<DeviceState>;
  stop(): Promise<void>;
}

export type DriverFactory = (ctx: DriverContext) => DeviceDriver;
