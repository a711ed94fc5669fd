/**
 * Model download progress shared between processes: `clawbox models pull` writes one small JSON record
 * per download under `<state dir>/downloads/`, and the running runtime (ModelService) reads them for the
 * status page (`model.downloads`), the `model.download` event and its JSON log. A file, not a socket,
 * because the CLI runs whether or not the runtime does.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { ensureDir, writeFileAtomic } from '../runtime/store/atomic-file.js';
import { type PullProgress, displayUri } from './pull.js';

export interface DownloadRecord extends PullProgress {
  id: string;
  /** Process doing the download; a record whose process is gone reads as `interrupted`. */
  pid: number;
  started_at: string;
  updated_at: string;
  /** Config entry name the model is added as. */
  name: string | null;
}

export type DownloadView = Omit<DownloadRecord, 'phase'> & { phase: PullProgress['phase'] | 'interrupted' };

/** Records kept on disk (the newest); older ones are removed by the next pull. */
const MAX_RECORDS = 8;
/** A record is a few hundred bytes; anything much larger is not ours. */
const MAX_RECORD_BYTES = 16 << 10;
/** Progress is written at most this often (phase changes are written at once). */
const WRITE_EVERY_MS = 1_000;

export function downloadsDir(stateDir: string): string {
  return path.join(stateDir, 'downloads');
}

/** One record per URI, so a resumed pull updates the record of the interrupted one. */
export function downloadId(uri: string): string {
  return createHash('sha256').update(uri).digest('hex').slice(0, 16);
}

/** Writes one download's progress, throttled; failures to write never fail the download. */
export class DownloadProgressWriter {
  readonly #file: string;
  readonly #dir: string;
  readonly #record: DownloadRecord;
  #lastWrite = 0;
  #lastPhase: string | null = null;
  #pending: Promise<void> = Promise.resolve();

  constructor(stateDir: string, uri: string, name: string | null) {
    this.#dir = downloadsDir(stateDir);
    const id = downloadId(uri);
    this.#file = path.join(this.#dir, `${id}.json`);
    const now = new Date().toISOString();
    this.#record = { id, pid: process.pid, started_at: now, updated_at: now, name, uri: displayUri(uri), phase: 'resolving', file: null, downloaded_bytes: 0, total_bytes: 0, speed_bps: 0, eta_s: null };
  }

  update(progress: PullProgress): void {
    Object.assign(this.#record, progress, { updated_at: new Date().toISOString() });
    const now = Date.now();
    if (progress.phase === this.#lastPhase && now - this.#lastWrite < WRITE_EVERY_MS) return;
    this.#lastPhase = progress.phase;
    this.#lastWrite = now;
    const text = JSON.stringify(this.#record);
    this.#pending = this.#pending.then(async () => {
      try {
        ensureDir(this.#dir);
        await writeFileAtomic(this.#file, text);
      } catch {
        // The status page is a convenience; the download goes on without it.
      }
    });
  }

  /** Waits for the last write and removes records beyond the newest MAX_RECORDS. */
  async flush(): Promise<void> {
    await this.#pending;
    const records = await readDownloads(path.dirname(this.#dir), Number.POSITIVE_INFINITY);
    for (const old of records.slice(MAX_RECORDS)) await unlink(path.join(this.#dir, `${old.id}.json`)).catch(() => {});
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const ACTIVE = new Set(['resolving', 'downloading', 'verifying']);

function parseRecord(text: string): DownloadRecord | null {
  try {
    const value = JSON.parse(text) as Partial<DownloadRecord>;
    if (typeof value?.id !== 'string' || !/^[0-9a-f]{16}$/.test(value.id) || typeof value.uri !== 'string' || typeof value.phase !== 'string') return null;
    if (typeof value.pid !== 'number' || typeof value.updated_at !== 'string') return null;
    return value as DownloadRecord;
  } catch {
    return null;
  }
}

/** The newest download records first; an active one whose process is gone reads as `interrupted`. */
export async function readDownloads(stateDir: string, limit = MAX_RECORDS): Promise<DownloadView[]> {
  const dir = downloadsDir(stateDir);
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => /^[0-9a-f]{16}\.json$/.test(n));
  } catch {
    return [];
  }
  const records: DownloadView[] = [];
  for (const name of names.slice(0, 4 * MAX_RECORDS)) {
    try {
      const file = path.join(dir, name);
      if ((await stat(file)).size > MAX_RECORD_BYTES) continue;
      const record = parseRecord(await readFile(file, 'utf8'));
      if (!record) continue;
      const phase = ACTIVE.has(record.phase) && !isAlive(record.pid) ? 'interrupted' : record.phase;
      records.push({ ...record, phase });
    } catch {
      // Replaced or removed while reading: the next look sees it.
    }
  }
  records.sort((a, b) => b.updated_at.localeCompare(a.updated_at));
  return records.slice(0, limit);
}

/** The downloads folder's mtime: atomic writes rename into it, so it changes with every update. */
export async function downloadsChangedAt(stateDir: string): Promise<number | null> {
  try {
    return (await stat(downloadsDir(stateDir))).mtimeMs;
  } catch {
    return null;
  }
}
