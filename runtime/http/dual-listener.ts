/**
 * One port for HTTPS and a plain-HTTP redirect: the first byte of a connection tells a TLS handshake
 * (0x16) from a plain request, so `http://box:8080/` answers 308 to `https://box:8080/` instead of a
 * connection reset, and the page, API and WebSocket all run over TLS on the port users already know.
 */
import { type IncomingMessage, type Server as HttpServer, type ServerResponse, createServer as createHttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { type Server as NetServer, type Socket, createServer as createNetServer } from 'node:net';
import { NO_CLIENT_CERTIFICATE_CA, httpsModule } from '../system/tls-on-demand.js';
import { DatedResponse, rawHttpResponse } from './dated-response.js';

const TLS_HANDSHAKE = 0x16;

export interface DualListener {
  /** What listens on the port. */
  readonly net: NetServer;
  /** Where TLS connections end up: request and upgrade handlers go here. */
  readonly https: HttpsServer;
  /** Answers plain HTTP with a redirect to the same host and path over HTTPS. */
  readonly redirect: HttpServer;
}

export function createDualListener(tls: { cert: string; key: string }): DualListener {
  const https = httpsModule().createServer({ cert: tls.cert, key: tls.key, ca: NO_CLIENT_CERTIFICATE_CA, noDelay: true, keepAlive: true, ServerResponse: DatedResponse });
  const redirect = createHttpServer({ ServerResponse: DatedResponse }, (req, res) => redirectToHttps(req, res));
  redirect.on('upgrade', (_req, socket) => socket.end(rawHttpResponse('426 Upgrade Required')));
  redirect.on('clientError', (_error, socket) => socket.destroy());
  const net = createNetServer({ noDelay: true }, (socket: Socket) => {
    socket.on('error', () => socket.destroy());
    socket.setTimeout(20_000, () => socket.destroy());
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.setTimeout(0);
      socket.unshift(first);
      (first[0] === TLS_HANDSHAKE ? https : redirect).emit('connection', socket);
      process.nextTick(() => socket.resume());
    });
  });
  // The inner servers never listen; they only get the sockets handed over above.
  net.on('close', () => {
    https.close();
    redirect.close();
  });
  return { net, https, redirect };
}

function redirectToHttps(req: IncomingMessage, res: ServerResponse): void {
  const host = req.headers.host;
  if (!host || !/^[A-Za-z0-9.:[\]-]{1,260}$/.test(host) || !req.url?.startsWith('/') || req.url.startsWith('//')) {
    res.writeHead(400, { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close' }).end('use https://\n');
    return;
  }
  res.writeHead(308, { Location: `https://${host}${req.url}`, 'Cache-Control': 'no-store', Connection: 'close', 'Content-Length': 0 }).end();
}
