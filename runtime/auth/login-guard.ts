/**
 * Password and token logins for the MQTT broker and the HTTP API pass through a LoginGuard:
 *
 * - Bounded hashing: scrypt runs on libuv's thread pool, which file, DNS and zlib work share. At most
 *   MAX_CONCURRENT_HASHES verifications run at once, at most MAX_QUEUED_HASHES wait, and at most
 *   MAX_PENDING_PER_ADDRESS of those come from one address. Anything beyond is refused at once ('busy')
 *   instead of queueing without end. The limiter is process-wide (one pool), so MQTT and HTTP share it.
 * - Backoff: after FREE_FAILURES failed logins of one username, or from one address, each further failure
 *   doubles a window (BACKOFF_BASE_MS up to BACKOFF_MAX_MS) in which that username or address is refused
 *   without hashing ('backoff'). A successful login clears both records; a record with no failure for
 *   FORGET_MS is dropped. IPv6 addresses count per /64, since one host usually holds a whole /64.
 *   A backoff refusal is answered after min(window, REFUSAL_DELAY_MS), for at most MAX_DELAYED_REFUSALS
 *   attempts at a time (beyond that at once): an attacker's retry loop then costs a timer, not a stream of
 *   connections each the broker must accept, parse and answer.
 * - Cheap reconnects: a verified (realm, username, address, password, stored hash) is remembered for
 *   CACHE_TTL_MS as an HMAC under a per-process random key (never the password), so a device that
 *   reconnects skips scrypt and the queue. A hit also passes a username backoff, because it proves the
 *   password from the address that proved it before, so an attack on a username from elsewhere does not lock
 *   out the devices already using it (a hit clears the address record only, so the attack stays slowed).
 *   It never passes an address backoff: an attacker at that address would otherwise get cheap guesses
 *   against the cache. The stored hash is in the key, so a password change in the config ends old entries.
 *
 * Every map a client can grow is bounded (MAX_TRACKED_ADDRESSES, MAX_TRACKED_USERNAMES, MAX_CACHED): when
 * full, stale entries go first, then the one with the oldest failure (or oldest cache entry). Keys are at
 * most MAX_KEY_CHARS (longer usernames are keyed by their SHA-256). An attacker who cycles through more
 * addresses than the bound can evict its own address records; the username records still hold it back.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';

export const MAX_CONCURRENT_HASHES = 1;
export const MAX_QUEUED_HASHES = 16;
export const MAX_PENDING_PER_ADDRESS = 4;
export const FREE_FAILURES = 5;
export const BACKOFF_BASE_MS = 1000;
export const BACKOFF_MAX_MS = 60_000;
export const FORGET_MS = 15 * 60_000;
export const MAX_TRACKED_ADDRESSES = 4096;
export const MAX_TRACKED_USERNAMES = 1024;
export const CACHE_TTL_MS = 10 * 60_000;
export const MAX_CACHED = 256;
export const REFUSAL_DELAY_MS = 1000;
export const MAX_KEY_CHARS = 128;
export const MAX_DELAYED_REFUSALS = 256;

export interface LoginGuardOptions {
  /** False turns every protection off (the benchmark's baseline); checks still run and are counted. */
  enabled: boolean;
  freeFailures: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  forgetMs: number;
  maxTrackedAddresses: number;
  maxTrackedUsernames: number;
  maxPendingPerAddress: number;
  cacheTtlMs: number;
  maxCached: number;
  refusalDelayMs: number;
  maxDelayedRefusals: number;
}

const DEFAULTS: LoginGuardOptions = {
  enabled: true,
  freeFailures: FREE_FAILURES,
  backoffBaseMs: BACKOFF_BASE_MS,
  backoffMaxMs: BACKOFF_MAX_MS,
  forgetMs: FORGET_MS,
  maxTrackedAddresses: MAX_TRACKED_ADDRESSES,
  maxTrackedUsernames: MAX_TRACKED_USERNAMES,
  maxPendingPerAddress: MAX_PENDING_PER_ADDRESS,
  cacheTtlMs: CACHE_TTL_MS,
  maxCached: MAX_CACHED,
  refusalDelayMs: REFUSAL_DELAY_MS,
  maxDelayedRefusals: MAX_DELAYED_REFUSALS,
};

