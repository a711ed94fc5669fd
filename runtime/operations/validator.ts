/**
 * The one validator factory: every JSON Schema the runtime checks (operation inputs, config, device
 * commands, manifests) is compiled here, once per schema object, on one Ajv instance per profile. Errors
 * come back as one readable line for the caller.
 *
 * Profiles differ only where the data needs it: config lists every problem and applies defaults; check
 * leaves the value as it is; device commands compare multipleOf with a float tolerance; requests stop at
 * the first problem. Schemas written by plugin authors are compiled by the plugin host on an instance of
 * their own per plugin (their $ids must not collide with ours or each other's), and the agent checks model
 * proposals against device schemas by content (agent/validate.ts), since each snapshot is a fresh copy.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { ClawboxError, type ErrorCode } from '../errors.js';

export type JsonSchema = Readonly<Record<string, unknown>>;

export type ValidatorProfile = 'request' | 'config' | 'check' | 'command';

const OPTIONS: Record<ValidatorProfile, ConstructorParameters<typeof Ajv>[0]> = {
  request: { allErrors: false, strict: true, allowUnionTypes: true, useDefaults: true, coerceTypes: false },
  // verbose: errors carry the offending value and schema, so config messages can name both.
  config: { allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true, useDefaults: true, verbose: true },
  // Validates without changing the value (no defaults), e.g. an entry about to be written to the config.
  check: { allErrors: true, strict: true, allowUnionTypes: true },
  command: { allErrors: false, strict: true, multipleOfPrecision: 6 },
};

const instances = new Map<ValidatorProfile, Ajv>();
const compiled = new Map<ValidatorProfile, WeakMap<JsonSchema, ValidateFunction>>();

export function validatorFor<T>(schema: JsonSchema, profile: ValidatorProfile = 'request'): ValidateFunction<T> {
  let cache = compiled.get(profile);
  if (!cache) {
    cache = new WeakMap();
    compiled.set(profile, cache);
  }
  let validate = cache.get(schema);
  if (!validate) {
    let ajv = instances.get(profile);
    if (!ajv) {
      ajv = new Ajv(OPTIONS[profile]);
      instances.set(profile, ajv);
    }
    validate = ajv.compile(schema as Record<string, unknown>);
    cache.set(schema, validate);
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
