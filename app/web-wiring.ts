/**
 * What the web app needs beyond the features' own routes: where its built files are, the log tail and
 * audit operations with their HTTP routes, and the JSON Schema of one `devices:` entry (the same schema
 * the config file is validated with), from which the app generates its add/edit device form.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { auditQueryOperation } from '../runtime/audit/query-operation.js';
import type { HttpServer, RouteRequest } from '../runtime/http/http-server.js';
import { logsTailOperation } from '../runtime/log-tail-operation.js';
import { LogTail } from '../runtime/logging.js';
import { okEnvelope } from '../runtime/operations/envelope.js';
import type { FrontDoor } from '../runtime/operations/front-door.js';
import { configSchema } from './config.js';

/**
 * The built web app: `dist/web` beside the compiled app (dist/app/../web), or, when the sources run
 * through tsx, the checkout's dist/web. Undefined when neither was built (the page then says so).
 */
export function webRoot(): string | undefined {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const candidate of [path.join(here, '..', 'web'), path.join(here, '..', 'dist', 'web')]) {
    if (existsSync(path.join(candidate, 'index.html'))) return candidate;
  }
  return undefined;
}

/** Query parameters a route passes on; numbers become numbers so the operation's schema can check them. */
function queryInput(url: URL, names: readonly string[], numeric: readonly string[]): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const name of names) {
    const value = url.searchParams.get(name);
    if (value === null || value === '') continue;
    input[name] = numeric.includes(name) && /^\d{1,15}$/.test(value) ? Number(value) : value;
  }
  return input;
}

export function registerWebRoutes(options: { http: HttpServer; frontDoor: FrontDoor; stateDir: string; tail: LogTail | undefined }): void {
  const { http, frontDoor } = options;
  frontDoor.register(logsTailOperation(options.tail ?? new LogTail()));
  frontDoor.register(auditQueryOperation(options.stateDir));
  const run = (operation: string, input: unknown, request: RouteRequest) =>
    frontDoor.invoke(operation, input, { principal: request.principal, source: 'http', signal: request.signal });
  http.addRoute('GET', '/api/logs', async (request) =>
    okEnvelope(await run('logs.tail', queryInput(request.url, ['after', 'level', 'component', 'limit'], ['after', 'limit']), request)),
  );
  http.addRoute('GET', '/api/audit', async (request) =>
    okEnvelope(await run('audit.query', queryInput(request.url, ['device', 'op', 'principal', 'since', 'text', 'limit'], ['limit']), request)),
  );
  const deviceEntry = (configSchema.properties as Record<string, { items?: unknown }>).devices?.items;
  http.addRoute('GET', '/api/schema/device-entry', () => okEnvelope(deviceEntry ?? {}));
}
