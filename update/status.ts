/**
 * `clawbox update status`: both slots (version, boot entry state, tries left), which one runs and which
 * one boots next, and the last update results; and the boot verdict that clawbox-health.service asks
 * for once the health check has run.
 */
import { type BootEntry, listEntries, markBoot, nextBoot, versionOf } from './boot-entries.js';
import { readHistory, record, type UpdateEvent } from './record.js';
import { runningSystem, SLOTS, type Slot, type SystemLayout } from './system.js';

export interface SlotStatus {
  readonly slot: Slot;
  readonly version: string | null;
  /** good, trying (boot counting in progress), bad (no tries left) or empty (no boot entry). */
  readonly state: BootEntry['state'] | 'empty';
  readonly tries_left: number | null;
  readonly booted: boolean;
  readonly next_boot: boolean;
  readonly entry: string | null;
}

export interface UpdateStatus {
  readonly version: string;
  readonly arch: string;
  readonly booted: Slot;
  readonly slots: SlotStatus[];
  readonly last: UpdateEvent | null;
  readonly history: UpdateEvent[];
}

export async function updateStatus(layout: SystemLayout): Promise<UpdateStatus> {
  const running = await runningSystem(layout);
  const entries = await listEntries(layout.espDir);
  const next = nextBoot(entries);
  const history = await readHistory(layout.stateDir);
  const slots = SLOTS.map((slot): SlotStatus => {
    const entry = entries.find((e) => e.slot === slot);
    return {
      slot,
      version: slot === running.booted ? running.version : (versionOf(entry) ?? null),
      state: entry?.state ?? 'empty',
      tries_left: entry?.triesLeft ?? null,
      booted: slot === running.booted,
      next_boot: entry !== undefined && entry === next,
      entry: entry?.file ?? null,
    };
  });
  return { version: running.version, arch: running.arch, booted: running.booted, slots, last: history[0] ?? null, history };
}

export function formatStatus(status: UpdateStatus): string {
  const rows = status.slots.map((s) => {
    const marks = [s.booted ? 'running' : '', s.next_boot ? 'boots next' : ''].filter(Boolean).join(', ');
    const tries = s.state === 'trying' ? ` (${s.tries_left} tries left)` : '';
    return `  slot ${s.slot}: ${(s.version ?? '-').padEnd(12)} ${s.state}${tries}${marks ? `  [${marks}]` : ''}`;
  });
  const last = status.last ? `last update: ${status.last.result} — ${status.last.message} (${status.last.at})` : 'last update: none';
  return `clawbox ${status.version} (${status.arch}), running from slot ${status.booted}\n${rows.join('\n')}\n${last}\n`;
}

/**
 * After the health check: a counted (trial) boot of the running slot is marked good or bad. A boot that
 * is not on trial changes no entry; if it is the fallback from an update that did not take, that is
 * recorded once as rolled back. Returns what was decided, for the console.
 */
export async function recordBootVerdict(layout: SystemLayout, healthy: boolean, detail: string): Promise<string> {
  const running = await runningSystem(layout);
  const marked = await markBoot(layout.espDir, running.booted, healthy ? 'good' : 'bad');
  const base = { slot: running.booted, version: running.version, from: running.version };
  if (marked) {
    if (healthy) {
      await record(layout.stateDir, { ...base, result: 'good', message: `slot ${running.booted} runs ${running.version} and passed its health check: marked good` });
      return `slot ${running.booted} (${running.version}) passed its health check: marked good`;
    }
    await record(layout.stateDir, { ...base, result: 'bad', message: `slot ${running.booted} failed its health check (${detail}): marked bad, the other slot boots next` });
    return `slot ${running.booted} (${running.version}) failed its health check: marked bad`;
  }
  const [last] = await readHistory(layout.stateDir);
  const entries = await listEntries(layout.espDir);
  const other = last && last.slot !== running.booted ? entries.find((e) => e.slot === last.slot) : undefined;
  if (last && other?.state === 'bad' && (last.result === 'installed' || last.result === 'bad')) {
    await record(layout.stateDir, {
      slot: last.slot,
      version: last.version,
      from: last.from,
      result: 'rolled-back',
      message: `${last.version} in slot ${last.slot} did not come up healthy; slot ${running.booted} runs ${running.version} again`,
    });
    return `update to ${last.version} rolled back: slot ${running.booted} runs ${running.version}`;
  }
  return `slot ${running.booted} (${running.version}) is not on trial; health ${healthy ? 'ok' : `failing: ${detail}`}`;
}
