/**
 * What the agent may do with a device. Locks, doors, gates, garage doors and heaters move things that
 * keep people safe or warm, so by default the agent only proposes an action for them and the caller
 * confirms it; `sensitive: true` does the same for any device; `agent: deny` hides a device from it.
 */
import type { AgentPolicy, DeviceConfigEntry } from './config-schema.js';

const SENSITIVE_CLASSES: ReadonlySet<string> = new Set(['lock', 'garage', 'door', 'gate', 'heater']);

export function agentPolicyOf(entry: Pick<DeviceConfigEntry, 'agent' | 'sensitive' | 'device_class'>): AgentPolicy {
  if (entry.agent) return entry.agent;
  if (entry.sensitive === true) return 'confirm';
  return entry.device_class && SENSITIVE_CLASSES.has(entry.device_class) ? 'confirm' : 'allow';
}
