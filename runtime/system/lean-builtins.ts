/**
 * Keeps `import ... from 'node:http'` from loading Node's bundled undici (fetch's HTTP client) and http2.
 *
 * Node 22's `http` module has three lazy getters, `WebSocket`, `CloseEvent` and `MessageEvent`, each of which
 * loads undici when read. An ES module import of a built-in module builds the module's ESM facade, and that
 * reads every export once, getters included: so the first `import http from 'node:http'` anywhere (the HTTP
 * server, the update health check) loads undici, http2 and their web streams in every process, a few MB of
 * memory an idle appliance never uses (bench/README.md, "Footprint"). A CommonJS `require('node:http')` does
 * not read them.
 *
 * This runs before any ES module imports `node:http` (app/main.ts imports it first) and removes the three
 * getters from the module. The WHATWG classes stay where the platform defines them (`globalThis.WebSocket`
 * and the others, loaded on first use as before); only `http.WebSocket`, `http.CloseEvent` and
 * `http.MessageEvent`, which nothing here uses, are gone. When a later Node no longer defines them as
 * getters, this changes nothing.
 */
import { createRequire } from 'node:module';

/** The `node:http` exports that load undici when read. */
export const UNDICI_GETTERS = ['WebSocket', 'CloseEvent', 'MessageEvent'] as const;

/** Removes `node:http`'s undici-loading getters, before its ESM facade reads them. Returns the names removed. */
export function dropUndiciGetters(http: object = createRequire(import.meta.url)('node:http')): string[] {
  const removed: string[] = [];
  for (const name of UNDICI_GETTERS) {
    const descriptor = Object.getOwnPropertyDescriptor(http, name);
    // Only a configurable getter that has not been read: a value means undici is loaded already.
    if (descriptor?.get && descriptor.configurable) {
      delete (http as Record<string, unknown>)[name];
      removed.push(name);
    }
  }
  return removed;
}

dropUndiciGetters();
