/**
 * What happened to updates on this box, on the data partition so both slots read and write the same
 * file: the last result first, and a short history (bounded).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Slot } from './system.js';

export type UpdateResult = 'installing' | 'installed' | 'failed' | 'good' | 'bad' | 'rolled-back';

export interface UpdateEvent {
  readonly result: UpdateResult;
  readonly slot: Slot;
  readonly version: string;
  /** The version that was running when it happened. */
  readonly from: string;
  readonly at: string;
  readonly message: string;
}

const HISTORY = 20;
const recordFile = (stateDir: string) => path.join(stateDir, 'history.json');

export async function readHistory(stateDir: string): Promise<UpdateEvent[]> {
  try {
    const parsed = JSON.parse(await readFile(recordFile(stateDir), 'utf8')) as unknown;
    return Array.isArray(parsed) ? (parsed.slice(0, HISTORY) as UpdateEvent[]) : [];
  } catch {
    return [];
  }
}

export async function record(stateDir: string, event: Omit<UpdateEvent, 'at'>): Promise<UpdateEvent> {
  const full = { ...event, at: new Date().toISOString() };
  const history = [full, ...(await readHistory(stateDir))].slice(0, HISTORY);
  await mkdir(stateDir, { recursive: true, mode: 0o750 });
  const file = recordFile(stateDir);
  await writeFile(`${file}.tmp`, `${JSON.stringify(history, null, 2)}\n`, { flush: true });
  await rename(`${file}.tmp`, file);
  return full;
}
