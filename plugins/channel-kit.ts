/**
 * What every channel plugin needs besides its platform library: splitting a long reply at the platform's
 * limit, retrying a send the platform rate-limited (429 with retry-after), and a reconnect backoff. Pure
 * functions and small classes, so the platform adapters stay about their platform.
 */

/**
 * Splits a text into parts of at most `limit` characters (UTF-16 units, as the platforms count them): at a
 * paragraph break, else a line break, else a space, else anywhere but inside a surrogate pair. Never
 * returns an empty part; an empty text gives one empty part.
 */
export function splitMessage(text: string, limit: number): string[] {
  if (limit < 2) throw new RangeError('limit must be at least 2');
  if (text.length <= limit) return [text];
  const parts: string[] = [];
  let rest = text;
  while (rest.length > limit) {
    const window = rest.slice(0, limit + 1);
    let cut = -1;
    for (const separator of ['\n\n', '\n', ' ']) {
      const at = window.lastIndexOf(separator);
      // A cut very early would leave tiny parts; take it only past a quarter of the window.
      if (at > limit / 4) {
        cut = at;
        break;
      }
    }
    let head: string;
    if (cut > 0) {
      head = rest.slice(0, cut);
      rest = rest.slice(cut).replace(/^\s+/, '');
    } else {
      let at = limit;
      const code = rest.charCodeAt(at - 1);
      if (code >= 0xd800 && code <= 0xdbff) at -= 1; // keep a surrogate pair together
      head = rest.slice(0, at);
      rest = rest.slice(at);
    }
    head = head.replace(/\s+$/, '');
    if (head !== '') parts.push(head);
  }
  if (rest !== '') parts.push(rest);
  return parts;
}

/** An error the platform asked to retry later; `retryAfterMs` is what it asked for (none: use backoff). */
export class RetryLater extends Error {
  constructor(
    message: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(message);
  }
}

export interface RetryOptions {
  /** How many times a rate-limited call is tried in all. */
  attempts?: number;
  /** The longest wait this side accepts; a platform asking for more fails the send. */
  maxWaitMs?: number;
  signal?: AbortSignal;
  /** Turns the platform's error into RetryLater when it means "later" (429, a 5xx); else null. */
  classify(error: unknown): RetryLater | null;
  /** Told of each wait (for logs and tests). */
  onWait?(ms: number, error: RetryLater): void;
}

/** Runs `task`, waiting out rate limits and transient failures as the platform asks; rethrows anything else. */
export async function withRetry<T>(task: () => Promise<T>, options: RetryOptions): Promise<T> {
  const attempts = options.attempts ?? 5;
  const maxWait = options.maxWaitMs ?? 60_000;
  let backoff = 500;
  for (let attempt = 1; ; attempt++) {
    try {
      return await task();
    } catch (error) {
      const later = options.classify(error);
      if (!later || attempt >= attempts) throw error;
      const wait = later.retryAfterMs ?? backoff;
      if (wait > maxWait) throw error;
      backoff = Math.min(backoff * 2, maxWait);
      options.onWait?.(wait, later);
      await sleep(wait, options.signal);
    }
  }
}

/** Exponential backoff for reconnecting: 1 s, 2 s, 4 s ... up to `maxMs`; reset() after a good connection. */
export class Backoff {
  #failures = 0;
  constructor(
    readonly initialMs = 1000,
    readonly maxMs = 60_000,
  ) {}

  next(): number {
    const ms = Math.min(this.maxMs, this.initialMs * 2 ** this.#failures);
    this.#failures++;
    return ms;
  }

  reset(): void {
    this.#failures = 0;
  }
}

/** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    function onAbort() {
      clearTimeout(timer);
      reject(signal?.reason);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** What a channel says when a sender sends something it cannot pass on. */
export const MEDIA_REFUSED = 'Pictures, voice messages and files are not supported here yet; please send text.';
