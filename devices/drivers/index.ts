/**
 * Driver catalog. Drivers that need native serial bindings or an MQTT client are imported only when a
 * device uses them, so a box without serial devices never loads serialport.
 */
import { ClawboxError } from '../../runtime/errors.js';
import type { DriverFactory } from '../driver.js';

export type DriverLoader = (name: string) => Promise<DriverFactory>;

export const loadBuiltinDriver: DriverLoader = async (name) => {
  switch (name) {
    case 'simulated':
      return (await import('./simulated.js')).createSimulatedDriver;
    case 'serial-line':
      return (await import('./serial-line.js')).createSerialLineDriver;
    case 'modbus-rtu':
      return (await import('./modbus-rtu.js')).createModbusRtuDriver;
    case 'mqtt-remote':
      return (await import('./mqtt-remote.js')).createMqttRemoteDriver;
    default:
      throw new ClawboxError('CONFIG_INVALID', `unknown device driver "${name}"`);
  }
};
