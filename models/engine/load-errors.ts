/**
 * Maps what node-llama-cpp / llama.cpp throw while loading into the catalog's model codes, so the log and
 * the status page say "not enough memory" or "unsupported architecture" instead of a native message.
 */
import { ClawboxError, type ErrorCode } from '../../runtime/errors.js';
import { message } from './backend.js';
import { loadedNodeLlamaCpp } from './llama-module.js';

export function mapLoadError(error: unknown, file: string): ClawboxError {
  if (error instanceof ClawboxError) return error;
  const text = message(error);
  let code: ErrorCode = 'MODEL_UNSUPPORTED';
  // node-llama-cpp is imported lazily; ModelEngine.load imports it before anything can throw this.
  const InsufficientMemoryError = loadedNodeLlamaCpp()?.InsufficientMemoryError;
  if ((InsufficientMemoryError !== undefined && error instanceof InsufficientMemoryError) || /insufficient memory|out of memory|failed to allocate|too large for the available/i.test(text)) {
    code = 'MODEL_OUT_OF_MEMORY';
  } else if (/ENOENT|no such file/i.test(text)) {
    code = 'MODEL_FILE_MISSING';
  } else if (/unknown (model )?architecture/i.test(text)) {
    code = 'MODEL_UNSUPPORTED';
  }
  return new ClawboxError(code, `${file}: ${text}`, { path: file }, { cause: error });
}
