import { ClawboxError } from '../../runtime/errors.js';
import type { DriverFactory } from '../driver.js';

export const createModbusRtuDriver: DriverFactory = () => {
  throw new ClawboxError('CONFIG_INVALID', 'the modbus-rtu driver is not available yet');
};
