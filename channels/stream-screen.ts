/**
 * Content safety for a streamed reply. The whole reply is screened when it is complete (chat.message);
 * while it streams, only text that is already safe to show goes out: whole words (a word is complete when
 * whitespace follows it), never a trailing run of digits (a card number may still be growing), and only
 * while the policy lets the text so far through unchanged. The first time it would mask, flag or block,
 * streaming stops and the screened whole reply answers for the rest. Without content safety every piece goes
 * out as it is generated.
 */
import type { SafetyCheck } from './operations.js';

export interface ScreenedStream {
  /** Feed generated text. */
  push(text: string): void;
  /** What has gone out so far (always a prefix of the unscreened reply). */
  emitted(): string;
}

/** Trailing digits, with the separators card numbers are written with. */
const GROWING_NUMBER = /\d[\d\s.-]*$/;

export function screenedStream(safety: SafetyCheck | null, channel: string, sink: (text: string) => void): ScreenedStream {
  // No policy, nothing to hold back: every piece goes out as it comes.
  if (!safety) {
    let passed = '';
    return {
      push(text) {
        if (!text) return;
        passed += text;
        sink(text);
      },
      emitted: () => passed,
    };
  }
  let received = '';
  let emitted = '';
  let stopped = false;
  return {
    push(text) {
      if (stopped || !text) return;
      received += text;
      const lastSpace = Math.max(received.lastIndexOf(' '), received.lastIndexOf('\n'), received.lastIndexOf('\t'));
      if (lastSpace <= 0) return;
      const safe = received.slice(0, lastSpace).replace(GROWING_NUMBER, '').trimEnd();
      if (safe.length <= emitted.length) return;
      const decision = safety.check(safe, { channel, direction: 'output' });
      if (decision.action !== 'allow' || decision.text !== safe) {
        stopped = true;
        return;
      }
      // Whitespace between words goes out with the word after it, so what went out is a prefix of the reply.
      sink(safe.slice(emitted.length));
      emitted = safe;
    },
    emitted: () => emitted,
  };
}
