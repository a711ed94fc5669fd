/**
 * Content safety as the channels use it, in-process: `createContentSafety({ config, dataDir })` checks the
 * config against the plugin manifest's schema (defaults applied), and every `check()` that flags, masks or
 * blocks is recorded as one JSON line in `<dataDir>/decisions.jsonl` — channel, direction, action,
 * categories, rule ids, length and a short digest, never the text. The plugin's own tools record to the
 * same file (appends of one line each), so `decisions` sees both.
 *
 *   const safety = createContentSafety({ config: host.configOf('content-safety'), dataDir: host.dataDirOf('content-safety') });
 *   const d = safety.check(message, { channel: 'websocket', direction: 'input' });
 *   if (d.action === 'block') refuse(); else forward(d.text);
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import path from 'node:path';
import type { ValidateFunction } from 'ajv';
import { ClawboxError } from '../../../runtime/errors.js';
import { validatorForOneUse } from '../../../runtime/operations/validator.js';
import { type CheckContext, ContentFilter, type ContentSafetyConfig, ContentSafetyConfigError, type SafetyDecision } from './filter.js';

export type { CheckContext, ContentSafetyConfig, SafetyAction, SafetyDecision, SafetyMatch } from './filter.js';

export interface RecordedDecision {
  at: string;
  channel: string;
  direction: string;
  action: string;
  categories: string[];
  rules: string[];
  length: number;
  digest: string;
}

export interface ContentSafety {
  check(text: string, context?: CheckContext): SafetyDecision;
  /** Most recent recorded decisions, newest last, and counts over the recorded file(s). */
  decisions(limit?: number): { recent: RecordedDecision[]; counts: { by_action: Record<string, number>; by_category: Record<string, number> } };
}

const manifest = JSON.parse(readFileSync(new URL('./clawbox.plugin.json', import.meta.url), 'utf8')) as {
  config: Record<string, unknown>;
};
// On first use: importing this module (the app does, for chat) should not cost a schema compile; and not
// kept: a config is checked once. The plugin profile is the one the plugin host checks this same config with
// (precompiled at build time).
const configValidator = (): ValidateFunction => validatorForOneUse(manifest.config, 'plugin');

/** Checks a raw `plugins.config.content-safety` section; throws CONFIG_INVALID naming the problem. */
export function resolveContentSafetyConfig(raw: unknown): ContentSafetyConfig {
  const config = structuredClone(raw ?? {});
  const validateConfig = configValidator();
  if (!validateConfig(config)) {
    const first = validateConfig.errors?.[0];
    throw new ClawboxError('CONFIG_INVALID', `plugins.config.content-safety${first?.instancePath ?? ''} ${first?.message ?? 'is invalid'}`);
  }
  return config as unknown as ContentSafetyConfig;
}

export function createContentSafety(options: { config?: unknown; dataDir?: string | undefined } = {}): ContentSafety {
  const config = resolveContentSafetyConfig(options.config);
  let filter: ContentFilter;
  try {
    filter = new ContentFilter(config);
  } catch (error) {
    if (error instanceof ContentSafetyConfigError) throw new ClawboxError('CONFIG_INVALID', `plugins.config.content-safety: ${error.message}`);
    throw error;
  }
  const file = config.record && options.dataDir ? path.join(options.dataDir, 'decisions.jsonl') : null;
  if (file) mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });

  const record = (text: string, context: CheckContext, decision: SafetyDecision) => {
    if (!file || decision.action === 'allow') return;
    const entry: RecordedDecision = {
      at: new Date().toISOString(),
      channel: context.channel ?? 'default',
      direction: context.direction ?? 'input',
      action: decision.action,
      categories: decision.reason ? [decision.reason] : decision.categories,
      rules: [...new Set(decision.matches.map((m) => m.rule))],
      length: text.length,
      digest: createHash('sha256').update(text).digest('hex').slice(0, 16),
    };
    try {
      if (existsSync(file) && statSync(file).size > config.record_max_bytes) renameSync(file, `${file}.1`);
      appendFileSync(file, `${JSON.stringify(entry)}\n`, { mode: 0o600 });
    } catch {
      // Recording is best effort: a full disk must not turn a check into a failure.
    }
  };

  return {
    check(text, context = {}) {
      const decision = filter.check(text, context);
      record(text, context, decision);
      return decision;
    },
    decisions(limit = 50) {
      const entries: RecordedDecision[] = [];
      if (file) {
        for (const f of [`${file}.1`, file]) {
          if (!existsSync(f)) continue;
          for (const line of readFileSync(f, 'utf8').split('\n')) {
            if (!line) continue;
            try {
              entries.push(JSON.parse(line) as RecordedDecision);
            } catch {
              // A torn last line from a crash: skip it.
            }
          }
        }
      }
      const by_action: Record<string, number> = {};
      const by_category: Record<string, number> = {};
      for (const e of entries) {
        by_action[e.action] = (by_action[e.action] ?? 0) + 1;
        for (const c of e.categories) by_category[c] = (by_category[c] ?? 0) + 1;
      }
      return { recent: entries.slice(-limit), counts: { by_action, by_category } };
    },
  };
}
