/**
 * The HTTP component (node:http, no framework): the web app, JSON API, health, metrics, and the door for
 * WebSocket upgrades owned by others (MQTT over WebSocket at broker.websocket.path). Over HTTPS when
 * http.tls says so (appliance mode by default): one port, where plain HTTP gets a redirect
 * (dual-listener.ts) and the certificate is the user's or one made at first boot (tls-certificate.ts).
 *
 * Built-in endpoints
 *   GET /             the web app (web-assets.ts; built from web/ into the folder `webRoot` names)
 *   GET /assets/:name its scripts and styles (public: the login and setup forms are part of the app)
 *   GET /api/session  public: {auth_required, authenticated, setup_required, name, tls}
 *   POST /api/login   public: {"secret"} (token or admin password) -> session cookie; POST /api/logout
 *   GET|POST /api/setup  public: the first-run setup (first-run.ts); 410 GONE once done
 *   GET /api/status   the status document as JSON (see status-document.ts)
 *   GET /api/events   Server-Sent Events: `status` documents and `warning` log entries
 *   GET /healthz      200 {"status":"serving"} when serving, 503 {"status":<state>} otherwise; never needs auth
 *   GET /metrics      Prometheus text from ctx.metrics
 *
 * Other components add endpoints without editing this file, before or after start:
 *
 *   const remove = http.addRoute('POST', '/api/devices/:id/command', async ({ params, json }) => {
 *     const body = await json(64 * 1024);          // PAYLOAD_TOO_LARGE / PAYLOAD_INVALID are handled
 *     return { status: 'ok', data: await run(params.id, body) };   // returned value -> 200 JSON
 *   });
 *
 * Handlers may instead write `res` themselves (streams, SSE). Throw a ClawboxError to answer with its code
 * and HTTP status as `{"status":"error","error":{"code","message"}}` (the one envelope). Every route shares
 * the server's auth (see auth.ts), security headers, error shape and request metrics. A handler gets the
 * caller as a Principal (`principal`, for FrontDoor.invoke) and a `signal` that aborts when the client
 * disconnects before its answer.
 *
 * Upgrade requests whose path is a key of `upgrades` go to that handler untouched (MQTT authenticates in
 * its own CONNECT packet); any other upgrade gets 404 and its socket closed. addUpgrade() adds one at run
 * time that by default needs the page's auth and a same-origin browser (WebSockets ignore CORS); its
 * handler gets the caller as a fourth argument.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { hostname } from 'node:os';
import type { Duplex } from 'node:stream';
import type { UpgradeHandler } from '../broker/broker.js';
import type { Component, RuntimeContext } from '../context.js';
import { ClawboxError } from '../errors.js';
import type { Logger } from '../logging.js';
import { type Principal, principalWithFilters } from '../operations/principal.js';
import { SystemSampler } from '../system/system-figures.js';
import type { LoginGuard } from '../auth/login-guard.js';
import { HttpAuth, isLoopbackHost, sendLoginThrottled } from './auth.js';
import { HttpMetrics } from './http-metrics.js';
import { LiveEvents } from './live-events.js';
import { DEFAULT_BODY_LIMIT, readJsonBody, sendError, sendJson, setSecurityHeaders } from './respond.js';
import { type HttpMethod, type RouteHandler, type RouteOptions, Router } from './router.js';
import { buildStatusDocument } from './status-document.js';
import { DatedResponse, rawHttpResponse } from './dated-response.js';
import { createDualListener } from './dual-listener.js';
import { FirstRunSetup, readAdminRecord } from './first-run.js';
import { loadOrCreateCertificate } from './tls-certificate.js';
import { WebAssets } from './web-assets.js';

export type { HttpMethod, RouteHandler, RouteOptions, RouteRequest } from './router.js';

export type { UpgradeHandler };

/** An upgrade handler added with addUpgrade: behind the page's auth it learns who the caller is. */
export interface CallerUpgradeHandler {
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, caller: Principal): void;
}

/** The caller of a public route (no auth asked): may do nothing through the front door. */
const NOBODY = principalWithFilters('http', 'anonymous', []);

export interface HttpServerOptions {
  /** Upgrade handlers by exact path, e.g. `{ '/mqtt': broker }`. */
  upgrades: Record<string, UpgradeHandler>;
  /** How often the 'system' status section samples systeminformation (ms); false leaves the section out. */
  systemSampleMs?: number | false;
  /** How often open status pages get a fresh status document (ms). */
  liveIntervalMs?: number;
  /** How long stop() lets in-flight requests finish before cutting their connections (ms). */
  drainMs?: number;
  /** Shared with the broker, so backoff and the password-hash queue span MQTT and HTTP logins. */
  loginGuard?: LoginGuard;
  /** The built web app (index.html + assets/); without one, / says how to build it. */
  webRoot?: string;
  /** The host name a generated certificate and the setup message name (default: the machine's). */
  hostName?: string;
}