let processDefaults: LoginGuardOptions = { ...DEFAULTS };

/**
 * Options for guards created from now on without explicit options (the broker's and the HTTP server's):
 * the hook for a future config section and for the benchmark's baseline. Returns the previous defaults.
 */
export function configureLoginGuards(options: Partial<LoginGuardOptions>): LoginGuardOptions {
  const previous = processDefaults;
  processDefaults = { ...DEFAULTS, ...options };
  return previous;
}

/** Runs at most `concurrency` tasks at once with at most `queueLimit` waiting; refuses the rest. */
export class HashLimiter {
  readonly concurrency: number;
  readonly queueLimit: number;
  readonly stats = { started: 0, rejected: 0, peakRunning: 0, peakQueued: 0 };
  #running = 0;
  readonly #queue: (() => void)[] = [];

  constructor(concurrency = MAX_CONCURRENT_HASHES, queueLimit = MAX_QUEUED_HASHES) {
    this.concurrency = concurrency;
    this.queueLimit = queueLimit;
  }

  get running(): number {
    return this.#running;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** The task's promise, or undefined when the queue is full (the task is not run). */
  run<T>(task: () => Promise<T>): Promise<T> | undefined {
    if (this.#running >= this.concurrency && this.#queue.length >= this.queueLimit) {
      this.stats.rejected++;
      return undefined;
    }
    return new Promise<T>((resolve, reject) => {
      const start = (): void => {
        this.#running++;
        this.stats.started++;
        this.stats.peakRunning = Math.max(this.stats.peakRunning, this.#running);
        task()
          .then(resolve, reject)
          .finally(() => {
            this.#running--;
            this.#queue.shift()?.();
          });
      };
      if (this.#running < this.concurrency) start();
      else {
        this.#queue.push(start);
        this.stats.peakQueued = Math.max(this.stats.peakQueued, this.#queue.length);
      }
    });
  }
}

/** The thread pool is one per process, so is the limiter in front of it. */
export const sharedHashLimiter = new HashLimiter();

export interface LoginStats {
  attempts: number;
  /** Password or token checks actually run (scrypt for passwords). */
  checks: number;
  cacheHits: number;
  successes: number;
  failures: number;
  refusedBackoff: number;
  refusedBusy: number;
}

const emptyStats = (): LoginStats => ({ attempts: 0, checks: 0, cacheHits: 0, successes: 0, failures: 0, refusedBackoff: 0, refusedBusy: 0 });

/** Sums over every guard of this process (for metrics and tests that reach a guard only through a component). */
export const loginTotals: LoginStats = emptyStats();

export interface LoginAttempt {
  /** Separates account namespaces sharing a guard: 'mqtt', 'http'. */
  realm: string;
  /** Undefined for a token without a username: then only the address is tracked. */
  username?: string;
  address: string | undefined;
  /** What the client presented; used only inside the cache key's HMAC. */
  secret: string;
  /** Identifies what the secret is checked against (the stored hash); part of the cache key. */
  credential: string;
  /** The real check (scrypt, or a constant-time token compare). Runs only if the attempt is admitted. */
  check: () => Promise<boolean>;
  /** Cheap checks (token compares) skip the limiter and the cache. */
  cheap?: boolean;
}

export type LoginResult =
  | { ok: true; cached: boolean }
  | { ok: false; reason: 'wrong'; /** The backoff window this failure started (0: none yet). */ backoffMs: number }
  | { ok: false; reason: 'backoff'; retryAfterMs: number; scope: 'address' | 'username' }
  | { ok: false; reason: 'busy'; retryAfterMs: number };

interface FailureRecord {
  failures: number;
  /** Refused until then. */
  until: number;
  last: number;
}

/** Failure records in order of their last failure, at most `max`; stale ones go first when full. */
class FailureRecords {
  readonly #map = new Map<string, FailureRecord>();
  readonly #max: number;
  readonly #forgetMs: number;

  constructor(max: number, forgetMs: number) {
    this.#max = max;
    this.#forgetMs = forgetMs;
  }

  get size(): number {
    return this.#map.size;
  }

  #stale(record: FailureRecord, now: number): boolean {
    return now >= record.until && now - record.last > this.#forgetMs;
  }

  /** Milliseconds this key is still refused for; 0 when it is not. */
  blockedFor(key: string, now: number): number {
    const record = this.#map.get(key);
    if (!record) return 0;
    if (this.#stale(record, now)) {
      this.#map.delete(key);
      return 0;
    }
    return Math.max(0, record.until - now);
  }

  /** Counts a failure; returns the backoff window it starts (0 while failures are free). */
  fail(key: string, now: number, options: LoginGuardOptions): number {
    let record = this.#map.get(key);
    if (record && this.#stale(record, now)) record = undefined;
    const failures = (record?.failures ?? 0) + 1;
    const over = failures - options.freeFailures;
    const window = over > 0 ? Math.min(options.backoffBaseMs * 2 ** Math.min(over - 1, 30), options.backoffMaxMs) : 0;
    this.#map.delete(key);
    this.#map.set(key, { failures, until: now + window, last: now });
    if (this.#map.size > this.#max) this.#evict(now);
    return window;
  }

  clear(key: string): void {
    this.#map.delete(key);
  }

  #evict(now: number): void {
    for (const [key, record] of this.#map) {
      if (this.#map.size <= this.#max) return;
      if (this.#stale(record, now)) this.#map.delete(key);
    }
    // Still full: drop the least recent failures (the map is in order of last failure).
    for (const key of this.#map.keys()) {
      if (this.#map.size <= this.#max) return;
      this.#map.delete(key);
    }
  }
}

function boundedKey(key: string): string {
  return key.length <= MAX_KEY_CHARS ? key : `sha256:${createHash('sha256').update(key).digest('base64')}`;
}

/** IPv6 addresses count per /64; IPv4-mapped IPv6 as IPv4; unknown as one bucket. */
export function addressKey(address: string | undefined): string {
  if (!address) return 'unknown';
  if (address.length > MAX_KEY_CHARS) return boundedKey(address);
  const bare = address.toLowerCase().replace(/%.*$/, '');
  if (bare.startsWith('::ffff:') && isIP(bare.slice(7)) === 4) return bare.slice(7);
  if (isIP(bare) !== 6) return bare;
  const [head = '', tail = ''] = bare.split('::');
  const left = head ? head.split(':') : [];
  const right = bare.includes('::') && tail ? tail.split(':') : [];
  const groups = bare.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

export class LoginGuard {
  readonly options: LoginGuardOptions;
  readonly stats: LoginStats = emptyStats();
  readonly #limiter: HashLimiter;
  readonly #addresses: FailureRecords;
  readonly #usernames: FailureRecords;
  readonly #pending = new Map<string, number>();
  readonly #cache = new Map<string, number>();
  readonly #cacheKey = randomBytes(32);
  #delayed = 0;

  constructor(options: Partial<LoginGuardOptions> = {}, limiter: HashLimiter = sharedHashLimiter) {
    this.options = { ...processDefaults, ...options };
    this.#limiter = limiter;
    this.#addresses = new FailureRecords(this.options.maxTrackedAddresses, this.options.forgetMs);
    this.#usernames = new FailureRecords(this.options.maxTrackedUsernames, this.options.forgetMs);
  }

  /** Sizes of the bounded collections, for status figures and tests. */
  sizes(): { addresses: number; usernames: number; cached: number; pendingAddresses: number; delayedRefusals: number } {
    return {
      addresses: this.#addresses.size,
      usernames: this.#usernames.size,
      cached: this.#cache.size,
      pendingAddresses: this.#pending.size,
      delayedRefusals: this.#delayed,
    };
  }

  #count(key: keyof LoginStats): void {
    this.stats[key]++;
    loginTotals[key]++;
  }

  async attempt(attempt: LoginAttempt): Promise<LoginResult> {
    this.#count('attempts');
    if (!this.options.enabled) {
      this.#count('checks');
      const ok = await attempt.check();
      this.#count(ok ? 'successes' : 'failures');
      return ok ? { ok: true, cached: false } : { ok: false, reason: 'wrong', backoffMs: 0 };
    }
    const now = Date.now();
    const address = addressKey(attempt.address);
    const user = attempt.username === undefined ? undefined : boundedKey(`${attempt.realm}\0${attempt.username}`);

    const addressWait = this.#addresses.blockedFor(address, now);
    if (addressWait > 0) return this.#refuseBackoff(addressWait, 'address');

    const cacheKey = attempt.cheap ? undefined : this.#keyOf(attempt, address);
    if (cacheKey !== undefined && this.#cached(cacheKey, now)) {
      this.#count('cacheHits');
      // Clears the address only: if a hit cleared the username, each reconnect of a known device would hand an
      // attacker elsewhere a fresh set of free failures against that username.
      this.#succeed(address, undefined);
      return { ok: true, cached: true };
    }
    const userWait = user === undefined ? 0 : this.#usernames.blockedFor(user, now);
    if (userWait > 0) return this.#refuseBackoff(userWait, 'username');

    let ok: boolean;
    if (attempt.cheap) {
      this.#count('checks');
      ok = await attempt.check();
    } else {
      const pending = this.#pending.get(address) ?? 0;
      if (pending >= this.options.maxPendingPerAddress) return this.#refuseBusy();
      const queued = this.#limiter.run(async () => {
        // Failures that finished while this one waited may have started a backoff: skip the hash then.
        const later = Date.now();
        const wait = Math.max(this.#addresses.blockedFor(address, later), user === undefined ? 0 : this.#usernames.blockedFor(user, later));
        if (wait > 0) return wait;
        this.#count('checks');
        return attempt.check();
      });
      if (!queued) return this.#refuseBusy();
      this.#pending.set(address, pending + 1);
      let outcome: boolean | number;
      try {
        outcome = await queued;
      } finally {
        const left = (this.#pending.get(address) ?? 1) - 1;
        if (left > 0) this.#pending.set(address, left);
        else this.#pending.delete(address);
      }
      if (typeof outcome === 'number') return this.#refuseBackoff(outcome, 'address');
      ok = outcome;
    }

    if (ok) {
      this.#succeed(address, user);
      if (cacheKey !== undefined) this.#remember(cacheKey, Date.now());
      return { ok: true, cached: false };
    }
    this.#count('failures');
    const later = Date.now();
    const byAddress = this.#addresses.fail(address, later, this.options);
    const byUser = user === undefined ? 0 : this.#usernames.fail(user, later, this.options);
    return { ok: false, reason: 'wrong', backoffMs: Math.max(byAddress, byUser) };
  }

  async #refuseBackoff(retryAfterMs: number, scope: 'address' | 'username'): Promise<LoginResult> {
    this.#count('refusedBackoff');
    const delay = Math.min(retryAfterMs, this.options.refusalDelayMs);
    if (delay > 0 && this.#delayed < this.options.maxDelayedRefusals) {
      this.#delayed++;
      await new Promise((resolve) => setTimeout(resolve, delay));
      this.#delayed--;
      return { ok: false, reason: 'backoff', retryAfterMs: retryAfterMs - delay, scope };
    }
    return { ok: false, reason: 'backoff', retryAfterMs, scope };
  }

  #refuseBusy(): LoginResult {
    this.#count('refusedBusy');
    // Long enough for the queue to move on; short enough that a real client retrying is not held up much.
    return { ok: false, reason: 'busy', retryAfterMs: 1000 };
  }

  #succeed(address: string, user: string | undefined): void {
    this.#count('successes');
    this.#addresses.clear(address);
    if (user !== undefined) this.#usernames.clear(user);
  }

  #keyOf(attempt: LoginAttempt, address: string): string {
    const fields = [attempt.realm, attempt.username ?? '', address, attempt.credential, attempt.secret];
    return createHmac('sha256', this.#cacheKey).update(JSON.stringify(fields)).digest('base64');
  }

  #cached(key: string, now: number): boolean {
    const expires = this.#cache.get(key);
    if (expires === undefined) return false;
    if (expires > now) return true;
    this.#cache.delete(key);
    return false;
  }

  #remember(key: string, now: number): void {
    this.#cache.delete(key);
    this.#cache.set(key, now + this.options.cacheTtlMs);
    if (this.#cache.size <= this.options.maxCached) return;
    for (const [k, expires] of this.#cache) if (expires <= now) this.#cache.delete(k);
    // Still full: the oldest entries go (the map is in insertion order).
    for (const k of this.#cache.keys()) {
      if (this.#cache.size <= this.options.maxCached) break;
      this.#cache.delete(k);
    }
  }
}
