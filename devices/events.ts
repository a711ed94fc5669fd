/**
 * The device layer's events on the runtime bus (status page, metrics, audit log and plugins listen).
 */
import type { ErrorCode } from '../runtime/errors.js';
import type { Availability, CommandSource, DeviceState } from './model.js';

export interface DeviceStateEvent {
  id: string;
  /** The full state after the change. */
  state: DeviceState;
  /** Properties whose value changed (empty when a command or read only confirmed the state). */
  changed: string[];
  /** What caused it: a command source, or `device` for a report. */
  source: CommandSource | 'device';
}

export interface DeviceAvailabilityEvent {
  id: string;
  availability: Availability;
  reason?: string;
}

export interface DeviceErrorEvent {
  /** May name an unknown device (DEVICE_NOT_FOUND). */
  id: string;
  code: ErrorCode;
  message: string;
  source: CommandSource;
  transaction?: string | number;
}

export interface DeviceRegistryEvent {
  action: 'added' | 'removed' | 'renamed';
  id: string;
  name?: string;
}

declare module '../runtime/events.js' {
  interface RuntimeEvents {
    'device.state': [DeviceStateEvent];
    'device.availability': [DeviceAvailabilityEvent];
    'device.error': [DeviceErrorEvent];
    'device.registry': [DeviceRegistryEvent];
  }
}