/** Bodies of the login and setup forms: small. */
const FORM_BODY_LIMIT = 4096;

const EVENTS_ROUTE = '/api/events';

export class HttpServer implements Component {
  readonly name = 'http';
  readonly #options: HttpServerOptions;
  readonly #router = new Router();
  readonly #upgrades = new Map<string, { handler: CallerUpgradeHandler; auth: boolean }>();
  #server: Server | HttpsServer | undefined;
  /** What listens: the server itself, or the TLS/plain dispatcher in front of it. */
  #listener: Server | NetServer | undefined;
  #tls = false;
  #web: WebAssets | undefined;
  #setup: FirstRunSetup | undefined;
  #boxName = '';
  #ctx: RuntimeContext | undefined;
  #log: Logger | undefined;
  #auth: HttpAuth | undefined;
  #live: LiveEvents | undefined;
  #metrics: HttpMetrics | undefined;
  #sampler: SystemSampler | undefined;
  #unregisterSystem: (() => void) | undefined;
  #stopping = false;
  #stopped: Promise<void> | undefined;

  constructor(options: HttpServerOptions) {
    this.#options = options;
    for (const [path, handler] of Object.entries(options.upgrades)) this.#upgrades.set(path, { handler, auth: false });
    this.#router.add('GET', '/', (r) => this.#web!.sendIndex(r.res), { public: true });
    this.#router.add('GET', '/assets/:name', (r) => this.#web!.sendAsset(r.res, r.params.name ?? ''), { public: true });
    this.#router.add('GET', '/api/session', (r) => this.#session(r.req, r.url), { public: true });
    this.#router.add('POST', '/api/login', (r) => this.#login(r.req, r.res, r.json), { public: true });
    this.#router.add('POST', '/api/logout', (r) => {
      r.res.setHeader('Set-Cookie', this.#auth!.logout(r.req));
      return { status: 'ok', data: {} };
    }, { public: true });
    this.#router.add('GET', '/api/setup', () => this.#setupState(), { public: true });
    this.#router.add('POST', '/api/setup', (r) => this.#completeSetup(r.res, r.json), { public: true });
    this.#router.add('GET', '/api/status', () => buildStatusDocument(this.#context()));
    this.#router.add('GET', EVENTS_ROUTE, (r) => this.#live!.open(r.req, r.res));
    this.#router.add('GET', '/healthz', (r) => this.#health(r.res), { public: true });
    this.#router.add('GET', '/metrics', (r) => this.#prometheus(r.res));
  }

  /** Whether the page, API and WebSocket are served over HTTPS. */
  get tls(): boolean {
    return this.#tls;
  }

  /** The box's name: set by the first-run setup, otherwise the host name. */
  get boxName(): string {
    return this.#boxName;
  }

  /** The bound port (config http.port 0 picks a free one); 0 before start. */
  get port(): number {
    const address = this.#listener?.address();
    return address && typeof address === 'object' ? (address as AddressInfo).port : 0;
  }

  /** Adds an endpoint (see the file comment); returns a function that removes it. */
  addRoute(method: HttpMethod, path: string, handler: RouteHandler, options: RouteOptions = {}): () => void {
    return this.#router.add(method, path, handler, options);
  }

  /** Adds an upgrade path; `auth` (default true) applies the routes' auth and same-origin rules first. */
  addUpgrade(path: string, handler: CallerUpgradeHandler, options: { auth?: boolean } = {}): () => void {
    if (this.#upgrades.has(path)) throw new Error(`upgrade path ${path} is taken`);
    const entry = { handler, auth: options.auth ?? true };
    this.#upgrades.set(path, entry);
    return () => {
      if (this.#upgrades.get(path) === entry) this.#upgrades.delete(path);
    };
  }

  async start(ctx: RuntimeContext): Promise<void> {
    if (this.#server) throw new Error('http server is already started');
    this.#ctx = ctx;
    this.#stopping = false;
    this.#stopped = undefined;
    const log = ctx.logger('http');
    this.#log = log;
    const host = this.#options.hostName ?? hostname();
    const tlsConfig = ctx.config.http.tls ?? { enabled: 'auto' };
    // auto: an appliance reachable from the network speaks HTTPS; one bound to loopback only has no network to protect.
    this.#tls = tlsConfig.enabled === true || (tlsConfig.enabled === 'auto' && ctx.config.mode === 'appliance' && !isLoopbackHost(ctx.config.http.host));
    this.#auth = new HttpAuth(ctx.config, this.#options.loginGuard, { secure: this.#tls });
    this.#web = new WebAssets(this.#options.webRoot);
    this.#boxName = host;
    const admin = ctx.config.mode === 'appliance' ? await readAdminRecord(ctx.stateDir) : null;
    if (admin) {
      this.#boxName = admin.name || host;
      if (!ctx.config.http.password_hash) this.#auth.usePasswordHash(admin.password_hash);
    }
    this.#setup = ctx.config.mode === 'appliance' && !this.#auth.hasCredentials ? new FirstRunSetup(ctx.stateDir) : undefined;
    this.#live = new LiveEvents(ctx, { intervalMs: this.#options.liveIntervalMs ?? 1000 });
    this.#metrics = new HttpMetrics(ctx.metrics, () => this.#live?.size ?? 0);
    if (this.#options.systemSampleMs !== false) {
      this.#sampler = new SystemSampler({ intervalMs: this.#options.systemSampleMs ?? 5000, diskPath: ctx.stateDir });
      this.#unregisterSystem = ctx.status.register('system', () => this.#sampler!.figures());
      this.#sampler.start();
    }

    let server: Server | HttpsServer;
    let listener: Server | NetServer;
    if (this.#tls) {
      const material = await loadOrCreateCertificate({ stateDir: ctx.stateDir, cert: tlsConfig.cert, key: tlsConfig.key, host });
      if (material.source === 'generated') log.info({ cert: material.certPath }, 'made a self-signed HTTPS certificate for this box');
      const dual = createDualListener(material);
      server = dual.https;
      listener = dual.net;
    } else {
      server = createServer({ noDelay: true, keepAlive: true, ServerResponse: DatedResponse });
      listener = server;
    }
    server.headersTimeout = 20_000;
    server.requestTimeout = 60_000;
    server.on('request', (req, res) => void this.#handle(req, res));
    server.on('upgrade', (req, socket, head) => void this.#upgrade(req, socket, head));
    server.on('clientError', (_error, socket) => {
      if (socket.writable) socket.end(rawHttpResponse('400 Bad Request'));
      else socket.destroy();
    });

    const { host: bindHost, port } = ctx.config.http;
    try {
      await new Promise<void>((resolve, reject) => {
        listener.once('error', reject);
        listener.listen({ host: bindHost, port }, () => {
          listener.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      this.#release();
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE') {
        throw new ClawboxError(
          'PORT_IN_USE',
          `http port ${bindHost}:${port} is already in use (another clawbox or web server?); set http.port or CLAWBOX_HTTP_PORT`,
          { host: bindHost, port },
          { cause: error },
        );
      }
      throw new ClawboxError('LISTEN_FAILED', `http cannot listen on ${bindHost}:${port}: ${(error as Error).message}`, { host: bindHost, port }, { cause: error });
    }
    listener.on('error', (error) => log.error({ err: error }, 'http server error'));
    this.#server = server;
    this.#listener = listener;

    if (!this.#auth.required && !isLoopbackHost(bindHost)) {
      log.warn({ host: bindHost }, 'the status page and API are open to the network without auth; set http.token or http.password_hash');
    }
    const scheme = this.#tls ? 'https' : 'http';
    const shown = isLoopbackHost(bindHost) || bindHost === '0.0.0.0' || bindHost === '::' ? (this.#tls ? `${host}.local` : bindHost) : bindHost;
    const url = `${scheme}://${shown.includes(':') ? `[${shown}]` : shown}:${this.port}/`;
    log.info({ url, auth: this.#auth.required, tls: this.#tls, web_app: this.#web.built }, 'web app listening');
    if (this.#setup) {
      // Printed on purpose: whoever can read the console or the journal may claim the box, nobody else.
      const line = `first-run setup: open ${url} and enter the setup code ${this.#setup.code} to set the admin password`;
      log.warn({ setup_url: url }, line);
      if (process.stderr.isTTY) process.stderr.write(`\n  ${line}\n\n`);
    }
  }

  /** Stops accepting, ends live streams, lets in-flight requests finish (up to drainMs), then closes. */
  stop(): Promise<void> {
    const server = this.#server;
    const listener = this.#listener;
    if (!server || !listener) return Promise.resolve();
    this.#stopped ??= (async () => {
      this.#stopping = true;
      this.#live?.close();
      const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
      server.closeIdleConnections();
      const cut = setTimeout(() => server.closeAllConnections(), this.#options.drainMs ?? 2000);
      await closed;
      clearTimeout(cut);
      this.#release();
    })();
    return this.#stopped;
  }

  #release(): void {
    this.#live?.close();
    this.#sampler?.stop();
    this.#unregisterSystem?.();
    this.#metrics?.remove();
    this.#server = undefined;
    this.#listener = undefined;
    this.#live = undefined;
    this.#sampler = undefined;
    this.#unregisterSystem = undefined;
    this.#metrics = undefined;
  }

  #context(): RuntimeContext {
    if (!this.#ctx) throw new ClawboxError('INTERNAL', 'http server is not started');
    return this.#ctx;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const began = performance.now();
    let routeLabel = 'unmatched';
    let streaming = false;
    res.once('close', () => {
      const seconds = streaming ? null : (performance.now() - began) / 1000;
      this.#metrics?.observe(req.method, routeLabel, res.statusCode, seconds);
    });
    setSecurityHeaders(res);
    // While stopping, keep answering (healthz says 503) but let every connection go after its answer.
    if (this.#stopping) res.setHeader('Connection', 'close');
    try {
      const url = parseTarget(req.url);
      if (!url) throw new ClawboxError('NOT_FOUND', 'no such resource');
      const match = this.#router.match(req.method ?? 'GET', url.pathname);
      let principal = NOBODY;
      // A public route still honours ?token= (a bookmarked link): it signs the browser in.
      if (match.kind !== 'found' || !match.route.options.public || url.searchParams.has('token')) {
        const auth = await this.#auth!.check(req, url);
        if (!auth.ok) return 'retryAfterMs' in auth ? sendLoginThrottled(res, auth) : this.#refuse(res, auth.reason);
        principal = auth.principal;
        if (auth.setCookie) {
          res.setHeader('Set-Cookie', auth.setCookie);
          // A browser that came with ?token= continues at the same address without it (not in history).
          if (req.method === 'GET' && url.pathname === '/') return redirectWithoutToken(res, url);
        }
      }
      if (match.kind === 'not-found') throw new ClawboxError('NOT_FOUND', `no such resource: ${url.pathname}`);
      if (match.kind === 'method-not-allowed') {
        res.setHeader('Allow', [...match.allowed, ...(match.allowed.includes('GET') ? ['HEAD'] : [])].join(', '));
        throw new ClawboxError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${url.pathname}`);
      }
      const { route, params } = match;
      routeLabel = route.pattern;
      streaming = route.pattern === EVENTS_ROUTE;
      if (!isSafeMethod(req.method) && !sameOrigin(req)) {
        throw new ClawboxError('FORBIDDEN', 'cross-origin request refused');
      }
      const result = await route.handler({
        req,
        res,
        url,
        params,
        principal,
        signal: clientGone(res),
        json: (limitBytes = DEFAULT_BODY_LIMIT) => readJsonBody(req, limitBytes),
      });
      if (res.headersSent || res.writableEnded) return;
      if (result === undefined) {
        res.statusCode = 204;
        res.end();
      } else {
        sendJson(res, 200, result);
      }
    } catch (error) {
      const typed = error instanceof ClawboxError ? error : undefined;
      if (typed?.code === 'PAYLOAD_TOO_LARGE') res.setHeader('Connection', 'close');
      if (!typed || typed.spec.http >= 500) this.#log?.error({ err: error, url: req.url }, 'http request failed');
      sendError(res, error);
    }
  }

  #refuse(res: ServerResponse, reason: 'missing' | 'wrong' | 'host'): void {
    if (reason === 'host') {
      sendError(res, new ClawboxError('FORBIDDEN', 'this server answers only to a loopback Host (localhost, 127.0.0.1, [::1])'));
      return;
    }
    res.setHeader('WWW-Authenticate', this.#auth!.challenges());
    const message = reason === 'missing' ? 'authentication required (bearer token or password)' : 'wrong credentials';
    sendError(res, new ClawboxError('UNAUTHORIZED', message));
  }

  async #session(req: IncomingMessage, url: URL): Promise<unknown> {
    const auth = this.#auth!;
    let authenticated = !auth.required;
    if (auth.required && (req.headers.cookie || req.headers.authorization)) {
      url.searchParams.delete('token');
      authenticated = (await auth.check(req, url)).ok;
    }
    return {
      status: 'ok',
      data: { auth_required: auth.required, authenticated, setup_required: this.#setup?.pending ?? false, name: this.#boxName, tls: this.#tls },
    };
  }

  async #login(req: IncomingMessage, res: ServerResponse, json: (limit?: number) => Promise<unknown>): Promise<unknown> {
    const body = await json(FORM_BODY_LIMIT);
    const secret = typeof body === 'object' && body !== null ? (body as { secret?: unknown }).secret : undefined;
    if (typeof secret !== 'string' || secret.length > 1024) throw new ClawboxError('PAYLOAD_INVALID', 'login takes {"secret": "<token or password>"}');
    if (this.#setup?.pending) throw new ClawboxError('UNAUTHORIZED', 'this box is not set up yet: finish the first-run setup');
    const outcome = await this.#auth!.login(secret, req.socket.remoteAddress);
    if (!outcome.ok) {
      if ('retryAfterMs' in outcome) return sendLoginThrottled(res, outcome);
      throw new ClawboxError('UNAUTHORIZED', 'wrong token or password');
    }
    res.setHeader('Set-Cookie', outcome.setCookie);
    return { status: 'ok', data: { authenticated: true } };
  }

  #setupState(): unknown {
    if (!this.#setup) throw new ClawboxError('GONE', 'this box is set up; sign in instead');
    if (!this.#setup.pending) throw new ClawboxError('GONE', 'the first-run setup is done; sign in instead');
    return { status: 'ok', data: { required: true, name: this.#boxName } };
  }

  async #completeSetup(res: ServerResponse, json: (limit?: number) => Promise<unknown>): Promise<unknown> {
    if (!this.#setup?.pending) throw new ClawboxError('GONE', 'the first-run setup is done; sign in instead');
    const record = await this.#setup.complete(await json(FORM_BODY_LIMIT));
    this.#auth!.usePasswordHash(record.password_hash);
    this.#boxName = record.name;
    this.#log?.info({ name: record.name }, 'first-run setup done: admin password set');
    res.setHeader('Set-Cookie', this.#auth!.newSessionCookie());
    return { status: 'ok', data: { name: record.name } };
  }

  #health(res: ServerResponse): void {
    const state = this.#stopping ? 'stopping' : this.#context().lifecycleState();
    sendJson(res, state === 'serving' ? 200 : 503, { status: state });
  }

  async #prometheus(res: ServerResponse): Promise<void> {
    const registry = this.#context().metrics;
    const text = await registry.metrics();
    res.statusCode = 200;
    res.setHeader('Content-Type', registry.contentType);
    res.setHeader('Cache-Control', 'no-store');
    res.end(text);
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy()); // a reset peer must not crash the runtime
    // Destroy once the answer is flushed: a client that never closes its side cannot hold the socket.
    const refuse = (status: string) => socket.write(rawHttpResponse(status), () => socket.destroy());
    const url = parseTarget(req.url);
    const entry = url ? this.#upgrades.get(url.pathname) : undefined;
    if (!entry || this.#stopping) return void refuse(this.#stopping ? '503 Service Unavailable' : '404 Not Found');
    let caller = NOBODY;
    if (entry.auth) {
      const auth = await this.#auth!.check(req, url!);
      if (!auth.ok) return void refuse(UPGRADE_REFUSALS[auth.reason]);
      if (!sameOrigin(req)) return void refuse('403 Forbidden');
      if (this.#stopping || socket.destroyed) return void refuse('503 Service Unavailable');
      caller = auth.principal;
    }
    const { handler } = entry;
    try {
      handler.handleUpgrade(req, socket, head, caller);
    } catch (error) {
      this.#log?.error({ err: error, path: url?.pathname }, 'upgrade handler failed');
      socket.destroy();
    }
  }
}

const UPGRADE_REFUSALS = {
  host: '403 Forbidden',
  missing: '401 Unauthorized',
  wrong: '401 Unauthorized',
  backoff: '429 Too Many Requests',
  busy: '503 Service Unavailable',
} as const;

/** The request target as a URL; null for anything but origin-form (`/path?query`). */
function parseTarget(target: string | undefined): URL | null {
  if (!target?.startsWith('/') || target.startsWith('//')) return null;
  try {
    return new URL(target, 'http://clawbox.invalid');
  } catch {
    return null;
  }
}

function isSafeMethod(method: string | undefined): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS';
}

/** Aborts when the connection closes before the response was finished: the client went away. */
function clientGone(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort(new ClawboxError('DEADLINE_EXCEEDED', 'the HTTP client went away before its answer'));
  });
  return controller.signal;
}

/** A browser names the page that sent a request in Origin; refuse state changes from other sites. */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true; // not a browser (curl, MQTT bridges, scripts)
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

function redirectWithoutToken(res: ServerResponse, url: URL): void {
  url.searchParams.delete('token');
  res.statusCode = 303;
  res.setHeader('Location', url.pathname + url.search);
  res.setHeader('Cache-Control', 'no-store');
  res.end();
}
