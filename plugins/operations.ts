/**
 * The plugin host's operations, declared once for every transport: `plugin.call` runs one plugin tool as
 * the caller; `plugins.restart` restarts a plugin or a platform channel (admin only). Its permission is the topic path of the same request over MQTT,
 * `bridge/request/plugin/<plugin>/<tool>`, so an MQTT user needs exactly that publish ACL, and HTTP tokens
 * and chat senders need it in their permission lists. The caller's deadline and cancellation reach the
 * plugin: a call not yet sent is not sent; a sent one is cancelled where the runner can.
 */
import { type AnyOperation, defineOperation } from '../runtime/operations/operation.js';
import { PLUGIN_NAME_PATTERN, TOOL_NAME_PATTERN } from './config-schema.js';
import type { CallOptions } from './host.js';

/** The part of PluginHost the operations need. */
export interface PluginCaller {
  call(plugin: string, tool: string, args: unknown, options: CallOptions): Promise<unknown>;
  restart(kind: 'plugin' | 'channel', name: string, reason: string): Promise<Record<string, unknown>>;
}

/** Restarting and logging in again (a channel) takes a while; the restart answers once it runs again or failed. */
const RESTART_DEADLINE_MS = 60_000;

/** The longest a caller may ask for; each tool's own timeout (plugins.call_timeout_ms) is usually shorter. */
const PLUGIN_DEADLINE_MS = 600_000;

export function pluginOperations(host: PluginCaller): AnyOperation[] {
  return [
    defineOperation<{ plugin: string; tool: string; args: Record<string, unknown> }, unknown>({
      name: 'plugin.call',
      summary: "call one plugin tool with its arguments (checked against the tool's schema)",
      input: {
        type: 'object',
        required: ['plugin', 'tool'],
        additionalProperties: false,
        properties: {
          plugin: { type: 'string', pattern: PLUGIN_NAME_PATTERN },
          tool: { type: 'string', pattern: TOOL_NAME_PATTERN },
          args: { type: 'object', default: {} },
        },
      },
      permission: (input) => `bridge/request/plugin/${input.plugin}/${input.tool}`,
      // A tool may switch devices or publish: audited like any other world-changing request.
      changesWorld: true,
      deadlineMs: PLUGIN_DEADLINE_MS,
      handler: (input, ctx) =>
        host.call(input.plugin, input.tool, input.args, {
          caller: {
            id: `${ctx.principal.kind}:${ctx.principal.id}`,
            source: ctx.source,
            // What the plugin does to devices, it does as this caller.
            may: (permission) => ctx.principal.may(permission),
            act: (device, command) => ctx.invoke('device.set', { device, command }),
          },
          signal: ctx.signal,
          deadline: ctx.deadline,
        }),
    }),
    defineOperation<{ kind: 'plugin' | 'channel'; name: string }, unknown>({
      name: 'plugins.restart',
      summary: 'restart one plugin or platform chat channel now (no backoff); its calls in flight fail with PLUGIN_FAILED',
      input: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: {
          kind: { enum: ['plugin', 'channel'], default: 'plugin' },
          // A plugin's name or a channel's (channel names may start with a digit).
          name: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' },
        },
      },
      // Admin only by default: nobody but `#` holds this path unless it is granted.
      permission: () => 'bridge/request/plugins/restart',
      changesWorld: true,
      deadlineMs: RESTART_DEADLINE_MS,
      handler: (input, ctx) => host.restart(input.kind, input.name, `asked by ${ctx.principal.kind}:${ctx.principal.id}`),
    }),
  ];
}
