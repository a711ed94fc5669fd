/**
 * Who may use the status page and the API.
 *
 * - Appliance mode: every request (except public routes such as /healthz and the web app's files) needs
 *   `Authorization: Bearer <http.token>`, HTTP Basic `admin:<password>` checked against http.password_hash
 *   (or the hash the first-run setup stored), a session cookie from the login form (POST /api/login), or
 *   `?token=<http.token>` (for a browser: the answer sets the session cookie so the page and its event
 *   stream work without the token in the URL). A 401 challenges only Bearer, so a browser never shows its
 *   Basic dialog: the web app shows its own login form.
 * - Local mode on a loopback address: open, but only to requests whose Host header names loopback, so a
 *   web page elsewhere cannot reach it by DNS rebinding.
 * - Local mode on any other address: auth as in appliance mode when a token or password is configured,
 *   open otherwise (the server logs a warning at start).
 *
 * Password and token checks go through a LoginGuard (../auth/login-guard.ts), shared in design with the MQTT
 * broker: bounded scrypt, backoff per address (and for Basic per username), cheap repeats of a verified
 * Basic password. A client in backoff gets 429 with Retry-After (seconds), a full hashing queue 503 with
 * Retry-After: both say "retry later" to scripts and HTTP libraries that honour Retry-After, where a 401
 * would tell them the credentials are wrong. Token compares are constant time (SHA-256 digests of both
 * sides through timingSafeEqual, so the length does not leak either).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { LoginGuard, type LoginResult } from '../auth/login-guard.js';
import { verifyPassword } from '../auth/password.js';
import type { Config } from '../config/schema.js';
import { type Principal, principalWithFilters } from '../operations/principal.js';
import { sendJson } from './respond.js';

export const SESSION_COOKIE = 'clawbox_session';
export const BASIC_USER = 'admin';
const SESSION_TTL_MS = 12 * 60 * 60 * 1000;
const MAX_SESSIONS = 1000;

export type AuthVia = 'open' | 'bearer' | 'basic' | 'session' | 'query';

export type AuthOutcome = { ok: true; via: AuthVia; setCookie?: string; principal: Principal } | AuthRefusal;

type AuthRefusal = { ok: false; reason: 'missing' | 'wrong' | 'host' } | { ok: false; reason: 'backoff' | 'busy'; retryAfterMs: number };

/** A check's answer before the caller is named. */
type Checked = { ok: true; via: AuthVia; setCookie?: string } | AuthRefusal;

/** Answers a login refused for backoff (429) or a full hashing queue (503), with Retry-After in seconds. */
export function sendLoginThrottled(res: ServerResponse, outcome: { reason: 'backoff' | 'busy'; retryAfterMs: number }): void {
  const seconds = Math.max(1, Math.ceil(outcome.retryAfterMs / 1000));
  res.setHeader('Retry-After', String(seconds));
  const message =
    outcome.reason === 'backoff' ? `too many failed logins; retry in ${seconds} s` : 'too many logins in progress; retry shortly';
  sendJson(res, outcome.reason === 'backoff' ? 429 : 503, {
    status: 'error',
    error: { code: 'BUSY', message, retry_after_ms: outcome.retryAfterMs },
  });
}

