/**
 * Downloads a GGUF model with node-llama-cpp's own downloader (`createModelDownloader`, built on ipull):
 * `https://…` URLs and Hugging Face URIs (`hf:owner/repo/file.gguf`, `hf:owner/repo:quant`). What this
 * module adds around it: the free-space check before the transfer, resumable interruption (the partial
 * `.ipull` file is kept, and the next pull continues from its last complete chunk), the sha256 check
 * afterwards, and the GGUF check, with each failure a coded ClawboxError.
 */
import { rename, stat, statfs, unlink } from 'node:fs/promises';
import path from 'node:path';
import { ClawboxError } from '../runtime/errors.js';
import { ensureDir } from '../runtime/store/atomic-file.js';
import { loadNodeLlamaCpp } from './engine/llama-module.js';
import type { GgufSummary } from './gguf/reader.js';
import { sha256File, verifyModelFile } from './registry.js';

/** What the progress callback, the JSON log and the status page see. */
export interface PullProgress {
  uri: string;
  phase: 'resolving' | 'downloading' | 'verifying' | 'done' | 'failed';
  /** Final file name (known once resolved). */
  file: string | null;
  downloaded_bytes: number;
  total_bytes: number;
  /** Bytes per second (0 when unknown). */
  speed_bps: number;
  /** Seconds left, null when unknown. */
  eta_s: number | null;
  error?: { code: string; message: string };
}

export interface PullOptions {
  /** `https://…/file.gguf`, `hf:owner/repo/path/file.gguf[#branch]` or `hf:owner/repo[:quant]`. */
  uri: string;
  /** Folder the file is written to (created if missing). */
  dir: string;
  /** Expected sha256 (hex); a mismatch deletes the file and fails with MODEL_HASH_MISMATCH. */
  sha256?: string;
  /** Bytes that must stay free on the file system after the download (default 256 MiB). */
  keepFreeBytes?: number;
  /** Hugging Face endpoint for `hf:` URIs (default: $HF_ENDPOINT / $MODEL_ENDPOINT, else huggingface.co). */
  huggingFaceEndpoint?: string;
  /** Extra request headers (e.g. an Authorization header for a gated repository). */
  headers?: Record<string, string>;
  onProgress?: (progress: PullProgress) => void;
  signal?: AbortSignal;
}

export interface PullResult {
  file: string;
  sha256: string;
  size: number;
  summary: GgufSummary;
  /** The URL the file came from (an `hf:` URI resolved). */
  url: string;
}

export const DEFAULT_KEEP_FREE_BYTES = 256 << 20;
const SHA256 = /^[0-9a-f]{64}$/;
/** A URI is read from the command line or an API caller: keep it to one sane line. */
const MAX_URI_LENGTH = 2048;

