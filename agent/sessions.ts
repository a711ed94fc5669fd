/**
 * Conversation state per session id: a bounded history (turns and characters) and idle expiry, so a
 * chat that goes quiet is forgotten and no session grows without bound. The clock is injectable.
 */

export interface Turn {
  user: string;
  assistant: string;
  at: number;
}

export interface SessionOptions {
  /** Turns kept per session (oldest dropped first). */
  maxTurns?: number;
  /** Characters of history kept per session. */
  maxChars?: number;
  /** A session idle this long is forgotten. */
  idleMs?: number;
  /** Sessions kept at most; the least recently used goes first. */
  maxSessions?: number;
  now?: () => number;
}

interface Session {
  turns: Turn[];
  lastUsed: number;
  /** What the fast path needs for the next turn ("which one?" pending, the devices "it" means). */
  context?: unknown;
}

export class SessionStore {
  readonly #sessions = new Map<string, Session>();
  readonly #maxTurns: number;
  readonly #maxChars: number;
  readonly #idleMs: number;
  readonly #maxSessions: number;
  readonly #now: () => number;
  /** Called with the ids of sessions that were dropped (the engine forgets their sequence affinity). */
  onExpire: ((id: string) => void) | null = null;

  constructor(options: SessionOptions = {}) {
    this.#maxTurns = options.maxTurns ?? 6;
    this.#maxChars = options.maxChars ?? 1500;
    this.#idleMs = options.idleMs ?? 10 * 60_000;
    this.#maxSessions = options.maxSessions ?? 256;
    this.#now = options.now ?? Date.now;
  }

  #live(id: string): Session | undefined {
    const session = this.#sessions.get(id);
    if (session && this.#now() - session.lastUsed > this.#idleMs) {
      this.#drop(id);
      return undefined;
    }
    return session;
  }

  #drop(id: string): void {
    if (this.#sessions.delete(id)) this.onExpire?.(id);
  }

  history(id: string): readonly Turn[] {
    return this.#live(id)?.turns ?? [];
  }

  /** The fast path's context from the last turn, or undefined. */
  context(id: string): unknown {
    return this.#live(id)?.context;
  }

  /** Appends a turn; `context` replaces the previous turn's (absent: cleared, so a stale "which one?" is not answered later). */
  append(id: string, user: string, assistant: string, context?: unknown): void {
    this.sweep();
    let session = this.#live(id);
    if (!session) {
      session = { turns: [], lastUsed: this.#now() };
      this.#sessions.set(id, session);
    }
    // Re-insert so Map order is least-recently-used first.
    this.#sessions.delete(id);
    this.#sessions.set(id, session);
    session.lastUsed = this.#now();
    session.context = context;
    session.turns.push({ user, assistant, at: session.lastUsed });
    while (session.turns.length > this.#maxTurns) session.turns.shift();
    while (session.turns.length > 1 && session.turns.reduce((n, t) => n + t.user.length + t.assistant.length, 0) > this.#maxChars) {
      session.turns.shift();
    }
    while (this.#sessions.size > this.#maxSessions) this.#drop(this.#sessions.keys().next().value as string);
  }

  /** Drops idle sessions; returns how many. */
  sweep(): number {
    let dropped = 0;
    const now = this.#now();
    for (const [id, session] of this.#sessions) {
      if (now - session.lastUsed > this.#idleMs) {
        this.#drop(id);
        dropped++;
      }
    }
    return dropped;
  }

  delete(id: string): void {
    this.#drop(id);
  }

  get size(): number {
    return this.#sessions.size;
  }
}
