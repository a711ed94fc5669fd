/**
 * What the agent needs from the device layer, and nothing more. The composition root adapts the
 * device layer's DeviceService to this (its list(), commandSchema(id) and execute(id, command, options)
 * have these shapes), so the agent never depends on device internals.
 */

export type StateValue = string | number | boolean | null;
export type JsonSchema = Record<string, unknown>;

/** One capability as the device layer describes it (switch, dimmer, sensor, thermostat, cover, ...). */
export interface AgentCapability {
  type: string;
  /** Sensors: the properties they report, e.g. {property: 'temperature', unit: '°C', device_class: 'temperature'}. */
  readings?: ReadonlyArray<{ property: string; unit?: string; device_class?: string }>;
  [key: string]: unknown;
}

export interface AgentDevice {
  id: string;
  name: string;
  /** Other names people use ("the big light"); optional. */
  aliases?: readonly string[];
  /** The room or area it is in ("kitchen"); optional. */
  area?: string;
  capabilities: readonly AgentCapability[];
  availability?: 'online' | 'offline';
  /** Last known state, for answering questions without a round trip. */
  state?: Readonly<Record<string, StateValue>>;
}

export interface AgentExecuteOptions {
  source: 'agent';
  transaction?: string | number;
}

export interface DeviceDirectory {
  /** The devices the agent may see and control. */
  list(): readonly AgentDevice[] | Promise<readonly AgentDevice[]>;
  /** JSON Schema of a command object for the device (ranges and enums included), or undefined if unknown. */
  commandSchema(id: string): JsonSchema | undefined | Promise<JsonSchema | undefined>;
  /** Executes through the same path as a topic command; rejects with a ClawboxError on failure. */
  execute(id: string, command: Record<string, StateValue>, options: AgentExecuteOptions): Promise<unknown>;
  /** Called when devices are added, removed or renamed (the agent rebuilds its prompt prefix). */
  onChange?(listener: () => void): () => void;
}