function refused(result: Exclude<LoginResult, { ok: true }>): AuthRefusal {
  if (result.reason === 'wrong') return { ok: false, reason: 'wrong' };
  return { ok: false, reason: result.reason, retryAfterMs: result.retryAfterMs };
}

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
  #passwordHash: string | undefined;
  /** Session cookies carry Secure: the server speaks HTTPS. */
  readonly #secure: boolean;
  readonly #permissions: readonly string[];
  readonly #sessions = new Map<string, number>();
  readonly guard: LoginGuard;

  constructor(config: Pick<Config, 'mode' | 'http'>, guard: LoginGuard = new LoginGuard(), options: { secure?: boolean } = {}) {
    this.guard = guard;
    this.#secure = options.secure ?? false;
    this.#token = config.http.token;
    this.#passwordHash = config.http.password_hash;
    this.#permissions = config.http.permissions ?? ['#'];
    const configured = this.#token !== undefined || this.#passwordHash !== undefined;
    this.#loopback = isLoopbackHost(config.http.host);
    this.required = config.mode === 'appliance' || (!this.#loopback && configured);
  }

  /** The challenge sent with a 401: Bearer only, so browsers leave the login to the web app's form. */
  challenges(): string[] {
    return ['Bearer realm="clawbox"'];
  }

  /** The admin password hash the first-run setup stored (config has none in that case). */
  usePasswordHash(hash: string): void {
    this.#passwordHash = hash;
  }

  /** Whether any credential exists to log in with (false on an appliance before its first-run setup). */
  get hasCredentials(): boolean {
    return this.#token !== undefined || this.#passwordHash !== undefined;
  }

  /**
   * The login form: the secret is the token or the admin password. Answers a session cookie to set, or
   * the refusal (wrong, backoff, busy) through the same guard as every other login.
   */
  async login(secret: string, address: string | undefined): Promise<{ ok: true; setCookie: string } | AuthRefusal> {
    if (!this.required) return { ok: true, setCookie: this.newSessionCookie() };
    const hash = this.#passwordHash;
    // One attempt for both secrets, so a wrong entry counts once against the address.
    const result = await this.guard.attempt({
      realm: 'http',
      username: BASIC_USER,
      address,
      secret,
      credential: hash ?? 'token',
      cheap: hash === undefined || secret === '',
      check: async () => this.#tokenMatches(secret) || (hash !== undefined && secret !== '' && (await verifyPassword(secret, hash).catch(() => false))),
    });
    return result.ok ? { ok: true, setCookie: this.newSessionCookie() } : refused(result);
  }

  /** Forgets the session a cookie names; answers the cookie that clears it in the browser. */
  logout(req: IncomingMessage): string {
    const session = parseCookies(req.headers.cookie).get(SESSION_COOKIE);
    if (session !== undefined) this.#sessions.delete(session);
    return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${this.#secure ? '; Secure' : ''}`;
  }

  /** The caller of an accepted request as the front door sees it (see principalOf). */
  async check(req: IncomingMessage, url: URL): Promise<AuthOutcome> {
    const outcome = await this.#check(req, url);
    return outcome.ok ? { ...outcome, principal: this.principalOf(outcome.via) } : outcome;
  }

  /**
   * Loopback in local mode without auth: the machine's own user, who may do everything. Anyone else holds
   * http.permissions: the token (also through its session cookie), the admin password, or an open
   * non-loopback server.
   */
  principalOf(via: AuthVia): Principal {
    if (via === 'open') return this.#loopback ? principalWithFilters('http', 'local', ['#']) : principalWithFilters('http', 'anonymous', this.#permissions);
    return principalWithFilters('http', via === 'basic' ? BASIC_USER : 'token', this.#permissions);
  }

  async #check(req: IncomingMessage, url: URL): Promise<Checked> {
    if (!this.required) {
      // Open only to loopback names: a DNS-rebound name reaching 127.0.0.1 is refused.
      if (!this.#loopback) return { ok: true, via: 'open' };
      const host = req.headers.host;
      return host !== undefined && isLoopbackHost(hostOf(host)) ? { ok: true, via: 'open' } : { ok: false, reason: 'host' };
    }
    const address = req.socket.remoteAddress;
    const header = req.headers.authorization;
    if (header) {
      const space = header.indexOf(' ');
      const scheme = (space > 0 ? header.slice(0, space) : header).toLowerCase();
      const value = space > 0 ? header.slice(space + 1).trim() : '';
      if (scheme === 'bearer') return this.#tokenLogin(value, address, 'bearer');
      if (scheme === 'basic') return this.#basic(value, address);
      return { ok: false, reason: 'wrong' };
    }
    const session = parseCookies(req.headers.cookie).get(SESSION_COOKIE);
    if (session !== undefined && this.#sessionValid(session)) return { ok: true, via: 'session' };
    const queryToken = url.searchParams.get('token');
    if (queryToken !== null) {
      const outcome = await this.#tokenLogin(queryToken, address, 'query');
      return outcome.ok ? { ...outcome, setCookie: this.newSessionCookie() } : outcome;
    }
    return { ok: false, reason: 'missing' };
  }

  #tokenMatches(candidate: string): boolean {
    return this.#token !== undefined && candidate !== '' && sameSecret(candidate, this.#token);
  }

  /** A token has no username: only its address is tracked, so guessing cannot lock out other token users. */
  async #tokenLogin(candidate: string, address: string | undefined, via: 'bearer' | 'query'): Promise<Checked> {
    const result = await this.guard.attempt({
      realm: 'http',
      address,
      secret: candidate,
      credential: 'token',
      cheap: true,
      check: async () => this.#tokenMatches(candidate),
    });
    return result.ok ? { ok: true, via } : refused(result);
  }

  async #basic(encoded: string, address: string | undefined): Promise<Checked> {
    const decoded = Buffer.from(encoded, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return { ok: false, reason: 'wrong' };
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const hash = this.#passwordHash;
    // No password configured: the token also works as the Basic password (handy for curl -u admin:TOKEN).
    const cheap = hash === undefined || user !== BASIC_USER || password === '';
    const result = await this.guard.attempt({
      realm: 'http',
      username: user,
      address,
      secret: password,
      credential: hash ?? 'token',
      cheap,
      check: async () => {
        if (user !== BASIC_USER || password === '') return false;
        if (hash === undefined) return this.#tokenMatches(password);
        return verifyPassword(password, hash).catch(() => false);
      },
    });
    return result.ok ? { ok: true, via: 'basic' } : refused(result);
  }

  #sessionValid(id: string): boolean {
    const expires = this.#sessions.get(id);
    if (expires === undefined) return false;
    if (expires > Date.now()) return true;
    this.#sessions.delete(id);
    return false;
  }

  /** A new session; the Set-Cookie value (HttpOnly, SameSite=Strict, and Secure over HTTPS). */
  newSessionCookie(): string {
    const now = Date.now();
    if (this.#sessions.size >= MAX_SESSIONS) {
      for (const [id, expires] of this.#sessions) if (expires <= now) this.#sessions.delete(id);
      // Still full: drop the oldest (Map keeps insertion order).
      while (this.#sessions.size >= MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value!);
    }
    const id = randomBytes(32).toString('base64url');
    this.#sessions.set(id, now + SESSION_TTL_MS);
    return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${SESSION_TTL_MS / 1000}${this.#secure ? '; Secure' : ''}`;
  }
}
