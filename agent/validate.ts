/**
 * Validation of every proposed command against the device's JSON Schema (ajv). The grammar only shapes
 * the model's output; ranges (minimum/maximum/multipleOf) are enforced here, for the fast path and the
 * model path alike, and a failure is explained in words ("brightness must be <= 100 (got 150)").
 */
import type { ErrorObject, ValidateFunction } from 'ajv';
import { validatorByContent } from '../runtime/operations/validator.js';
import type { JsonSchema } from './directory.js';

export type Validation = { ok: true } | { ok: false; reason: string };

export class CommandValidator {
  // The factory's 'proposal' profile (every problem, the offending value, unknown keywords allowed), found
  // by content since each snapshot is a fresh copy: the schemas of the devices a start knows are
  // precompiled by the build (app/agent-wiring.ts announces them), so a first request loads no Ajv.
  #compile(schema: JsonSchema): ValidateFunction {
    return validatorByContent(schema, 'proposal');
  }

  validate(schema: JsonSchema, command: unknown): Validation {
    let fn: ValidateFunction;
    try {
      fn = this.#compile(schema);
    } catch (error) {
      return { ok: false, reason: `the device schema cannot be used (${(error as Error).message})` };
    }
    if (fn(command)) return { ok: true };
    return { ok: false, reason: explain(fn.errors ?? []) };
  }
}

function describe(error: ErrorObject): string {
  const where = error.instancePath ? error.instancePath.slice(1).replace(/\//g, '.') : 'the command';
  const got = error.data === undefined ? '' : ` (got ${JSON.stringify(error.data)})`;
  switch (error.keyword) {
    case 'additionalProperties':
      return `${where === 'the command' ? 'the device' : where} has no property "${(error.params as { additionalProperty: string }).additionalProperty}"`;
    case 'enum':
      return `${where} must be one of ${(error.params as { allowedValues: unknown[] }).allowedValues.map(String).join(', ')}${got}`;
    case 'minProperties':
      return 'the command is empty';
    default:
      return `${where} ${error.message ?? 'is invalid'}${got}`;
  }
}

/** The first few distinct problems, most specific first (anyOf/oneOf wrappers last). */
export function explain(errors: readonly ErrorObject[]): string {
  const specific = errors.filter((e) => !['anyOf', 'oneOf', 'if'].includes(e.keyword));
  const chosen = (specific.length > 0 ? specific : errors).map(describe);
  return [...new Set(chosen)].slice(0, 3).join('; ') || 'the command is invalid';
}
