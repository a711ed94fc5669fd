/**
 * The model registry: the `models:` config entries with their paths resolved, and verification of a
 * file before it is loaded — exists, is a GGUF, is complete, has an architecture llama.cpp knows, and
 * matches its sha256. Each failure is a ClawboxError with its own code (MODEL_FILE_MISSING,
 * MODEL_NOT_GGUF, MODEL_TRUNCATED, MODEL_UNSUPPORTED, MODEL_HASH_MISMATCH).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { ClawboxError, type ErrorCode, toClawboxError } from '../runtime/errors.js';
import { type ModelConfigEntry, withModelDefaults } from './config-schema.js';
import { loadNodeLlamaCpp } from './engine/llama-module.js';
import type { GgufSummary } from './gguf/reader.js';

export interface ModelRecord {
  entry: ModelConfigEntry;
  /** Absolute path (relative config paths are resolved against the config file's folder). */
  file: string;
}

export interface VerifiedModel extends ModelRecord {
  summary: GgufSummary;
  /** Computed sha256 (null when hashing was skipped). */
  sha256: string | null;
}

export interface VerifyReport {
  name: string;
  file: string;
  ok: boolean;
  code?: ErrorCode;
  message?: string;
  summary?: GgufSummary;
  sha256?: string | null;
}

/** Remembers file hashes by (path, size, mtime) so a restart does not re-hash gigabytes. */
export interface HashCache {
  get(key: string): string | undefined | Promise<string | undefined>;
  set(key: string, sha256: string): void | Promise<void>;
}

let supportedArchitectures: Promise<ReadonlySet<string>> | undefined;

/**
 * Every architecture the llama.cpp build knows. node-llama-cpp declares GgufArchitectureType as a const
 * enum but ships it as an object. Imported on the first verification, not at start-up (llama-module.ts).
 */
function architectures(): Promise<ReadonlySet<string>> {
  supportedArchitectures ??= loadNodeLlamaCpp().then(
    (llamaCpp) => new Set(Object.values((llamaCpp as unknown as { GgufArchitectureType: Record<string, string> }).GgufArchitectureType)),
    (error: unknown) => {
      supportedArchitectures = undefined;
      throw error;
    },
  );
  return supportedArchitectures;
}

export async function isSupportedArchitecture(architecture: string | null): Promise<boolean> {
  return architecture !== null && (await architectures()).has(architecture);
}

/** sha256 of a file, streamed; `onProgress` gets bytes hashed so far; the signal stops it between chunks. */
export async function sha256File(file: string, onProgress?: (bytes: number) => void, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 4 << 20, ...(signal ? { signal } : {}) })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
    onProgress?.(bytes);
  }
  return hash.digest('hex');
}

export interface VerifyOptions {
  /** Compute the sha256 even when the entry has none (for `models add` / reporting). */
  hash?: boolean | 'if-expected';
  hashCache?: HashCache;
  onHashProgress?: (bytes: number, total: number) => void;
  /** Stops hashing (a caller that went away); the rejection is the signal's reason. */
  signal?: AbortSignal;
}

/** Verifies one file; throws the specific ClawboxError on the first problem found. */
export async function verifyModelFile(file: string, expectedSha256?: string, options: VerifyOptions = {}): Promise<{ summary: GgufSummary; sha256: string | null }> {
  // The GGUF reader loads with the first model file checked: a box without models never needs it.
  const { inspectGguf } = await import('./gguf/reader.js');
  const summary = await inspectGguf(file);
  if (!(await isSupportedArchitecture(summary.architecture))) {
    throw new ClawboxError(
      'MODEL_UNSUPPORTED',
      `${file}: architecture "${summary.architecture ?? '(none)'}" is not supported by this llama.cpp build`,
      { path: file, architecture: summary.architecture },
    );
  }
  const mode = options.hash ?? 'if-expected';
  if (mode === false || (mode === 'if-expected' && !expectedSha256)) return { summary, sha256: null };
  const info = await stat(file);
  const key = `${path.resolve(file)}:${info.size}:${info.mtimeMs}`;
  let sha256 = await options.hashCache?.get(key);
  if (!sha256) {
    sha256 = await sha256File(file, (bytes) => options.onHashProgress?.(bytes, info.size), options.signal);
    await options.hashCache?.set(key, sha256);
  }
  if (expectedSha256 && sha256 !== expectedSha256.toLowerCase()) {
    throw new ClawboxError('MODEL_HASH_MISMATCH', `${file}: sha256 is ${sha256}, expected ${expectedSha256}`, {
      path: file,
      sha256,
      expected: expectedSha256,
    });
  }
  return { summary, sha256 };
}

