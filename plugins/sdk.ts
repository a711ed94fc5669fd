/**
 * What a Node plugin author writes against. A plugin's entry module default-exports a definition:
 *
 *   export default definePlugin({
 *     async start(ctx) { ... },                 // optional: ctx.config is checked against the manifest
 *     tools: { add: ({ a, b }) => ({ sum: a + b }) },
 *     async stop() { ... },                     // optional
 *   });
 *
 * (Plain JavaScript plugins can export the same object without importing this module.) Arguments arrive
 * already checked against the manifest's schema; results are checked on the way out. Throw
 * `new PluginError(code, message)` with a clawbox error code (e.g. PAYLOAD_INVALID, FORBIDDEN) for an
 * expected failure; anything else thrown becomes PLUGIN_FAILED for that call.
 */

export interface PluginLogger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A device as the host reports it (see devices/model.ts DeviceSnapshot). */
export interface PluginDeviceView {
  id: string;
  name: string;
  availability: string;
  state: Record<string, unknown>;
  capabilities: unknown[];
  [key: string]: unknown;
}

/** The device layer, through the host; needs `permissions.devices` in the manifest. */
export interface PluginDevicesApi {
  list(): Promise<PluginDeviceView[]>;
  get(id: string): Promise<PluginDeviceView>;
  commandSchema(id: string): Promise<Record<string, unknown>>;
  execute(id: string, command: Record<string, unknown>): Promise<unknown>;
}

/** MQTT through the runtime's broker; needs `permissions.topics` in the manifest. */
export interface PluginMqttApi {
  publish(topic: string, payload: string | Record<string, unknown>, options?: { retain?: boolean }): Promise<void>;
  subscribe(filter: string, handler: (topic: string, payload: string) => void): Promise<void>;
}

export interface PluginContext {
  readonly name: string;
  readonly config: Record<string, unknown>;
  /** A folder of the plugin's own under the runtime's state dir. */
  readonly dataDir: string;
  readonly log: PluginLogger;
  readonly devices: PluginDevicesApi;
  readonly mqtt: PluginMqttApi;
}

export interface ToolCall {
  readonly id: string;
  /** Who asked (for logs and audit): e.g. `{ id: 'mqtt', source: 'mqtt' }`. */
  readonly caller: { readonly id?: string; readonly source?: string };
  readonly transaction?: string | number;
  /** Aborted when the host gave up on the call (timeout, stop). */
  readonly signal: AbortSignal;
  /** Devices within the caller's permissions as well as the plugin's. */
  readonly devices: PluginDevicesApi;
}

// biome-ignore lint/suspicious/noExplicitAny: tool arguments are validated by the manifest schema, not by TypeScript.
export type ToolHandler = (args: any, call: ToolCall) => unknown;

export interface PluginDefinition {
  start?(ctx: PluginContext): void | Promise<void>;
  stop?(): void | Promise<void>;
  tools: Record<string, ToolHandler>;
}

export function definePlugin<T extends PluginDefinition>(definition: T): T {
  return definition;
}

// ---- channel plugins (manifest `kind: "channel"`) -------------------------------------------------------

/** One message from the platform. `media` names what came besides text (the gateway refuses it clearly). */
export interface ChannelInbound {
  sender_id: string;
  display_name?: string;
  text: string;
  media?: { kind: string }[];
}

/** The gateway's answer to an inbound message; acknowledge to the platform only after it arrived. */
export type ChannelAcceptance =
  | { status: 'accepted'; id: string; session: string }
  | { status: 'pairing'; code: string }
  | { status: 'rejected'; code: string; message: string }
  /** Dropped by the DM policy: say nothing to the sender. */
  | { status: 'ignored'; reason: string };

/** Where the channel stands, shown on the status document (`channels.platforms[]`). */
export type ChannelStateName = 'connecting' | 'connected' | 'reconnecting' | 'pairing' | 'logged_out' | 'failed';

export interface ChannelStateUpdate {
  state: ChannelStateName;
  /** One line for the operator, e.g. why it reconnects. Never a secret. */
  detail?: string;
  /** While `pairing`: the text of the QR code to scan (WhatsApp). */
  qr?: string;
}

export interface ChannelContext {
  readonly name: string;
  readonly config: Record<string, unknown>;
  /** The credentials the manifest declares, from the channel's config or $CREDENTIALS_DIRECTORY. */
  readonly credentials: Readonly<Record<string, string>>;
  /** A folder of the channel's own under the state dir (mode 0700): auth state lives here. */
  readonly dataDir: string;
  readonly log: PluginLogger;
  /** Hands a platform message to the gateway; resolves once it is stored (then acknowledge it). */
  receive(message: ChannelInbound): Promise<ChannelAcceptance>;
  state(update: ChannelStateUpdate): void;
}

export interface ChannelOutbound {
  text: string;
  /** Set when the message could not be answered. */
  error?: { code: string; message: string };
}

export interface ChannelDefinition {
  /** Log in and start receiving; resolves once connected (or pairing). Reconnecting is the channel's own job. */
  connect(ctx: ChannelContext): Promise<void>;
  /** Delivers one reply to a sender; throws when it could not. Split long texts (channel-kit.ts splitMessage). */
  send(to: { sender_id: string }, message: ChannelOutbound, signal: AbortSignal): Promise<void>;
  /** Stops receiving and closes the connection; nothing is received after it resolves. */
  disconnect(): Promise<void>;
}

export interface ChannelPluginDefinition {
  channel: ChannelDefinition;
}

export function defineChannel<T extends ChannelPluginDefinition>(definition: T): T {
  return definition;
}

/** An expected failure with a clawbox error code; its message reaches the caller as it is. */
export class PluginError extends Error {
  override readonly name = 'PluginError';
  constructor(
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}
