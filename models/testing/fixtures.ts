/**
 * Test fixtures for the model layer: a tiny generated GGUF in a temp dir, and the shared real model
 * (stories260K.gguf) when present. Tests that need the shared model skip with a clear reason when absent.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type GenerateModelOptions, type GeneratedModel, generateModel } from '../gguf/generate.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** ../shared/models/stories260K.gguf relative to the repository root. */
export const STORIES_PATH = path.resolve(here, '../../../shared/models/stories260K.gguf');
export const STORIES_SHA256 = '270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d';

export function storiesSkipReason(): string | false {
  return existsSync(STORIES_PATH) ? false : `real model not present at ${STORIES_PATH} (see shared/models/README.md); skipping`;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

export async function tempDir(t: Teardown, prefix = 'clawbox-models-'): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export async function tinyModel(t: Teardown, options: Partial<GenerateModelOptions> = {}): Promise<GeneratedModel> {
  const dir = await tempDir(t);
  return generateModel({ path: path.join(dir, 'tiny.gguf'), shape: 'tiny', quant: 'Q8_0', seed: 7, ...options });
}

/** The ClawboxError code a promise rejects with, 'resolved' if it does not, or the foreign error's message. */
export async function rejectionCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? code : String(error);
  }
}
