/**
 * Validation of every proposed command against the device's JSON Schema (ajv). The grammar only shapes
 * the model's output; ranges (minimum/maximum/multipleOf) are enforced here, for the fast path and the
 * model path alike, and a failure is explained in words ("brightness must be <= 100 (got 150)").
 */
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import { loadAjv } from '../runtime/operations/validator.js';
import type { JsonSchema } from './directory.js';

export type Validation = { ok: true } | { ok: false; reason: string };

export class CommandValidator {
  // strict: false — device schemas may carry keywords (e.g. unit hints) this validator does not know.
  // Made on the first check, so that a start does not load Ajv for it.
  #ajv: Ajv | undefined;
  readonly #cache = new Map<string, ValidateFunction>();

  #compile(schema: JsonSchema): ValidateFunction {
    const key = JSON.stringify(schema);
    let fn = this.#cache.get(key);
    if (!fn) {
      this.#ajv ??= new (loadAjv().Ajv)({ allErrors: true, strict: false, verbose: true });
      fn = this.#ajv.compile(schema);
      this.#cache.set(key, fn);
      if (this.#cache.size > 256) this.#cache.delete(this.#cache.keys().next().value as string);
    }
    return fn;
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
