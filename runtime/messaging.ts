/**
 * How the runtime's own parts talk MQTT: the embedded broker implements this as an internal client
 * (no socket), so devices, the agent and plugins publish and subscribe without knowing aedes.
 */
export interface PublishOptions {
  retain?: boolean;
  qos?: 0 | 1 | 2;
  /** MQTT 5 properties; MQTT 3.1.1 subscribers get the message without them. */
  properties?: MessageProperties;
  /**
   * For a retained message: the publisher keeps it durable itself and publishes it again at every start
   * (the device states, from their journal). The broker then stores it without waiting for its own disk,
   * and the publish resolves once subscribers have it.
   */
  republishedAtStart?: boolean;
}

/** The MQTT 5 message properties the runtime reads and writes (request/response, metadata). */
export interface MessageProperties {
  responseTopic?: string;
  correlationData?: Buffer;
  contentType?: string;
  userProperties?: Record<string, string | string[]>;
}

export type MessageHandler = (topic: string, payload: Buffer) => void;

export interface Messaging {
  /** The configured base topic, e.g. `clawbox`. */
  readonly baseTopic: string;
  /** Resolves once the broker has taken the message (stored, for retained ones unless `republishedAtStart`). */
  publish(topic: string, payload: string | Buffer, options?: PublishOptions): Promise<void>;
  /** Subscribes with MQTT wildcards; resolves to an unsubscribe function. */
  subscribe(filter: string, handler: MessageHandler): Promise<() => Promise<void>>;
}

/** A message a connected client published, with who sent it. */
export interface ClientMessage {
  readonly topic: string;
  readonly payload: Buffer;
  /** Published with the retain flag: never a request to execute. */
  readonly retain: boolean;
  readonly client: { readonly id: string; readonly username?: string; readonly address?: string };
  /** MQTT 5 properties of the request (none from MQTT 3.1.1 clients). */
  readonly properties?: MessageProperties;
  /** Whether the sender's ACL lets it publish to `topic` (what the agent may do on its behalf). */
  mayPublish(topic: string): boolean;
}

export type ClientMessageHandler = (message: ClientMessage) => void;

/**
 * Requests from clients, as opposed to Messaging.subscribe: only messages that a connected client
 * published and the broker accepted, never the runtime's own, never retained messages replayed on
 * subscribe, and with the sender attached so that the request runs as that principal.
 */
export interface ClientRequests {
  onClientPublish(filter: string, handler: ClientMessageHandler): () => void;
}
