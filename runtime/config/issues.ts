/**
 * Turns ajv errors into one line per problem: the config path in dot notation and a message that names
 * the allowed keys or values, so a user can fix the file without reading the schema.
 */
import type { ErrorObject } from 'ajv';

export interface ConfigIssue {
  /** Dot path in the config (`broker.port`), or the environment variable / file it came from. */
  path: string;
  message: string;
}

function dotPath(instancePath: string): string {
  if (instancePath === '') return '(top level)';
  return instancePath
    .slice(1)
    .split('/')
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((part) => (/^\d+$/.test(part) ? `[${part}]` : `.${part}`))
    .join('')
    .replace(/^\./, '');
}

function describe(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

function schemaKeys(schema: unknown): string[] {
  if (typeof schema !== 'object' || schema === null) return [];
  const props = (schema as { properties?: Record<string, unknown> }).properties;
  return props ? Object.keys(props) : [];
}

export function issuesFromAjv(errors: readonly ErrorObject[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const seen = new Set<string>();
  for (const error of errors) {
    let path = dotPath(error.instancePath);
    let message: string;
    switch (error.keyword) {
      case 'additionalProperties': {
        const key = String((error.params as { additionalProperty: string }).additionalProperty);
        path = path === '(top level)' ? key : `${path}.${key}`;
        const allowed = schemaKeys(error.parentSchema);
        message = `unknown key${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}`;
        break;
      }
      case 'enum': {
        const allowed = (error.params as { allowedValues: unknown[] }).allowedValues;
        message = `must be one of ${allowed.map(describe).join(', ')} (got ${describe(error.data)})`;
        break;
      }
      case 'type':
        message = `must be ${(error.params as { type: string }).type} (got ${describe(error.data)})`;
        break;
      case 'required':
        path = path === '(top level)' ? '' : path;
        path = `${path}${path ? '.' : ''}${(error.params as { missingProperty: string }).missingProperty}`;
        message = 'is required';
        break;
      default:
        message = `${error.message ?? 'is invalid'} (got ${describe(error.data)})`;
    }
    const line = `${path}: ${message}`;
    if (seen.has(line)) continue;
    seen.add(line);
    issues.push({ path, message });
  }
  return issues;
}

export function formatIssues(issues: readonly ConfigIssue[]): string {
  return issues.map((issue) => `  ${issue.path}: ${issue.message}`).join('\n');
}
