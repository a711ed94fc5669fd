/**
 * The plugin side of a Node plugin, run in a worker thread or a child process: imports the entry, answers
 * the host's JSON-RPC (initialize, call, ping, shutdown; cancel and mqtt.message notifications) and offers
 * the plugin a context whose device and MQTT calls are requests back to the host. Every message is a JSON
 * text, sized before it is sent, so nothing a plugin returns can surprise the host's parser.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import type {
  ChannelAcceptance,
  ChannelContext,
  ChannelDefinition,
  PluginContext,
  PluginDefinition,
  PluginDevicesApi,
  PluginLogger,
  ToolCall,
} from '../sdk.js';
import { topicMatches } from '../../runtime/broker/topics.js';
import { RPC, RemoteError, type RpcError, RpcPeer } from './rpc.js';

interface BootData {
  entry: string;
  name: string;
  maxMessageBytes: number;
}

const boot: BootData = parentPort
  ? (workerData as BootData)
  : (JSON.parse(process.env.CLAWBOX_PLUGIN_DATA ?? '{}') as BootData);

type Send = (text: string) => void;
let send: Send;
let onText: (handler: (text: string) => void) => void;

if (parentPort) {
  const port = parentPort;
  send = (text) => port.postMessage(text);
  onText = (handler) => port.on('message', (value: unknown) => typeof value === 'string' && handler(value));
} else if (process.send) {
  send = (text) => {
    process.send?.(text);
  };
  onText = (handler) => process.on('message', (value: unknown) => typeof value === 'string' && handler(value));
  // The host is gone: so is the plugin.
  process.on('disconnect', () => process.exit(0));
} else {
  process.stderr.write('node-plugin-main: started without a host\n');
  process.exit(2);
}

class CodedError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let definition: PluginDefinition | undefined;
/** Set when the entry is a channel plugin (`{ channel: {...} }`). */
let channel: ChannelDefinition | undefined;
let channelContext: ChannelContext | undefined;
const sending = new Set<AbortController>();
const running = new Map<string, AbortController>();
const subscriptions: { filter: string; handler: (topic: string, payload: string) => void }[] = [];

const peer = new RpcPeer((text) => send(text), {
  request: (method, params) => handle(method, (params ?? {}) as Record<string, unknown>),
  notification(method, params) {
    const p = (params ?? {}) as Record<string, unknown>;
    if (method === 'cancel' && typeof p.id === 'string') running.get(p.id)?.abort();
    if (method === 'mqtt.message' && typeof p.topic === 'string') {
      for (const s of subscriptions) {
        if (topicMatches(s.filter, p.topic)) safely(() => s.handler(p.topic as string, String(p.payload ?? '')));
      }
    }
  },
  toRpcError,
}, { idPrefix: 'p' });

onText((text) => {
  try {
    peer.receive(text);
  } catch (error) {
    log.error(`bad message from host: ${(error as Error).message}`);
  }
});

const log: PluginLogger = {
  debug: (message, fields) => peer.notify('log', { level: 'debug', message, fields }),
  info: (message, fields) => peer.notify('log', { level: 'info', message, fields }),
  warn: (message, fields) => peer.notify('log', { level: 'warn', message, fields }),
  error: (message, fields) => peer.notify('log', { level: 'error', message, fields }),
};

/** A request to the host; its refusal becomes an Error whose `code` is the host's (FORBIDDEN, DEVICE_NOT_FOUND …). */
async function hostRequest(method: string, params: Record<string, unknown>): Promise<unknown> {
  try {
    return await peer.request(method, params).result;
  } catch (error) {
    if (error instanceof RemoteError) {
      const code = (error.data as { code?: unknown } | undefined)?.code;
      throw new CodedError(typeof code === 'string' ? code : 'PLUGIN_FAILED', error.message);
    }
    throw error;
  }
}

function devicesApi(call?: string): PluginDevicesApi {
  const ask = (method: string, params: Record<string, unknown>) => hostRequest(method, { ...params, ...(call ? { call } : {}) });
  return {
    list: () => ask('devices.list', {}) as ReturnType<PluginDevicesApi['list']>,
    get: (id) => ask('devices.get', { id }) as ReturnType<PluginDevicesApi['get']>,
    commandSchema: (id) => ask('devices.schema', { id }) as ReturnType<PluginDevicesApi['commandSchema']>,
    execute: (id, command) => ask('devices.execute', { id, command }),
  };
}

async function handle(method: string, p: Record<string, unknown>): Promise<unknown> {
  switch (method) {
    case 'initialize':
      return initialize(p);
    case 'call':
      return call(p);
    case 'ping':
      return 'pong';
    case 'shutdown':
      for (const controller of sending) controller.abort();
      await channel?.disconnect();
      await definition?.stop?.();
      return null;
    case 'channel.connect':
      if (!channel || !channelContext) throw new CodedError('NOT_FOUND', 'this plugin is not a channel');
      await channel.connect(channelContext);
      return null;
    case 'channel.send':
      return channelSend(p);
    case 'channel.disconnect':
      for (const controller of sending) controller.abort();
      await channel?.disconnect();
      return null;
    default:
      throw Object.assign(new Error(`unknown method ${method}`), { rpc: RPC.METHOD_NOT_FOUND });
  }
}

