/**
 * The one validator factory: one Ajv instance for every operation's input and output schema, compiled
 * once per schema object. Errors come back as one readable line for the caller.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { ClawboxError, type ErrorCode } from '../errors.js';

export type JsonSchema = Readonly<Record<string, unknown>>;

const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true, useDefaults: true, coerceTypes: false });
const compiled = new WeakMap<JsonSchema, ValidateFunction>();

export function validatorFor<T>(schema: JsonSchema): ValidateFunction<T> {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv.compile(schema as Record<string, unknown>);
    compiled.set(schema, validate);
  }
  return validate as ValidateFunction<T>;
}

/** Validates in place (defaults applied) or throws `code` naming the first problem. */
export function assertValid<T>(schema: JsonSchema, value: unknown, code: ErrorCode = 'PAYLOAD_INVALID', what = 'request'): T {
  const validate = validatorFor<T>(schema);
  if (!validate(value)) throw new ClawboxError(code, `${what} ${describeError(validate.errors?.[0])}`);
  return value;
}

function describeError(error: ErrorObject | undefined): string {
  if (!error) return 'is not valid';
  const where = error.instancePath ? `field ${error.instancePath.slice(1).replaceAll('/', '.')}` : 'body';
  if (error.keyword === 'additionalProperties') {
    return `has an unknown field "${String((error.params as { additionalProperty?: unknown }).additionalProperty).slice(0, 64)}"`;
  }
  if (error.keyword === 'required') {
    return `needs field "${String((error.params as { missingProperty?: unknown }).missingProperty)}"`;
  }
  return `${where} ${error.message ?? 'is not valid'}`;
}
