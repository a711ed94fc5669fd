/**
 * The `models:` list in a YAML config file, as `clawbox models add|pull` change it: comments and layout
 * kept, every write atomic, every entry checked against the same schema the config loader uses, and the
 * list's own limit kept. A file the runtime reads must stay loadable after any change here.
 */
import { existsSync } from 'node:fs';
import YAML from 'yaml';
import { ioReason, readConfigDocument } from '../runtime/config/load.js';
import { ClawboxError } from '../runtime/errors.js';
import { validatorFor } from '../runtime/operations/validator.js';
import { writeFileAtomic } from '../runtime/store/atomic-file.js';
import { type ModelConfigEntry, modelEntrySchema, modelsConfigSchema } from './config-schema.js';

// Compiled on first use (validatorFor keeps it): only commands that write the config file need it.
const checkEntry = () => validatorFor(modelEntrySchema, 'check');

function describeErrors(): string {
  return (checkEntry().errors ?? []).map((e) => `${e.instancePath || 'entry'} ${e.message}`).join('; ');
}

function openDocument(file: string): YAML.Document {
  const doc = existsSync(file) ? readConfigDocument(file) : new YAML.Document();
  if (doc.contents === null) doc.contents = doc.createNode({}) as unknown as typeof doc.contents;
  if (!YAML.isMap(doc.contents)) throw new ClawboxError('CONFIG_UNREADABLE', `config file ${file} must hold a mapping of keys at the top level`, { file });
  return doc;
}

async function save(file: string, doc: YAML.Document): Promise<void> {
  try {
    await writeFileAtomic(file, doc.toString());
  } catch (error) {
    throw new ClawboxError('FILE_UNWRITABLE', `cannot write config file ${file}: ${ioReason(error)}`, { file }, { cause: error });
  }
}

/** The raw entries of the file's `models:` list (none when the file or the key is missing). */
function rawEntries(doc: YAML.Document): Array<Record<string, unknown>> {
  const models = doc.get('models');
  return YAML.isSeq(models) ? (models.toJSON() as unknown[]).filter((m): m is Record<string, unknown> => typeof m === 'object' && m !== null) : [];
}

/** Refuses what an append would refuse, before a long download rather than after it. */
export function checkCanAppend(file: string, name: string, role: ModelConfigEntry['role']): void {
  if (!existsSync(file)) return;
  const existing = rawEntries(readConfigDocument(file));
  if (existing.some((m) => m.name === name)) throw new ClawboxError('USAGE', `a model named "${name}" is already in ${file} (use --name)`);
  if (role === 'main' && existing.some((m) => (m.role ?? 'main') === 'main')) {
    throw new ClawboxError('USAGE', `${file} already has a main model; add this one with --role small or remove the other`);
  }
}

/** Appends a model entry, refusing a duplicate name or a second main model. */
export async function appendModelEntry(file: string, entry: Record<string, unknown>): Promise<void> {
  if (!checkEntry()(entry)) throw new ClawboxError('USAGE', `the entry would not be valid config: ${describeErrors()}`);
  const doc = openDocument(file);
  const existing = rawEntries(doc);
  if (existing.some((m) => m.name === entry.name)) throw new ClawboxError('USAGE', `a model named "${String(entry.name)}" is already in ${file} (use --name)`);
  if (entry.role === 'main' && existing.some((m) => (m.role ?? 'main') === 'main')) {
    throw new ClawboxError('USAGE', `${file} already has a main model; add this one with --role small or remove the other`);
  }
  if (existing.length >= modelsConfigSchema.maxItems) {
    throw new ClawboxError('LIMIT_REACHED', `${file} already lists ${existing.length} models, the most a config may; remove one first`);
  }
  const models = doc.get('models');
  if (YAML.isSeq(models)) models.add(doc.createNode(entry));
  else doc.set('models', doc.createNode([entry]));
  await save(file, doc);
}
