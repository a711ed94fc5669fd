/**
 * The one catalog of typed errors. Every error that crosses a boundary (MQTT reply topic, HTTP response,
 * CLI exit, log line) is a ClawboxError with a stable code from this table, so clients can branch on the
 * code and operators can grep for it. Add a code here rather than throwing a bare Error.
 */

export interface ErrorSpec {
  /** What the code means, for docs and `clawbox --help`. */
  readonly summary: string;
  /** HTTP status used when this error answers an HTTP request. */
  readonly http: number;
  /** Process exit status when this error stops the CLI (sysexits.h where one fits). */
  readonly exit: number;
}

export const ERROR_CATALOG = {
  USAGE: { summary: 'bad command-line arguments', http: 400, exit: 64 },
  CONFIG_INVALID: { summary: 'the configuration does not match the schema', http: 500, exit: 78 },
  CONFIG_UNREADABLE: { summary: 'the configuration file cannot be read or parsed', http: 500, exit: 78 },
  PORT_IN_USE: { summary: 'a listener could not bind its address', http: 500, exit: 69 },
  LISTEN_FAILED: { summary: 'a listener failed to start', http: 500, exit: 69 },
  TLS_INVALID: { summary: 'the TLS certificate or key cannot be loaded', http: 500, exit: 78 },
  STATE_UNWRITABLE: { summary: 'the state directory cannot be written', http: 500, exit: 73 },
  FILE_UNWRITABLE: { summary: 'a file or folder the command was asked to write cannot be written', http: 500, exit: 73 },
  STATE_CORRUPT: { summary: 'a state file was corrupt and was moved aside', http: 500, exit: 1 },
  UNAUTHORIZED: { summary: 'missing or wrong credentials', http: 401, exit: 1 },
  FORBIDDEN: { summary: 'the caller may not do this', http: 403, exit: 1 },
  NOT_FOUND: { summary: 'no such resource', http: 404, exit: 1 },
  GONE: { summary: 'the resource existed once and is gone for good (e.g. the first-run setup after it was done)', http: 410, exit: 1 },
  METHOD_NOT_ALLOWED: { summary: 'the resource does not answer this HTTP method', http: 405, exit: 1 },
  PAYLOAD_INVALID: { summary: 'the payload is not valid JSON or not the expected shape', http: 400, exit: 1 },
  TOPIC_INVALID: { summary: 'the MQTT topic or topic filter is not valid', http: 400, exit: 1 },
  PAYLOAD_TOO_LARGE: { summary: 'the payload exceeds the configured limit', http: 413, exit: 1 },
  COMMAND_INVALID: { summary: 'the command does not match the device schema', http: 400, exit: 1 },
  PROPERTY_UNKNOWN: { summary: 'the command names a property the device does not have', http: 400, exit: 1 },
  PROPERTY_READ_ONLY: { summary: 'the command sets a property that can only be read', http: 400, exit: 1 },
  VALUE_OUT_OF_RANGE: { summary: 'a command value is outside its allowed range or set', http: 400, exit: 1 },
  VALUE_WRONG_TYPE: { summary: 'a command value has the wrong type', http: 400, exit: 1 },
  REQUEST_UNKNOWN: { summary: 'no such bridge request', http: 404, exit: 1 },
  DEVICE_NOT_FOUND: { summary: 'no device with that id', http: 404, exit: 1 },
  DEVICE_EXISTS: { summary: 'a device with that id already exists', http: 409, exit: 1 },
  DEVICE_UNAVAILABLE: { summary: 'the device is offline', http: 503, exit: 1 },
  DEVICE_TIMEOUT: { summary: 'the device did not answer in time', http: 504, exit: 1 },
  DEVICE_ERROR: { summary: 'the device answered with an error', http: 502, exit: 1 },
  LIMIT_REACHED: { summary: 'a bounded collection is full (devices, sessions, confirmations, pending requests)', http: 429, exit: 1 },
  CONFIRMATION_INVALID: { summary: 'no pending confirmation with that id for this caller (expired, used or never asked)', http: 404, exit: 1 },
  CONTENT_BLOCKED: { summary: 'the message was refused by the content-safety policy', http: 422, exit: 1 },
  BUSY: { summary: 'the request cannot meet its deadline now; retry later', http: 503, exit: 1 },
  DEADLINE_EXCEEDED: { summary: 'the deadline passed before the work finished', http: 504, exit: 1 },
  MODEL_NOT_LOADED: { summary: 'no model is loaded', http: 503, exit: 1 },
  MODEL_FILE_MISSING: { summary: 'the model file does not exist', http: 500, exit: 1 },
  MODEL_HASH_MISMATCH: { summary: 'the model file does not match its sha256', http: 500, exit: 1 },
  MODEL_NOT_GGUF: { summary: 'the file is not a GGUF model', http: 500, exit: 1 },
  MODEL_TRUNCATED: { summary: 'the model file is truncated', http: 500, exit: 1 },
  MODEL_UNSUPPORTED: { summary: 'the model architecture is not supported', http: 500, exit: 1 },
  MODEL_OUT_OF_MEMORY: { summary: 'not enough memory to load the model', http: 500, exit: 1 },
  MODEL_BACKEND_UNAVAILABLE: { summary: 'no llama.cpp compute backend could be initialised', http: 500, exit: 1 },
  MODEL_OUTPUT_INVALID: { summary: 'the model proposed something that does not validate', http: 502, exit: 1 },
  MODEL_DOWNLOAD_FAILED: { summary: 'a model download could not be resolved or completed (it resumes when run again)', http: 502, exit: 69 },
  NO_SPACE: { summary: 'not enough free disk space for the file and the reserve kept free', http: 507, exit: 73 },
  PLUGIN_FAILED: { summary: 'a plugin call failed', http: 502, exit: 1 },
  PLUGIN_INVALID: { summary: 'a plugin folder or manifest is invalid or unsafe, so it was not loaded', http: 500, exit: 1 },
  REDIS_UNREACHABLE: { summary: 'cluster mode: the shared Redis cannot be reached or refused the credentials', http: 503, exit: 69 },
  DEVICE_NOT_OWNED: { summary: 'cluster mode: no replica holds this device\'s lease right now', http: 503, exit: 1 },
  BRAIN_UNAVAILABLE: { summary: 'hybrid mode: the remote brain cannot be reached, is failing, or its circuit breaker is open', http: 503, exit: 69 },
  FIPS_REQUIRED: { summary: 'brain.require_fips is set but Node does not run with the OpenSSL FIPS provider', http: 500, exit: 78 },
  LOCAL_ONLY: { summary: 'the request involves local_only devices or data and cannot be answered on this box now', http: 503, exit: 1 },
  DATA_POLICY_REFUSED: { summary: 'the data policy keeps this data on the box (data region, or the person opted out of sharing)', http: 403, exit: 1 },
  UPDATE_BUNDLE_INVALID: { summary: 'the file is not a valid clawbox update bundle (layout, manifest, or a payload that does not match its checksum)', http: 400, exit: 1 },
  UPDATE_SIGNATURE_INVALID: { summary: 'the update bundle is not signed by a key this box trusts', http: 400, exit: 1 },
  UPDATE_ARCH_MISMATCH: { summary: 'the update bundle is built for another CPU architecture', http: 409, exit: 1 },
  UPDATE_VERSION_REFUSED: { summary: 'the update bundle is not newer than the running version (a downgrade needs --allow-downgrade)', http: 409, exit: 1 },
  UPDATE_UNAVAILABLE: { summary: 'this system cannot install updates now (not an A/B clawbox OS image, or another update is running)', http: 503, exit: 69 },
  INTERNAL: { summary: 'an unexpected internal error', http: 500, exit: 1 },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

export class ClawboxError extends Error {
  override readonly name = 'ClawboxError';
  readonly code: ErrorCode;
  /** Extra machine-readable fields sent with the error (e.g. `retry_after_ms`, `path`). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.details = details;
  }

  get spec(): ErrorSpec {
    return ERROR_CATALOG[this.code];
  }

  /** The wire shape used on MQTT error topics and HTTP error bodies. */
  toJSON(): { code: ErrorCode; message: string } & Record<string, unknown> {
    return { ...this.details, code: this.code, message: this.message };
  }
}

export function isClawboxError(error: unknown, code?: ErrorCode): error is ClawboxError {
  return error instanceof ClawboxError && (code === undefined || error.code === code);
}

/**
 * The error as a client may see it: typed errors as they are; an unexpected one (INTERNAL) with a fixed
 * message, because its own text can carry file paths, addresses or a library's internals. Whoever answers
 * logs the original (with `trace`, when given, which the client's message then names). The CLI keeps the
 * raw message: it runs on the box, for its operator.
 */
export function toClientError(error: unknown, trace?: string): ClawboxError {
  const typed = toClawboxError(error);
  if (typed.code !== 'INTERNAL' || forClients.has(typed)) return typed;
  const where = trace ? ` (trace ${trace})` : '';
  const safe = new ClawboxError('INTERNAL', `an unexpected internal error${where}; the box's log has the details`, trace ? { trace } : {}, { cause: error });
  forClients.add(safe);
  return safe;
}

/** INTERNAL errors toClientError made: a second pass keeps them (and the trace they name). */
const forClients = new WeakSet<ClawboxError>();

/** Wraps anything thrown into a ClawboxError, keeping typed errors as they are. */
export function toClawboxError(error: unknown): ClawboxError {
  if (error instanceof ClawboxError) return error;
  const message = error instanceof Error ? error.message : String(error);
  // node:util parseArgs rejects unknown or malformed options with these codes.
  if ((error as { code?: unknown })?.code?.toString().startsWith('ERR_PARSE_ARGS')) return new ClawboxError('USAGE', message);
  return new ClawboxError('INTERNAL', message, {}, { cause: error });
}
