/**
 * Environment overrides: `CLAWBOX_<SECTION>_<KEY>=value` sets `<section>.<key>`, walking the schema so
 * that snake_case keys with underscores resolve (CLAWBOX_BROKER_BASE_TOPIC -> broker.base_topic).
 * Values are parsed by the type the schema expects; ajv then validates them like any file value.
 */
import type { ConfigIssue } from './issues.js';
import { parseYamlSafely, YamlRejected } from './yaml.js';

/** Environment variables with the prefix that are not config keys. */
export const RESERVED_ENV = new Set(['CLAWBOX_CONFIG', 'CLAWBOX_MODE']);

interface SchemaNode {
  type?: string | readonly string[];
  enum?: readonly unknown[];
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  anyOf?: readonly unknown[];
  description?: string;
}

export interface EnvOverride {
  variable: string;
  path: string[];
  value: unknown;
}

function resolvePath(tokens: string[], node: SchemaNode): { path: string[]; leaf: SchemaNode } | null {
  if (tokens.length === 0) return { path: [], leaf: node };
  if (node.properties) {
    // Longest key first so `base_topic` wins over a hypothetical `base`.
    for (let take = tokens.length; take >= 1; take--) {
      const key = tokens.slice(0, take).join('_');
      // Own keys only: CLAWBOX_CONSTRUCTOR must not find Object.prototype.constructor.
      const child = Object.hasOwn(node.properties, key) ? node.properties[key] : undefined;
      if (!child) continue;
      const rest = resolvePath(tokens.slice(take), child);
      if (rest) return { path: [key, ...rest.path], leaf: rest.leaf };
    }
  }
  if (node.additionalProperties && typeof node.additionalProperties === 'object') {
    return { path: [tokens.join('_')], leaf: node.additionalProperties };
  }
  return null;
}

/** Plain decimal only: Number() would also take 0x10, 0b1 and 0o7, and an empty string as 0. */
const DECIMAL = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;

/**
 * The member of an enum that the text names: an enum may mix strings with booleans (discovery.enabled is
 * "auto", true or false), and an environment value is always text. Anything else stays text for ajv to
 * report with the enum's members.
 */
function enumMember(raw: string, members: readonly unknown[]): unknown {
  const named = members.find((member) => String(member) === raw);
  if (named !== undefined) return named;
  const flag = booleanNamed(raw);
  return flag !== undefined && members.includes(flag) ? flag : raw;
}

/** The boolean a word names (true, 1, yes, on; false, 0, no, off; any case), or undefined. */
function booleanNamed(raw: string): boolean | undefined {
  if (/^(true|1|yes|on)$/i.test(raw)) return true;
  if (/^(false|0|no|off)$/i.test(raw)) return false;
  return undefined;
}

/** The value the schema expects, or a string for ajv to report; `problem` when it cannot be parsed safely. */
function parseValue(raw: string, leaf: SchemaNode): { value: unknown } | { problem: string } {
  const type = Array.isArray(leaf.type) ? leaf.type[0] : leaf.type;
  if (leaf.enum) return { value: enumMember(raw, leaf.enum) };
  if (type === 'string') return { value: raw };
  if (type === 'integer' || type === 'number') {
    const n = Number(raw.trim());
    return { value: DECIMAL.test(raw.trim()) && Number.isFinite(n) ? n : raw };
  }
  if (type === 'boolean') return { value: booleanNamed(raw) ?? raw };
  // Arrays and objects: YAML flow syntax (JSON works too), with the same limits as a config file.
  try {
    return { value: parseYamlSafely(raw).value };
  } catch (error) {
    if (!(error instanceof YamlRejected)) throw error;
    return { problem: `cannot be parsed as YAML or JSON: ${error.problems[0]}` };
  }
}

export function collectEnvOverrides(
  env: NodeJS.ProcessEnv,
  schema: SchemaNode,
): { overrides: EnvOverride[]; issues: ConfigIssue[] } {
  const overrides: EnvOverride[] = [];
  const issues: ConfigIssue[] = [];
  for (const [variable, raw] of Object.entries(env)) {
    if (!variable.startsWith('CLAWBOX_') || RESERVED_ENV.has(variable) || raw === undefined) continue;
    const tokens = variable.slice('CLAWBOX_'.length).toLowerCase().split('_').filter(Boolean);
    const resolved = resolvePath(tokens, schema);
    if (!resolved || resolved.path.length === 0) {
      issues.push({ path: variable, message: 'environment variable does not name a config key' });
      continue;
    }
    const parsed = parseValue(raw, resolved.leaf);
    if ('problem' in parsed) issues.push({ path: variable, message: parsed.problem });
    else overrides.push({ variable, path: resolved.path, value: parsed.value });
  }
  return { overrides, issues };
}

export function applyOverride(target: Record<string, unknown>, override: EnvOverride): void {
  let node = target;
  for (const key of override.path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[override.path.at(-1)!] = override.value;
}
