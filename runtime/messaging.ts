/**
 * How the runtime's own parts talk MQTT: the embedded broker implements this as an internal client
 * (no socket), so devices, the agent and plugins publish and subscribe without knowing aedes.
 */
export interface PublishOptions {
  retain?: boolean;
  qos?: 0 | 1 | 2;
}

export type MessageHandler = (topic: string, payload: Buffer) => void;

export interface Messaging {
  /** The configured base topic, e.g. `clawbox`. */
  readonly baseTopic: string;
  /** Resolves once the broker has taken the message (stored, for retained ones). */
  publish(topic: string, payload: string | Buffer, options?: PublishOptions): Promise<void>;
  /** Subscribes with MQTT wildcards; resolves to an unsubscribe function. */
  subscribe(filter: string, handler: MessageHandler): Promise<() => Promise<void>>;
}
