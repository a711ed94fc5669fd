/**
 * A test-only brain backend with deterministic answers (a generated GGUF answers gibberish, so tests that
 * need a particular proposed action use this). It reads the last user turn of the prompt:
 *   "propose <device> <on|off>"  -> {"device": "<device>", "command": {"state": "ON"|"OFF"}}
 *   "slow ..."                   -> answers after 10 s (aborted with the call)
 *   anything else                -> {"device": "none", "reply": "from the brain"}
 * Every request it gets is passed to `record` first, so a test sees exactly what left the edge.
 */
import type { BrainBackend, BrainRequest } from '../backend.js';

export function scriptedBackend(record: (request: BrainRequest) => void): BrainBackend {
  return {
    async generate(request, { signal, onText }) {
      record(request);
      const user = /User: ([^\n]*)\nAssistant: $/.exec(request.prompt)?.[1] ?? '';
      const propose = /^propose (\S+) (on|off)\b/i.exec(user);
      if (/^slow\b/i.test(user)) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, 10_000);
          signal.addEventListener('abort', () => {
            clearTimeout(timer);
            reject(signal.reason);
          });
        });
      }
      const text = propose
        ? JSON.stringify({ device: propose[1], command: { state: propose[2]!.toUpperCase() } })
        : JSON.stringify({ device: 'none', reply: 'from the brain' });
      onText?.(text);
      return {
        text,
        stop_reason: 'eos',
        model: 'scripted',
        usage: { prompt_tokens: request.prompt.length, cached_tokens: 0, evaluated_tokens: request.prompt.length, generated_tokens: 8, queue_ms: 0, prefill_ms: 1, decode_ms: 1 },
      };
    },
    health: () => ({ serving: true, model: 'scripted', sequences: 4 }),
  };
}