/** Checks the URI's form before any network access; USAGE on anything else (file:, ftp:, relative paths). */
export function checkModelUri(uri: string): 'https' | 'http' | 'hf' {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
  if (uri.length === 0 || uri.length > MAX_URI_LENGTH || /[\u0000-\u0020\u007f]/.test(uri)) {
    throw new ClawboxError('USAGE', `a model URI is one line of at most ${MAX_URI_LENGTH} characters without spaces`);
  }
  if (/^hf:[^/:#\s]+\/[^/:#\s]+(:[A-Za-z0-9_.-]+|\/.+\.gguf(#[^\s#]+)?)?$/i.test(uri)) return 'hf';
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new ClawboxError('USAGE', `"${uri}" is neither an https:// URL nor an hf:owner/repo[:quant] or hf:owner/repo/file.gguf URI`);
  }
  if (url.protocol === 'https:' || url.protocol === 'http:') {
    if (url.username || url.password) throw new ClawboxError('USAGE', 'put credentials in a header (--header), not in the URL, so they are not logged');
    return url.protocol === 'https:' ? 'https' : 'http';
  }
  throw new ClawboxError('USAGE', `unsupported model URI scheme "${url.protocol}" (https://, http:// or hf:)`);
}

/**
 * The URI as it may be shown and stored (progress records, logs, the config's `source`): an http(s) URL
 * loses its query and fragment, which can carry a signature or a token.
 */
export function displayUri(uri: string): string {
  if (!/^https?:/i.test(uri)) return uri;
  try {
    const url = new URL(uri);
    const hidden = url.search || url.hash ? '?…' : '';
    url.search = '';
    url.hash = '';
    return `${url.toString()}${hidden}`;
  } catch {
    return uri;
  }
}

/** Free bytes for an unprivileged writer on the file system holding `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const info = await statfs(dir);
  return Number(info.bavail) * Number(info.bsize);
}

function failed(error: unknown, uri: string): ClawboxError {
  if (error instanceof ClawboxError) return error;
  const err = error as NodeJS.ErrnoException;
  if (err?.code === 'ENOSPC') return new ClawboxError('NO_SPACE', `no space left while downloading ${uri}; the partial file is kept, free some space and pull again`, { uri });
  if (err?.code === 'EACCES' || err?.code === 'EROFS' || err?.code === 'EPERM') {
    return new ClawboxError('FILE_UNWRITABLE', `cannot write the model file: ${err.message}`, { uri }, { cause: error });
  }
  const message = err instanceof Error ? err.message : String(error);
  return new ClawboxError('MODEL_DOWNLOAD_FAILED', `${uri}: ${message}`, { uri }, { cause: error });
}

/**
 * Resolves, checks space, downloads (resuming a partial file), hashes and inspects the model. The
 * signal stops the transfer and keeps the partial file for the next pull.
 */
export async function pullModel(options: PullOptions): Promise<PullResult> {
  const { uri, dir, signal } = options;
  checkModelUri(uri);
  const shown = displayUri(uri);
  if (options.sha256 !== undefined && !SHA256.test(options.sha256.toLowerCase())) {
    throw new ClawboxError('USAGE', '--sha256 must be 64 hexadecimal characters');
  }
  const expected = options.sha256?.toLowerCase();
  const progress: PullProgress = { uri: displayUri(uri), phase: 'resolving', file: null, downloaded_bytes: 0, total_bytes: 0, speed_bps: 0, eta_s: null };
  const emit = (change: Partial<PullProgress>) => {
    Object.assign(progress, change);
    options.onProgress?.({ ...progress });
  };
  try {
    signal?.throwIfAborted();
    emit({});
    await ensureDir(dir);
    const { createModelDownloader } = await loadNodeLlamaCpp();
    const downloader = await createModelDownloader({
      modelUri: uri,
      dirPath: dir,
      // Kept on cancel: the next pull resumes from the last complete chunk.
      deleteTempFileOnCancel: false,
      skipExisting: true,
      // ipull's bar would end the process on Ctrl-C; callers draw their own from onProgress.
      showCliProgress: false,
      ...(options.headers ? { headers: options.headers } : {}),
      ...(options.huggingFaceEndpoint ? { endpoints: { huggingFace: options.huggingFaceEndpoint } } : {}),
      onProgress: (status) =>
        emit({
          phase: 'downloading',
          downloaded_bytes: status.downloadedSize,
          total_bytes: status.totalSize,
          speed_bps: Math.round(status.averageSpeed || 0),
          eta_s: Number.isFinite(status.estimatedTimeLeft) ? Math.round(status.estimatedTimeLeft / 1000) : null,
        }),
    });
    const file = downloader.entrypointFilePath;
    emit({ file: path.basename(file), total_bytes: downloader.totalSize, downloaded_bytes: downloader.downloadedSize });
    if (downloader.totalFiles !== 1 && expected) {
      throw new ClawboxError('USAGE', `${shown} is split into ${downloader.totalFiles} files; --sha256 checks a single file`);
    }
    await checkSpace(dir, downloader.totalSize - downloader.downloadedSize, options.keepFreeBytes ?? DEFAULT_KEEP_FREE_BYTES, shown);
    signal?.throwIfAborted();
    emit({ phase: 'downloading' });
    // Listened for before the download starts, so that its end cannot be missed.
    const closed = transferClosed(downloader);
    try {
      await downloader.download(signal ? { signal } : {});
      // A cancelled download can resolve rather than reject.
      signal?.throwIfAborted();
    } catch (error) {
      await keepPartialResumable(file, downloader.totalSize, closed);
      throw error;
    }
    emit({ phase: 'verifying', downloaded_bytes: downloader.totalSize, total_bytes: downloader.totalSize, eta_s: null });
    const sha256 = await sha256File(file);
    if (expected && sha256 !== expected) {
      // A wrong file must not be picked up by the next pull's "already complete" shortcut.
      await unlink(file).catch(() => {});
      throw new ClawboxError('MODEL_HASH_MISMATCH', `${shown}: downloaded file has sha256 ${sha256}, expected ${expected}; it was deleted`, {
        uri: shown,
        sha256,
        expected,
      });
    }
    const { summary } = await verifyModelFile(file, undefined, { hash: false });
    emit({ phase: 'done' });
    return { file, sha256, size: summary.file_size, summary, url: displayUri(downloadUrl(downloader) ?? uri) };
  } catch (error) {
    const typed = signal?.aborted && !(error instanceof ClawboxError) ? abortedError(shown, signal) : failed(error, shown);
    emit({ phase: 'failed', error: { code: typed.code, message: typed.message } });
    throw typed;
  }
}

const PARTIAL_SUFFIX = '.ipull';

/** Longest wait for a cancelled transfer to close before the pull reports its end anyway. */
const CLOSE_BOUND_MS = 30_000;

/**
 * Resolves when ipull's engine under the downloader has closed: its files renamed and their streams
 * closed (the engine's `closed` event; node-llama-cpp keeps the engine in an internal field). Null where
 * that engine is not found.
 */
function transferClosed(downloader: unknown): Promise<void> | null {
  const engine = (downloader as { _downloader?: { once?: (event: 'closed', listener: () => void) => unknown } })._downloader;
  if (typeof engine?.once !== 'function') return null;
  return new Promise((resolve) => engine.once!('closed', () => resolve()));
}

/**
 * ipull (under node-llama-cpp 3.21.1) renames the partial file to the final name when a download is
 * cancelled or fails, with its resume record still appended after the data, so the next pull would start
 * over. Renaming it back lets the next pull resume. The rename happens while the download closes, a
 * moment after it rejects: the pull waits for that close, so that the next pull (allowed once this one has
 * ended) never works on a file the closing one still renames. Without the engine's event it polls, as
 * before, for the rename.
 */
async function keepPartialResumable(file: string, totalSize: number, closed: Promise<void> | null): Promise<void> {
  const partial = `${file}${PARTIAL_SUFFIX}`;
  if (closed) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_BOUND_MS)))]);
    clearTimeout(timer);
  }
  for (let i = 0; i < 40; i++) {
    const final = await stat(file).catch(() => null);
    if (final) {
      if (final.size !== totalSize && !(await stat(partial).catch(() => null))) await rename(file, partial).catch(() => {});
      return;
    }
    if (!(await stat(partial).catch(() => null))) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function abortedError(uri: string, signal: AbortSignal): ClawboxError {
  const reason = signal.reason;
  if (reason instanceof ClawboxError) return reason;
  return new ClawboxError('MODEL_DOWNLOAD_FAILED', `download of ${uri} was interrupted; the partial file is kept and the next pull resumes it`, { uri, interrupted: true });
}

/** The resolved URL, read from the downloader's internals where present (only for messages). */
function downloadUrl(downloader: unknown): string | undefined {
  const url = (downloader as { _modelUrl?: unknown })._modelUrl;
  return typeof url === 'string' ? url : undefined;
}

async function checkSpace(dir: string, needed: number, keepFree: number, uri: string): Promise<void> {
  const available = await freeBytes(dir);
  if (available - Math.max(0, needed) < keepFree) {
    const mib = (n: number) => `${(n / (1 << 20)).toFixed(1)} MiB`;
    throw new ClawboxError(
      'NO_SPACE',
      `${uri} needs ${mib(needed)} more in ${dir}, ${mib(available)} is free and ${mib(keepFree)} must stay free (--keep-free)`,
      { uri, needed_bytes: needed, free_bytes: available, keep_free_bytes: keepFree },
    );
  }
}

