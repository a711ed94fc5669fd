/**
 * content-safety as a plugin: the `check` and `decisions` tools over the same engine and decision log that
 * the channels use in-process (see safety.ts).
 */
import { definePlugin } from '../../sdk.js';
import { type ContentSafety, createContentSafety } from './safety.js';

let safety: ContentSafety | undefined;

export default definePlugin({
  start(ctx) {
    safety = createContentSafety({ config: ctx.config, dataDir: ctx.dataDir || undefined });
  },
  tools: {
    check: ({ text, channel, direction }: { text: string; channel: string; direction: 'input' | 'output' }) =>
      safety!.check(text, { channel, direction }),
    decisions: ({ limit }: { limit: number }) => safety!.decisions(limit),
  },
});
