/**
 * The broker's own sockets: plain TCP and optional TLS. Nagle is off on every connection (with it on, a
 * QoS 1 request/response waits for delayed ACKs, ~40-90 ms). Bind failures become typed errors.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import type tls from 'node:tls';
import { ClawboxError } from '../errors.js';
import { NO_CLIENT_CERTIFICATE_CA, tlsModule } from '../system/tls-on-demand.js';

export type ConnectionHandler = (socket: net.Socket) => void;

export function createTcpServer(onConnection: ConnectionHandler): net.Server {
  return net.createServer({ noDelay: true }, (socket) => {
    socket.setNoDelay(true);
    onConnection(socket);
  });
}

export interface TlsFiles {
  cert?: string | undefined;
  key?: string | undefined;
  ca?: string | undefined;
}

function readPem(kind: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : code === 'EACCES' ? 'permission denied' : String(code);
    throw new ClawboxError('TLS_INVALID', `cannot read TLS ${kind} ${file}: ${why}`, { file, kind }, { cause: error });
  }
}

/** Loads the PEM files and checks that they make a usable context, before anything is opened. */
export function loadTlsOptions(files: TlsFiles): tls.TlsOptions {
  if (!files.cert || !files.key) {
    throw new ClawboxError('TLS_INVALID', 'broker.tls.enabled needs both broker.tls.cert and broker.tls.key');
  }
  const cert = readPem('certificate', files.cert);
  const key = readPem('private key', files.key);
  const ca = files.ca ? readPem('CA bundle', files.ca) : undefined;
  const options: tls.TlsOptions = { cert, key, ca: ca ?? NO_CLIENT_CERTIFICATE_CA };
  try {
    tlsModule().createSecureContext(options);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const named = [files.cert, files.key, ...(files.ca ? [files.ca] : [])].join(', ');
    throw new ClawboxError('TLS_INVALID', `TLS certificate/key cannot be used (${named}): ${reason}`, {
      cert: files.cert,
      key: files.key,
      ...(files.ca ? { ca: files.ca } : {}),
    }, { cause: error });
  }
  return options;
}

export function createTlsServer(options: tls.TlsOptions, onConnection: ConnectionHandler): tls.Server {
  const server = tlsModule().createServer(options, (socket) => {
    socket.setNoDelay(true);
    onConnection(socket);
  });
  // A failed handshake is the client's problem; without a listener it would be an unhandled 'error'.
  server.on('tlsClientError', () => {});
  return server;
}

/** Binds and resolves to the bound port; EADDRINUSE becomes PORT_IN_USE naming the address. */
export function listen(server: net.Server, host: string, port: number, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      const where = `${host}:${port}`;
      if (error.code === 'EADDRINUSE') {
        reject(
          new ClawboxError(
            'PORT_IN_USE',
            `${what} port ${where} is already in use (another MQTT broker such as mosquitto, or a second clawbox?); ` +
              'stop it or choose another port in the config',
            { host, port },
            { cause: error },
          ),
        );
      } else {
        const why = error.code === 'EACCES' ? 'permission denied' : error.code === 'EADDRNOTAVAIL' ? 'address not available on this machine' : error.message;
        reject(new ClawboxError('LISTEN_FAILED', `${what} cannot listen on ${where}: ${why}`, { host, port }, { cause: error }));
      }
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve((server.address() as net.AddressInfo).port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ host, port });
  });
}

/** Stops accepting; resolves once the server is closed (connections are closed by aedes). */
export function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
  });
}
