/**
 * Who may do what: a caller's tool patterns ("plugin/tool", "plugin/*", "*") and device lists, a plugin's
 * manifest permissions (devices, MQTT topic filters). Pure functions, so the rules are easy to test.
 */

/** What the caller of a tool may do. Absent lists mean "no limit of the caller's own". */
export interface CallerPermissions {
  /** Who asked, for logs and audit (e.g. "agent", "mqtt"). */
  readonly id?: string;
  /** Device command source recorded by the device layer (e.g. "agent"); default "plugin". */
  readonly source?: string;
  /** Tools this caller may call: "plugin/tool", "plugin/*" or "*". */
  readonly tools?: readonly string[];
  /** Devices this caller may touch through plugins (ids, or "*"). */
  readonly devices?: readonly string[];
  /**
   * The caller's own permission check (its principal, from the front door), kept on the host side: a
   * plugin reaches no device its caller could not reach directly.
   */
  readonly may?: (permission: string) => boolean;
  /** Runs a device command as the caller (front door device.set: permission, safety of the caller, audit). */
  readonly act?: (device: string, command: unknown) => Promise<unknown>;
}

export function toolAllowed(patterns: readonly string[] | undefined, plugin: string, tool: string): boolean {
  if (patterns === undefined) return true;
  return patterns.some((p) => p === '*' || p === `${plugin}/*` || p === `${plugin}/${tool}`);
}

export function deviceAllowed(pluginGrant: boolean | readonly string[], caller: readonly string[] | undefined, id: string): boolean {
  const byPlugin = pluginGrant === true || (Array.isArray(pluginGrant) && (pluginGrant.includes(id) || pluginGrant.includes('*')));
  const byCaller = caller === undefined || caller.includes('*') || caller.includes(id);
  return byPlugin && byCaller;
}


/** True when every topic the `requested` filter can match is also matched by the `allowed` filter. */
export function filterCovers(allowed: string, requested: string): boolean {
  const a = allowed.split('/');
  const r = requested.split('/');
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '#') return true;
    if (i >= r.length) return false;
    if (r[i] === '#') return false;
    if (a[i] === '+') continue;
    if (a[i] !== r[i]) return false;
  }
  return a.length === r.length;
}

export function isValidTopic(topic: string): boolean {
  return topic.length > 0 && topic.length <= 256 && !topic.includes('+') && !topic.includes('#') && !topic.includes('\u0000');
}

export function isValidFilter(filter: string): boolean {
  if (filter.length === 0 || filter.length > 256 || filter.includes('\u0000')) return false;
  const parts = filter.split('/');
  return parts.every((p, i) => (p.includes('#') ? p === '#' && i === parts.length - 1 : !p.includes('+') || p === '+'));
}