export class ModelRegistry {
  readonly #records: ModelRecord[];

  /**
   * @param entries the validated `models:` config section
   * @param baseDir folder that relative model paths are relative to (the config file's folder)
   */
  constructor(entries: readonly ModelConfigEntry[], baseDir: string = process.cwd()) {
    this.#records = entries.map((raw) => {
      const entry = withModelDefaults(raw);
      return { entry, file: path.resolve(baseDir, entry.path) };
    });
  }

  list(): ModelRecord[] {
    return [...this.#records];
  }

  get(name: string): ModelRecord | undefined {
    return this.#records.find((r) => r.entry.name === name);
  }

  /** The first entry with this role. */
  byRole(role: ModelConfigEntry['role']): ModelRecord | undefined {
    return this.#records.find((r) => r.entry.role === role);
  }

  /** Config problems the JSON Schema cannot state: duplicate names, several models per role. */
  problems(): string[] {
    const out: string[] = [];
    const names = new Set<string>();
    const roles = new Map<string, string>();
    for (const { entry } of this.#records) {
      if (names.has(entry.name)) out.push(`models: duplicate name "${entry.name}"`);
      names.add(entry.name);
      if (entry.role === 'standby') continue;
      const other = roles.get(entry.role);
      if (other) out.push(`models: "${entry.name}" and "${other}" both have role ${entry.role}; "${other}" is used`);
      else roles.set(entry.role, entry.name);
    }
    return out;
  }

  async verify(record: ModelRecord, options: VerifyOptions = {}): Promise<VerifiedModel> {
    const { summary, sha256 } = await verifyModelFile(record.file, record.entry.sha256, options);
    return { ...record, summary, sha256 };
  }

  /** Verifies every entry (or the named ones) and reports instead of throwing. */
  async report(names: readonly string[] = [], options: VerifyOptions = { hash: true }): Promise<VerifyReport[]> {
    const unknown = names.filter((n) => !this.get(n));
    if (unknown.length > 0) throw new ClawboxError('NOT_FOUND', `no model named ${unknown.map((n) => `"${n}"`).join(', ')} in the config`);
    const records = names.length > 0 ? names.map((n) => this.get(n)!) : this.#records;
    const out: VerifyReport[] = [];
    for (const record of records) {
      try {
        const verified = await this.verify(record, options);
        out.push({ name: record.entry.name, file: record.file, ok: true, summary: verified.summary, sha256: verified.sha256 });
      } catch (error) {
        const typed = toClawboxError(error);
        out.push({ name: record.entry.name, file: record.file, ok: false, code: typed.code, message: typed.message });
      }
    }
    return out;
  }
}

/** Builds the config entry `clawbox models add` writes: sha256 and header figures from the file. */
export async function describeModelFile(
  file: string,
  options: { name?: string; role?: ModelConfigEntry['role']; onHashProgress?: (bytes: number, total: number) => void } = {},
): Promise<{ entry: ModelConfigEntry; summary: GgufSummary }> {
  const absolute = path.resolve(file);
  const { summary, sha256 } = await verifyModelFile(absolute, undefined, { hash: true, ...(options.onHashProgress ? { onHashProgress: options.onHashProgress } : {}) });
  const name = options.name ?? defaultModelName(absolute);
  const contextSize = Math.min(summary.context_length ?? 2048, 4096);
  const entry = withModelDefaults({ name, path: absolute, sha256: sha256!, role: options.role ?? 'main', context_size: Math.max(128, contextSize) });
  return { entry, summary };
}

export function defaultModelName(file: string): string {
  const base = path.basename(file).replace(/\.gguf$/i, '');
  const cleaned = base.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64);
  return cleaned || 'model';
}

/** The config name for a pulled model: the file's name, or `<repo>-<quant>` for hf:owner/repo:quant. */
export function modelNameFromUri(uri: string): string {
  const byQuant = /^hf:[^/]+\/([^/:]+)(?::([^/]+))?$/i.exec(uri);
  if (byQuant) return defaultModelName(`${byQuant[1]!.replace(/-gguf$/i, '')}${byQuant[2] ? `-${byQuant[2].toUpperCase()}` : ''}`);
  const last = uri.replace(/[?#].*$/, '').split('/').filter(Boolean).pop() ?? 'model';
  return defaultModelName(last);
}
