/**
 * Compute backend selection. `gpu: auto` lets node-llama-cpp pick Metal / CUDA / Vulkan / CPU from its
 * prebuilt binaries (never building from source at run time); a forced backend is tried as asked. If a GPU
 * backend fails to initialise, clawbox logs one warning and falls back to CPU — never a crash.
 * The factory is injectable so the fallback logic is tested without a GPU.
 */
import { readdirSync } from 'node:fs';
import type { Llama, LlamaLogLevel } from 'node-llama-cpp';
import type { Logger } from '../../runtime/logging.js';
import { ClawboxError } from '../../runtime/errors.js';
import type { GpuBackendSetting } from '../config-schema.js';
import { loadNodeLlamaCpp } from './llama-module.js';

export type LlamaGpuRequest = 'auto' | 'metal' | 'cuda' | 'vulkan' | false;

/** Creates a Llama instance for one GPU request; the default calls getLlama with build: 'never'. */
export type LlamaFactory = (gpu: LlamaGpuRequest, logger: Logger) => Promise<Llama>;

export interface BackendSelection {
  llama: Llama;
  requested: GpuBackendSetting;
  /** What is actually in use: cpu, metal, cuda or vulkan. */
  backend: string;
  /** Set when a GPU backend failed and CPU is used instead. */
  fallback: { from: string; reason: string } | null;
}

export const defaultLlamaFactory: LlamaFactory = async (gpu, logger) => {
  const { getLlama, LlamaLogLevel } = await loadNodeLlamaCpp();
  return getLlama({
    gpu,
    build: 'never',
    skipDownload: true,
    progressLogs: false,
    logLevel: LlamaLogLevel.warn,
    logger: (level, message) => forwardLlamaLog(logger, level, message),
  });
};

/** llama.cpp is chatty at warn level about harmless metadata; keep its warnings at debug, errors at warn. */
export function forwardLlamaLog(logger: Logger, level: LlamaLogLevel, message: string): void {
  const text = message.trimEnd();
  if (!text) return;
  // LlamaLogLevel is a string enum (imported as a type only): 'error' and 'fatal' are its values.
  const name: string = level;
  if (name === 'error' || name === 'fatal') logger.warn({ llama: level }, `llama.cpp: ${text}`);
  else logger.debug({ llama: level }, `llama.cpp: ${text}`);
}

function toRequest(setting: GpuBackendSetting): LlamaGpuRequest {
  return setting === 'cpu' ? false : setting;
}

export function backendName(llama: Llama): string {
  return llama.gpu === false ? 'cpu' : llama.gpu;
}

/**
 * Linux exposes GPUs as device nodes (NVIDIA: /dev/nvidia*, DRM render nodes for Vulkan). Without any,
 * probing the CUDA and Vulkan builds only costs seconds of start-up, so `auto` goes straight to CPU.
 */
export function linuxGpuNodesPresent(): boolean {
  if (process.platform !== 'linux') return true;
  try {
    if (readdirSync('/dev').some((name) => name.startsWith('nvidia'))) return true;
    return readdirSync('/dev/dri').some((name) => name.startsWith('renderD'));
  } catch {
    return false;
  }
}

export interface SelectBackendOptions {
  factory?: LlamaFactory;
  /** Whether GPU hardware may be present; injectable for tests. */
  gpuPresent?: () => boolean;
}

export async function selectBackend(
  setting: GpuBackendSetting,
  logger: Logger,
  options: SelectBackendOptions = {},
): Promise<BackendSelection> {
  const factory = options.factory ?? defaultLlamaFactory;
  if (setting === 'auto' && !(options.gpuPresent ?? linuxGpuNodesPresent)()) {
    logger.info('no GPU device nodes found; using the CPU backend');
    return { llama: await cpuOnly(factory, logger, setting, 'no GPU device nodes'), requested: setting, backend: 'cpu', fallback: null };
  }
  const request = toRequest(setting);
  let firstError: unknown;
  try {
    const llama = await factory(request, logger);
    if (llama.gpu === false) return { llama, requested: setting, backend: 'cpu', fallback: null };
    // A GPU build with no GPU device (e.g. the Vulkan binary on a headless box) computes on the CPU
    // anyway, with extra start-up cost: use the CPU build instead.
    const devices = await llama.getGpuDeviceNames().catch(() => [] as string[]);
    if (devices.length > 0) return { llama, requested: setting, backend: backendName(llama), fallback: null };
    await llama.dispose().catch(() => {});
    if (setting === 'auto') {
      logger.info({ probed: backendName(llama) }, `no GPU device found (${backendName(llama)} build has none); using CPU`);
      return { llama: await cpuOnly(factory, logger, setting, 'no GPU device'), requested: setting, backend: 'cpu', fallback: null };
    }
    firstError = new Error(`${backendName(llama)} initialised but found no GPU device`);
  } catch (error) {
    if (request === false) {
      throw new ClawboxError('MODEL_BACKEND_UNAVAILABLE', `the CPU backend of llama.cpp cannot be loaded: ${message(error)}`, {}, { cause: error });
    }
    firstError = error;
  }
  const reason = message(firstError);
  logger.warn(
    { code: 'MODEL_BACKEND_UNAVAILABLE', requested: setting, reason },
    `GPU backend "${setting}" failed to initialise (${reason}); falling back to CPU`,
  );
  const llama = await cpuOnly(factory, logger, setting, reason);
  return { llama, requested: setting, backend: 'cpu', fallback: { from: String(setting), reason } };
}

async function cpuOnly(factory: LlamaFactory, logger: Logger, setting: GpuBackendSetting, reason: string): Promise<Llama> {
  try {
    return await factory(false, logger);
  } catch (error) {
    throw new ClawboxError(
      'MODEL_BACKEND_UNAVAILABLE',
      `no llama.cpp backend can be loaded: ${setting} unusable (${reason}), CPU failed (${message(error)})`,
      {},
      { cause: error },
    );
  }
}

export function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
