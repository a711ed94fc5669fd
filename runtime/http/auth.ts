/**
 * Who may use the status page and the API.
 *
 * - Appliance mode: every request (except public routes such as /healthz) needs `Authorization: Bearer
 *   <http.token>`, HTTP Basic `admin:<password>` checked against http.password_hash, a session cookie, or
 *   `?token=<http.token>` (for a browser: the answer sets the session cookie so the page and its event
 *   stream work without the token in the URL).
 * - Local mode on a loopback address: open, but only to requests whose Host header names loopback, so a
 *   web page elsewhere cannot reach it by DNS rebinding.
 * - Local mode on any other address: auth as in appliance mode when a token or password is configured,
 *   open otherwise (the server logs a warning at start).
 *
 * scrypt is deliberately slow (~50 ms), so successful Basic credentials are remembered for a minute (by
 * their SHA-256, never in clear) and verifications run one at a time, so a flood of wrong passwords takes
 * one core, not all of them.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { verifyPassword } from '../auth/password.js';
import type { Config } from '../config/schema.js';

export const SESSION_COOKIE = 'clawbox_session';
export const BASIC_USER = 'admin';
const SESSION_TTL_MS = 12 * 60 * 60 * 1000;
const BASIC_CACHE_TTL_MS = 60 * 1000;
const MAX_SESSIONS = 1000;
const MAX_CACHED = 100;

export type AuthOutcome =
  | { ok: true; via: 'open' | 'bearer' | 'basic' | 'session' | 'query'; setCookie?: string }
  | { ok: false; reason: 'missing' | 'wrong' | 'host' };

export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost' || bare.endsWith('.localhost')) return true;
  if (bare === '::1') return true;
  const v4 = bare.startsWith('::ffff:') ? bare.slice(7) : bare;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/** The host part of a Host header value (`[::1]:8080` -> `::1`, `localhost:80` -> `localhost`). */
function hostOf(header: string): string {
  if (header.startsWith('[')) return header.slice(1, header.indexOf(']') >>> 0);
  const colon = header.lastIndexOf(':');
  return colon >= 0 ? header.slice(0, colon) : header;
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/** Constant-time comparison of two strings of any length. */
function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return out;
}

export class HttpAuth {
  readonly required: boolean;
  /** Bound to loopback: the Host check against DNS rebinding applies to open requests. */
  readonly #loopback: boolean;
  readonly #token: string | undefined;
  readonly #passwordHash: string | undefined;
  readonly #sessions = new Map<string, number>();
  readonly #basicCache = new Map<string, number>();
  #verifyQueue: Promise<unknown> = Promise.resolve();

  constructor(config: Pick<Config, 'mode' | 'http'>) {
    this.#token = config.http.token;
    this.#passwordHash = config.http.password_hash;
    const configured = this.#token !== undefined || this.#passwordHash !== undefined;
    this.#loopback = isLoopbackHost(config.http.host);
    this.required = config.mode === 'appliance' || (!this.#loopback && configured);
  }

  /** Challenges sent with a 401: Basic first so a browser shows its login prompt. */
  challenges(): string[] {
    return ['Basic realm="clawbox", charset="UTF-8"', 'Bearer realm="clawbox"'];
  }

  async check(req: IncomingMessage, url: URL): Promise<AuthOutcome> {
    if (!this.required) {
      // Open only to loopback names: a DNS-rebound name reaching 127.0.0.1 is refused.
      if (!this.#loopback) return { ok: true, via: 'open' };
      const host = req.headers.host;
      return host !== undefined && isLoopbackHost(hostOf(host)) ? { ok: true, via: 'open' } : { ok: false, reason: 'host' };
    }
    const header = req.headers.authorization;
    if (header) {
      const space = header.indexOf(' ');
      const scheme = (space > 0 ? header.slice(0, space) : header).toLowerCase();
      const value = space > 0 ? header.slice(space + 1).trim() : '';
      if (scheme === 'bearer') return this.#tokenMatches(value) ? { ok: true, via: 'bearer' } : { ok: false, reason: 'wrong' };
      if (scheme === 'basic') return (await this.#basicMatches(value)) ? { ok: true, via: 'basic' } : { ok: false, reason: 'wrong' };
      return { ok: false, reason: 'wrong' };
    }
    const session = parseCookies(req.headers.cookie).get(SESSION_COOKIE);
    if (session !== undefined && this.#sessionValid(session)) return { ok: true, via: 'session' };
    const queryToken = url.searchParams.get('token');
    if (queryToken !== null) {
      if (!this.#tokenMatches(queryToken)) return { ok: false, reason: 'wrong' };
      return { ok: true, via: 'query', setCookie: this.#newSessionCookie() };
    }
    return { ok: false, reason: 'missing' };
  }

  #tokenMatches(candidate: string): boolean {
    return this.#token !== undefined && candidate !== '' && sameSecret(candidate, this.#token);
  }

  async #basicMatches(encoded: string): Promise<boolean> {
    const decoded = Buffer.from(encoded, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    if (user !== BASIC_USER || password === '') return false;
    const key = digest(decoded).toString('base64');
    const now = Date.now();
    const cached = this.#basicCache.get(key);
    if (cached !== undefined && cached > now) return true;
    if (this.#passwordHash === undefined) {
      // No password configured: the token also works as the Basic password (handy for curl -u admin:TOKEN).
      return this.#tokenMatches(password);
    }
    const hash = this.#passwordHash;
    const verified = this.#verifyQueue.then(() => verifyPassword(password, hash));
    this.#verifyQueue = verified.catch(() => false);
    const ok = await verified.catch(() => false);
    if (ok) {
      if (this.#basicCache.size >= MAX_CACHED) this.#basicCache.clear();
      this.#basicCache.set(key, now + BASIC_CACHE_TTL_MS);
    }
    return ok;
  }

  #sessionValid(id: string): boolean {
    const expires = this.#sessions.get(id);
    if (expires === undefined) return false;
    if (expires > Date.now()) return true;
    this.#sessions.delete(id);
    return false;
  }

  #newSessionCookie(): string {
    const now = Date.now();
    if (this.#sessions.size >= MAX_SESSIONS) {
      for (const [id, expires] of this.#sessions) if (expires <= now) this.#sessions.delete(id);
      // Still full: drop the oldest (Map keeps insertion order).
      while (this.#sessions.size >= MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value!);
    }
    const id = randomBytes(32).toString('base64url');
    this.#sessions.set(id, now + SESSION_TTL_MS);
    return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${SESSION_TTL_MS / 1000}`;
  }
}
