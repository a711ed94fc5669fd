/**
 * Streams the free-text part of a tool call while it is generated. The model answers
 * `{"device": "none", "reply": "<text>"}` (see prompt.ts); the raw pieces it produces are JSON, so this
 * reads them as they come and passes on only the decoded characters of the reply string. A device command
 * has no reply text: nothing is streamed for it (its answer is whole when the action ran).
 *
 * What it passes on is always a prefix of the reply the agent answers with (`reply.trim()`): leading
 * whitespace is skipped and trailing whitespace is held until something follows it.
 */
import { NO_DEVICE } from './prompt.js';

const REPLY_HEAD = new RegExp(`^\\s*\\{\\s*"device"\\s*:\\s*"${NO_DEVICE}"\\s*,\\s*"reply"\\s*:\\s*"`);
const OTHER_DEVICE = new RegExp(`"device"\\s*:\\s*"(?!${NO_DEVICE}")[^"]*"`);
/** Longest raw text read before the head is known (more means it is not a reply). */
const MAX_HEAD = 64;

/**
 * `options.head`: what precedes the reply string (default: a "none" tool call); `options.other`: output
 * that shows it is not a reply (default: a device id other than "none").
 */
export function replyTextStream(sink: (text: string) => void, options: { head?: RegExp; other?: RegExp } = {}): (piece: string) => void {
  const headPattern = options.head ?? REPLY_HEAD;
  let raw = '';
  let state: 'head' | 'body' | 'done' = 'head';
  /** Body characters not decoded yet (an escape cut between two pieces). */
  let pending = '';
  let started = false;
  let heldSpace = '';
  let highSurrogate = '';

  const emit = (chars: string) => {
    let out = '';
    for (const ch of chars) {
      if (/\s/.test(ch)) {
        if (started) heldSpace += ch;
        continue;
      }
      out += heldSpace + ch;
      heldSpace = '';
      started = true;
    }
    if (out) sink(out);
  };

  const decode = () => {
    let out = '';
    let i = 0;
    while (i < pending.length) {
      const ch = pending[i]!;
      if (ch === '"') {
        state = 'done';
        break;
      }
      if (ch !== '\\') {
        out += ch;
        i++;
        continue;
      }
      const kind = pending[i + 1];
      if (kind === undefined) break; // the escape continues in the next piece
      if (kind === 'u') {
        const hex = pending.slice(i + 2, i + 6);
        if (hex.length < 4) break;
        const code = Number.parseInt(hex, 16);
        if (Number.isNaN(code)) {
          state = 'done';
          break;
        }
        const char = String.fromCharCode(code);
        if (code >= 0xd800 && code <= 0xdbff) highSurrogate = char;
        else {
          out += highSurrogate + char;
          highSurrogate = '';
        }
        i += 6;
        continue;
      }
      const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', '"': '"', '\\': '\\', '/': '/' };
      out += simple[kind] ?? '';
      i += 2;
    }
    pending = state === 'done' ? '' : pending.slice(i);
    if (out) emit(out);
  };

  return (piece: string) => {
    if (state === 'done' || !piece) return;
    if (state === 'head') {
      raw += piece;
      const head = headPattern.exec(raw);
      if (!head) {
        // A device command (or another kind of output), or not enough text yet to tell.
        if (raw.length > MAX_HEAD || (options.other ?? OTHER_DEVICE).test(raw)) state = 'done';
        return;
      }
      state = 'body';
      pending = raw.slice(head[0].length);
      raw = '';
    } else {
      pending += piece;
    }
    decode();
  };
}
