/**
 * Updates from the running box (the `system.update.*` operations and the web app's System → Update):
 * one job at a time that downloads a bundle into the runtime's own state folder, with progress in bytes,
 * and hands it to the update helper (helper.ts, root) to check or install. The runtime never writes a
 * partition itself. Cancelling stops the download or the install; the inactive slot then has no boot
 * entry, and the running slot stays the one that boots.
 */
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { ClawboxError, toClawboxError } from '../runtime/errors.js';
import type { Logger } from '../runtime/logging.js';
import type { ApplyResult } from './apply.js';
import { bundleUrl, displayUrl, downloadBundle } from './download.js';
import type { BundleCheck } from './helper.js';
import { askHelper } from './helper-client.js';
import type { UpdateStatus } from './status.js';

export type UpdateAction = 'check' | 'apply';
export type UpdatePhase = 'downloading' | 'verifying' | 'writing' | 'checked' | 'installed' | 'failed' | 'cancelled';

/** The running or last job, as the status document and `system.update.status` show it. */
export interface UpdateJobView {
  id: number;
  action: UpdateAction;
  /** The URL without its query string or credentials (they may carry a token). */
  url: string;
  phase: UpdatePhase;
  downloaded_bytes: number;
  download_total_bytes: number;
  written_bytes: number;
  write_total_bytes: number;
  message: string | null;
  /** What the signed manifest says, once checked. */
  bundle: BundleCheck | null;
  result: ApplyResult | null;
  started_at: number;
  finished_at: number | null;
  error: { code: string; message: string } | null;
}

export type UpdateStatusView =
  | ({ available: true; job: UpdateJobView | null } & UpdateStatus)
  | { available: false; reason: { code: string; message: string }; job: UpdateJobView | null };

export interface UpdateServiceOptions {
  /** The update helper's socket (HELPER_SOCKET on the box). */
  readonly socketPath: string;
  /** Where bundles are downloaded: the runtime's state folder; the helper installs only from there. */
  readonly downloadDir: string;
  readonly logger?: Logger;
  /** Told about each step worth showing (phase changes, each percent). */
  readonly onJob?: (job: UpdateJobView) => void;
}

/** Asking the helper for the status is a local socket round trip; a stuck helper must not hold a page. */
const STATUS_TIMEOUT_MS = 10_000;
const MAX_URL_LENGTH = 2048;

export class UpdateService {
  readonly #o: UpdateServiceOptions;
  #job: UpdateJobView | null = null;
  #abort: AbortController | null = null;
  #done: Promise<void> = Promise.resolve();
  #nextId = 1;
  /** The URL whose bundle is downloaded and checked, so Apply after Check does not download it again. */
  #checked: { href: string; allowDowngrade: boolean } | null = null;
  #stopped = false;

  constructor(options: UpdateServiceOptions) {
    this.#o = options;
  }

