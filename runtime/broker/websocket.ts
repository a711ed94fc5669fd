/**
 * MQTT over WebSocket on the HTTP server's port: the HTTP server hands upgrade requests for the broker's
 * path to `handleUpgrade`, and each accepted WebSocket becomes a byte stream for aedes.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { WebSocketServer } from 'ws';
import { wsLibrary } from '../http/ws-library.js';

export type StreamHandler = (stream: Duplex, req: IncomingMessage) => void;

export class WebSocketListener {
  /** Made on the first upgrade: the `ws` library is loaded only when someone connects this way. */
  #wss: WebSocketServer | undefined;
  readonly #onStream: StreamHandler;
  readonly #maxMessageBytes: number;

  constructor(onStream: StreamHandler, maxMessageBytes: number) {
    this.#onStream = onStream;
    this.#maxMessageBytes = maxMessageBytes;
  }

  #server(): WebSocketServer {
    this.#wss ??= new (wsLibrary().WebSocketServer)({
      noServer: true,
      maxPayload: this.#maxMessageBytes,
      // MQTT clients offer "mqtt" (and old ones "mqttv3.1"); answer with the one they offer.
      handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false),
      perMessageDeflate: false,
    });
    return this.#wss;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Same reason as for TCP: no Nagle delay on small MQTT packets.
    if (typeof (socket as Socket).setNoDelay === 'function') (socket as Socket).setNoDelay(true);
    this.#server().handleUpgrade(req, socket, head, (ws) => {
      const stream = wsLibrary().createWebSocketStream(ws);
      // A reset from the peer surfaces here; aedes also listens, but the stream must never go unhandled.
      stream.on('error', () => {});
      this.#onStream(stream, req);
    });
  }

  close(): void {
    if (!this.#wss) return;
    for (const ws of this.#wss.clients) ws.terminate();
    this.#wss.close();
  }
}

/** Answers an upgrade that cannot be served (broker stopped, WebSocket disabled) and closes the socket. */
export function refuseUpgrade(socket: Duplex, status: number, reason: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
