/**
 * A small router: method + path pattern -> handler. Patterns are literal segments and `:name` segments
 * that match one non-empty path segment (percent-decoded into `params.name`), e.g. `/api/devices/:id`.
 * No wildcards, no regexes: what a route matches is obvious from its pattern.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../operations/principal.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RouteRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly params: Readonly<Record<string, string>>;
  /** Who asks (see auth.ts): run operations as this caller. Public routes get a caller with no permissions. */
  readonly principal: Principal;
  /** Aborted when the client goes away before its answer was sent: work for it should stop. */
  readonly signal: AbortSignal;
  /**
   * Reads the body as JSON, at most `limitBytes` (default 1 MiB): PAYLOAD_TOO_LARGE past it,
   * PAYLOAD_INVALID for bad JSON. Validate the shape with the operation's schema (front door) or
   * runtime/operations/validator.ts before acting on it.
   */
  json(limitBytes?: number): Promise<unknown>;
}

/**
 * A handler either writes `res` itself (streams, SSE, other content types) or returns a value, which is
 * sent as 200 JSON. Throwing a ClawboxError answers with its code and HTTP status as
 * `{"status":"error","error":{"code","message"}}`; anything else thrown is a 500 INTERNAL.
 */
export type RouteHandler = (request: RouteRequest) => unknown;

export interface RouteOptions {
  /** Serve without authentication even where auth is required (only /healthz does this). */
  public?: boolean;
}

export interface Route {
  readonly method: HttpMethod;
  readonly pattern: string;
  readonly handler: RouteHandler;
  readonly options: RouteOptions;
  readonly segments: readonly string[];
}

export type RouteMatch =
  | { kind: 'found'; route: Route; params: Record<string, string> }
  | { kind: 'method-not-allowed'; allowed: HttpMethod[] }
  | { kind: 'not-found' };

const PATTERN = /^\/([A-Za-z0-9._~-]+|:[A-Za-z_][A-Za-z0-9_]*)?(\/([A-Za-z0-9._~-]+|:[A-Za-z_][A-Za-z0-9_]*))*$/;

function split(path: string): string[] {
  return path === '/' ? [] : path.slice(1).split('/');
}

export class Router {
  readonly #routes: Route[] = [];

  /** Adds a route; returns a function that removes it. Throws on a bad pattern or a duplicate. */
  add(method: HttpMethod, pattern: string, handler: RouteHandler, options: RouteOptions = {}): () => void {
    if (!PATTERN.test(pattern)) throw new Error(`bad route pattern "${pattern}"`);
    const segments = split(pattern);
    const shape = (s: readonly string[]) => s.map((seg) => (seg.startsWith(':') ? ':' : seg)).join('/');
    if (this.#routes.some((r) => r.method === method && shape(r.segments) === shape(segments))) {
      throw new Error(`route ${method} ${pattern} is registered twice`);
    }
    const route: Route = { method, pattern, handler, options, segments };
    this.#routes.push(route);
    return () => {
      const at = this.#routes.indexOf(route);
      if (at >= 0) this.#routes.splice(at, 1);
    };
  }

  /** HEAD is answered by the GET route (node:http drops the body). Literal routes win over `:param` ones. */
  match(method: string, pathname: string): RouteMatch {
    const wanted = method === 'HEAD' ? 'GET' : method;
    const parts = split(pathname);
    const allowed = new Set<HttpMethod>();
    let best: { route: Route; params: Record<string, string>; literals: number } | undefined;
    for (const route of this.#routes) {
      const params = matchSegments(route.segments, parts);
      if (!params) continue;
      allowed.add(route.method);
      if (route.method !== wanted) continue;
      const literals = route.segments.filter((s) => !s.startsWith(':')).length;
      if (!best || literals > best.literals) best = { route, params, literals };
    }
    if (best) return { kind: 'found', route: best.route, params: best.params };
    if (allowed.size > 0) return { kind: 'method-not-allowed', allowed: [...allowed] };
    return { kind: 'not-found' };
  }
}

function matchSegments(pattern: readonly string[], parts: readonly string[]): Record<string, string> | null {
  if (pattern.length !== parts.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const want = pattern[i]!;
    const got = parts[i]!;
    if (want.startsWith(':')) {
      if (got === '') return null;
      try {
        params[want.slice(1)] = decodeURIComponent(got);
      } catch {
        return null; // malformed percent-encoding matches nothing
      }
    } else if (want !== got) {
      return null;
    }
  }
  return params;
}
