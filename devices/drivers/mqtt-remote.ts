import { ClawboxError } from '../../runtime/errors.js';
import type { DriverFactory } from '../driver.js';

export const createMqttRemoteDriver: DriverFactory = () => {
  throw new ClawboxError('CONFIG_INVALID', 'the mqtt-remote driver is not available yet');
};