async function initialize(p: Record<string, unknown>): Promise<unknown> {
  const mod = (await import(pathToFileURL(boot.entry).href)) as { default?: unknown; plugin?: unknown };
  const exported = (mod.default ?? mod.plugin) as { channel?: ChannelDefinition } | undefined;
  if (p.kind === 'channel') return initializeChannel(exported, p);
  const candidate = exported as PluginDefinition | undefined;
  if (!candidate || typeof candidate !== 'object' || typeof candidate.tools !== 'object' || candidate.tools === null) {
    throw new Error(`${boot.entry} does not export a plugin definition ({ tools: {...} }) as default`);
  }
  definition = candidate;
  const ctx: PluginContext = {
    name: boot.name,
    config: (p.config ?? {}) as Record<string, unknown>,
    dataDir: String(p.dataDir ?? ''),
    log,
    devices: devicesApi(),
    mqtt: {
      publish: async (topic, payload, options) => {
        const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
        await hostRequest('mqtt.publish', { topic, payload: text, retain: options?.retain === true });
      },
      subscribe: async (filter, handler) => {
        await hostRequest('mqtt.subscribe', { filter });
        subscriptions.push({ filter, handler });
      },
    },
  };
  await definition.start?.(ctx);
  // cancel: a `cancel {id}` notification aborts that call's signal, so the host may say it asked.
  return { tools: Object.keys(definition.tools).filter((k) => typeof definition?.tools[k] === 'function'), cancel: true };
}

async function call(p: Record<string, unknown>): Promise<unknown> {
  const id = String(p.id);
  const tool = String(p.tool);
  const handler = definition?.tools[tool];
  if (typeof handler !== 'function') throw new CodedError('NOT_FOUND', `this plugin has no tool "${tool}"`);
  const controller = new AbortController();
  running.set(id, controller);
  const toolCall: ToolCall = {
    id,
    caller: (p.caller ?? {}) as ToolCall['caller'],
    ...(p.transaction === undefined ? {} : { transaction: p.transaction as string | number }),
    signal: controller.signal,
    devices: devicesApi(id),
  };
  try {
    const result = await handler(p.args, toolCall);
    const value = result === undefined ? null : result;
    // Size it here: an oversized answer would make the host kill this plugin instead of failing one call.
    const size = JSON.stringify(value)?.length ?? 4;
    if (size > boot.maxMessageBytes - 4096) {
      throw new CodedError('PAYLOAD_TOO_LARGE', `the result is ${size} bytes; the limit is ${boot.maxMessageBytes - 4096}`);
    }
    return value;
  } finally {
    running.delete(id);
  }
}

function initializeChannel(exported: { channel?: ChannelDefinition } | undefined, p: Record<string, unknown>): unknown {
  const candidate = exported?.channel;
  if (!candidate || typeof candidate.connect !== 'function' || typeof candidate.send !== 'function' || typeof candidate.disconnect !== 'function') {
    throw new Error(`${boot.entry} does not export a channel definition ({ channel: { connect, send, disconnect } }) as default`);
  }
  channel = candidate;
  const credentials = (p.credentials ?? {}) as Record<string, string>;
  channelContext = {
    name: boot.name,
    config: (p.config ?? {}) as Record<string, unknown>,
    credentials: Object.freeze({ ...credentials }),
    dataDir: String(p.dataDir ?? ''),
    log,
    receive: async (message) => (await hostRequest('channel.message', { ...message })) as ChannelAcceptance,
    state: (update) => peer.notify('channel.state', update),
  };
  return { tools: [], channel: true, cancel: true };
}

async function channelSend(p: Record<string, unknown>): Promise<null> {
  if (!channel) throw new CodedError('NOT_FOUND', 'this plugin is not a channel');
  const to = (p.to ?? {}) as { sender_id?: unknown };
  const message = (p.message ?? {}) as { text?: unknown; error?: { code: string; message: string } };
  if (typeof to.sender_id !== 'string' || typeof message.text !== 'string') throw new CodedError('PAYLOAD_INVALID', 'send needs to.sender_id and message.text');
  const controller = new AbortController();
  sending.add(controller);
  try {
    await channel.send({ sender_id: to.sender_id }, { text: message.text, ...(message.error ? { error: message.error } : {}) }, controller.signal);
    return null;
  } finally {
    sending.delete(controller);
  }
}

function toRpcError(error: unknown): RpcError {
  const e = error as { message?: unknown; code?: unknown; details?: unknown; rpc?: unknown; name?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(error);
  const code = typeof e?.code === 'string' ? e.code : undefined;
  return {
    code: typeof e?.rpc === 'number' ? e.rpc : RPC.TOOL_ERROR,
    message,
    data: {
      ...(code ? { code } : {}),
      ...(typeof e?.name === 'string' ? { name: e.name } : {}),
      ...(e?.details && typeof e.details === 'object' ? { details: e.details } : {}),
    },
  };
}

function safely(run: () => void): void {
  try {
    run();
  } catch (error) {
    log.error(`mqtt handler threw: ${(error as Error).message}`);
  }
}
