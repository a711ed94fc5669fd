/**
 * The web app's built files (index.html and content-hashed assets), served from a directory the
 * composition root names. Read once at start into memory: the set is small and fixed for a run, and no
 * request path ever reaches the file system. Public, because the login and setup forms are part of it;
 * every API it calls needs auth.
 */
import { readFileSync, readdirSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import path from 'node:path';
import { ClawboxError } from '../errors.js';

/** Scripts, styles and fetches only from this origin; images also from data: URLs (QR codes, charts). */
export const WEB_APP_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
};

const NOT_BUILT = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>clawbox</title></head>
<body><main><h1>clawbox</h1><p>The web app is not built. Run <code>npm run build</code>; the API at <a href="/api/status">/api/status</a> works without it.</p></main></body></html>`;

interface Asset {
  body: Buffer;
  type: string;
}

export class WebAssets {
  readonly #files = new Map<string, Asset>();
  readonly #index: Buffer;

  /** `dir` holds index.html and assets/; undefined or a missing build serves a page that says so. */
  constructor(dir: string | undefined) {
    let index: Buffer | undefined;
    if (dir) {
      try {
        index = readFileSync(path.join(dir, 'index.html'));
        for (const name of readdirSync(path.join(dir, 'assets'))) {
          const type = TYPES[path.extname(name)];
          if (type && /^[A-Za-z0-9._-]+$/.test(name)) this.#files.set(name, { body: readFileSync(path.join(dir, 'assets', name)), type });
        }
      } catch {
        index = undefined;
      }
    }
    this.#index = index ?? Buffer.from(NOT_BUILT);
  }

  get built(): boolean {
    return this.#files.size > 0;
  }

  /** The app's page: never cached, so a new build is picked up at the next load. */
  sendIndex(res: ServerResponse): void {
    send(res, this.#index, 'text/html; charset=utf-8', 'no-cache');
  }

  /** A content-hashed asset: cached for a year, its name changes with its content. */
  sendAsset(res: ServerResponse, name: string): void {
    const asset = this.#files.get(name);
    if (!asset) throw new ClawboxError('NOT_FOUND', 'no such asset');
    send(res, asset.body, asset.type, 'public, max-age=31536000, immutable');
  }
}

function send(res: ServerResponse, body: Buffer, type: string, cache: string): void {
  res.statusCode = 200;
  res.setHeader('Content-Type', type);
  res.setHeader('Content-Security-Policy', WEB_APP_CSP);
  res.setHeader('Cache-Control', cache);
  res.setHeader('Content-Length', body.length);
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}
