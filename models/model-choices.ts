/**
 * What the running box changed about its models — models pulled from the web app or the API, and the main
 * model chosen there — kept in the state directory (`<state>/model-choices.json`), because the appliance's
 * config file is root-owned and read-only to the runtime by design (systemd/README.md). At start they are
 * laid over the config's `models:` list: pulled models join as `standby`, and the chosen main model replaces
 * the config's — as long as the config still names the main model it replaced. An admin who edits the
 * config's main model later wins over an older choice made in the web app.
 */
import { validatorFor } from '../runtime/operations/validator.js';
import { type ModelConfigEntry, modelEntrySchema, modelsConfigSchema, withModelDefaults } from './config-schema.js';

export interface ModelChoices {
  /** Models the runtime pulled (as config entries). */
  added: ModelConfigEntry[];
  /** The main model chosen at run time, and the config's main model at that moment (null: none). */
  main: { name: string; over: string | null } | null;
}

/** The configured models plus pulled ones, at most the config's own limit. */
export const MAX_MODELS = modelsConfigSchema.maxItems;

// Compiled on first use (validatorFor keeps it), not when the module loads.
const checkEntry = (entry: unknown): boolean => validatorFor(modelEntrySchema, 'check')(entry);

export function emptyChoices(): ModelChoices {
  return { added: [], main: null };
}

/** The choices as read from disk, with anything that does not fit dropped (a hand-edited or old file). */
export function sanitizeChoices(raw: unknown): ModelChoices {
  const data = (typeof raw === 'object' && raw !== null ? raw : {}) as { added?: unknown; main?: unknown };
  const added = (Array.isArray(data.added) ? data.added : [])
    .filter((entry) => typeof entry === 'object' && entry !== null && checkEntry(entry))
    .slice(0, MAX_MODELS)
    .map((entry) => withModelDefaults(entry as ModelConfigEntry));
  const main = data.main as { name?: unknown; over?: unknown } | null | undefined;
  const validMain = main && typeof main.name === 'string' && (typeof main.over === 'string' || main.over === null) ? { name: main.name, over: main.over } : null;
  return { added, main: validMain };
}

/** The config's main model's name (the first `main` entry, as the registry picks it). */
export function configMainName(config: readonly ModelConfigEntry[]): string | null {
  return config.find((entry) => entry.role === 'main')?.name ?? null;
}

/** The config's entries with the run-time choices laid over them. */
export function applyChoices(config: readonly ModelConfigEntry[], choices: ModelChoices): ModelConfigEntry[] {
  const names = new Set(config.map((entry) => entry.name));
  const added = choices.added.filter((entry) => !names.has(entry.name)).map((entry) => ({ ...entry, role: 'standby' as const }));
  const all = [...config, ...added].slice(0, MAX_MODELS);
  const main = choices.main;
  if (!main || main.over !== configMainName(config) || !all.some((entry) => entry.name === main.name && entry.role !== 'small')) return all;
  return all.map((entry) => (entry.name === main.name ? { ...entry, role: 'main' } : entry.role === 'main' ? { ...entry, role: 'standby' } : entry));
}