  get bundleFile(): string {
    return path.join(this.#o.downloadDir, 'bundle.tar');
  }

  view(): { job: UpdateJobView | null } {
    return { job: this.#job ? { ...this.#job } : null };
  }

  get running(): boolean {
    return this.#job !== null && this.#job.finished_at === null;
  }

  /** Slots, versions and the last results from the helper, with the job; `available: false` off the OS image. */
  async status(signal: AbortSignal): Promise<UpdateStatusView> {
    const { job } = this.view();
    try {
      const status = await askHelper<UpdateStatus>(this.#o.socketPath, { op: 'status' }, { signal: AbortSignal.any([signal, AbortSignal.timeout(STATUS_TIMEOUT_MS)]) });
      return { available: true, ...status, job };
    } catch (error) {
      const typed = toClawboxError(error);
      if (typed.code !== 'UPDATE_UNAVAILABLE') throw typed;
      return { available: false, reason: { code: typed.code, message: typed.message }, job };
    }
  }

  /** Starts a check or an install of the bundle at `url` and answers at once with the job; BUSY while one runs. */
  start(action: UpdateAction, urlText: string, allowDowngrade = false): UpdateJobView {
    if (this.#stopped) throw new ClawboxError('BUSY', 'the runtime is stopping');
    if (this.running) {
      throw new ClawboxError('BUSY', `an update is being ${this.#job?.action === 'apply' ? 'installed' : 'checked'}; cancel it or wait for it to finish`, { retry_after_ms: 10_000 });
    }
    if (urlText.length > MAX_URL_LENGTH) throw new ClawboxError('PAYLOAD_INVALID', `the URL is longer than ${MAX_URL_LENGTH} characters`);
    const url = bundleUrl(urlText);
    const job: UpdateJobView = {
      id: this.#nextId++,
      action,
      url: displayUrl(url),
      phase: 'downloading',
      downloaded_bytes: 0,
      download_total_bytes: 0,
      written_bytes: 0,
      write_total_bytes: 0,
      message: null,
      bundle: null,
      result: null,
      started_at: Date.now(),
      finished_at: null,
      error: null,
    };
    const abort = new AbortController();
    this.#job = job;
    this.#abort = abort;
    this.#done = this.#run(job, url, allowDowngrade, abort.signal);
    return { ...job };
  }

  /** Stops the running job; it ends as `cancelled` once the download or the helper has stopped. */
  cancel(): UpdateJobView {
    if (!this.running || !this.#abort) throw new ClawboxError('NOT_FOUND', 'no update is being checked or installed');
    this.#abort.abort(new ClawboxError('DEADLINE_EXCEEDED', 'cancelled'));
    return { ...(this.#job as UpdateJobView) };
  }

  /** Restarts the box through the helper; refused while an update is being written. */
  async reboot(signal: AbortSignal): Promise<{ rebooting: boolean }> {
    if (this.running) throw new ClawboxError('BUSY', 'an update is running; cancel it or wait for it to finish before restarting', { retry_after_ms: 10_000 });
    return askHelper<{ rebooting: boolean }>(this.#o.socketPath, { op: 'reboot' }, { signal });
  }

  /** Cancels the running job and waits until it has stopped (nothing runs after the runtime stopped). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort?.abort(new ClawboxError('DEADLINE_EXCEEDED', 'the runtime is stopping'));
    await this.#done;
  }

  async #run(job: UpdateJobView, url: URL, allowDowngrade: boolean, signal: AbortSignal): Promise<void> {
    const { logger } = this.#o;
    let lastStep = '';
    const step = (change: Partial<UpdateJobView>) => {
      Object.assign(job, change);
      const percent = (done: number, total: number) => (total > 0 ? Math.floor((done / total) * 100) : 0);
      const key = `${job.phase}:${percent(job.downloaded_bytes, job.download_total_bytes)}:${percent(job.written_bytes, job.write_total_bytes)}`;
      if (key === lastStep) return;
      lastStep = key;
      this.#o.onJob?.({ ...job });
    };
    const file = this.bundleFile;
    let keepFile = false;
    // The job is finished only once the download is cleaned up: a new job may start right after.
    let last: Partial<UpdateJobView> = {};
    try {
      const reuse = job.action === 'apply' && this.#checked?.href === url.href && this.#checked.allowDowngrade === allowDowngrade && (await fileExists(file));
      this.#checked = null;
      if (!reuse) {
        // Off the OS image the helper is not there: say so before downloading hundreds of MiB.
        await askHelper(this.#o.socketPath, { op: 'status' }, { signal });
        await rm(file, { force: true });
        logger?.info({ event: 'update.download', url: job.url }, `downloading the update bundle ${job.url}`);
        await downloadBundle(url, file, signal, (received, total) => step({ downloaded_bytes: received, download_total_bytes: total }));
      }
      signal.throwIfAborted();
      step({ phase: 'verifying', message: 'checking the signature, the architecture, the version, the space and every payload' });
      if (job.action === 'check') {
        const bundle = await askHelper<BundleCheck>(this.#o.socketPath, { op: 'check', allow_downgrade: allowDowngrade }, { signal });
        this.#checked = { href: url.href, allowDowngrade };
        keepFile = true;
        last = { phase: 'checked', bundle, message: `clawbox ${bundle.version} (${bundle.arch}) can be installed into slot ${bundle.slot}` };
        logger?.info({ event: 'update.checked', version: bundle.version }, `update bundle ${job.url}: clawbox ${bundle.version}, checked`);
        return;
      }
      const result = await askHelper<ApplyResult>(
        this.#o.socketPath,
        { op: 'apply', allow_downgrade: allowDowngrade },
        {
          signal,
          onProgress: (p) => {
            if (p.written_bytes !== undefined) step({ phase: 'writing', written_bytes: p.written_bytes, write_total_bytes: p.total_bytes ?? 0 });
            else if (p.message) step({ phase: p.phase, message: p.message });
          },
        },
      );
      last = { phase: 'installed', result, message: `slot ${result.slot} boots clawbox ${result.version} next; restart to use it` };
      logger?.info({ event: 'update.installed', version: result.version, slot: result.slot }, `update installed: slot ${result.slot} boots clawbox ${result.version} next`);
    } catch (error) {
      const cancelled = signal.aborted;
      const typed = toClawboxError(error);
      last = { phase: cancelled ? 'cancelled' : 'failed', error: cancelled ? null : { code: typed.code, message: typed.message } };
      if (cancelled) logger?.info({ event: 'update.cancelled', url: job.url }, 'update cancelled');
      else logger?.warn({ event: 'update.failed', url: job.url, code: typed.code }, `update ${job.action} failed: ${typed.code}: ${typed.message}`);
    } finally {
      if (!keepFile) await rm(file, { force: true }).catch(() => {});
      if (this.#abort?.signal === signal) this.#abort = null;
      step({ ...last, finished_at: Date.now() });
    }
  }
}

async function fileExists(file: string): Promise<boolean> {
  return (await stat(file).catch(() => undefined))?.isFile() ?? false;
}
