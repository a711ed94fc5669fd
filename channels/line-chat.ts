/**
 * The worked example of an external chat channel, and the template for WhatsApp/Telegram/Matrix ones:
 * a plain TCP line-chat server on loopback. Connect with `nc 127.0.0.1 7331` (or `socat - TCP:...`),
 * type a line, get the answer as a line. Enable with `channels: { line_chat: { enabled: true } }`.
 *
 *   - Each line (UTF-8, at most 4 KiB) is one message. `/nick <name>` sets who you are (letters, digits,
 *     `._-`, 1-32); without it you are `<address>:<port>`, a new stranger on every connection.
 *   - It is NOT local: an unknown sender gets a pairing code line and is ignored until the owner approves
 *     the code (`clawbox channels approve`, POST /api/channels/pairings/:code/approve) or lists them in
 *     `channels.allowlist` as `line-chat:<name>`.
 *   - Replies for a nick that is not connected wait in a small outbox until it connects again (a real
 *     platform stores and forwards them itself).
 *
 * How a platform channel maps onto it: connect() = log in / open the webhook listener; the socket's
 * 'line' = the platform's message event (await the listener, then acknowledge to the platform);
 * send() = the platform's send-message call; disconnect() = log out / close the listener.
 */
import { type Server, type Socket, createServer } from 'node:net';
import type { Logger } from '../runtime/logging.js';
import { type Channel, type MessageListener, type OutboundMessage, senderIdOf } from './channel.js';

const MAX_LINE_BYTES = 4096;
const MAX_CONNECTIONS = 64;
const OUTBOX_PER_SENDER = 20;
const OUTBOX_SENDERS = 100;
const NICK = /^[A-Za-z0-9._-]{1,32}$/;

export interface LineChatOptions {
  /** TCP port on 127.0.0.1; 0 = any free port (see `port` after connect). */
  port: number;
  logger?: Logger | undefined;
}

interface Peer {
  socket: Socket;
  senderId: string;
  nick: string | null;
}

export class LineChatChannel implements Channel {
  readonly name = 'line-chat';
  readonly local = false;
  readonly #options: LineChatOptions;
  #server: Server | null = null;
  #listener: MessageListener | null = null;
  readonly #peers = new Set<Peer>();
  readonly #outbox = new Map<string, string[]>();

  constructor(options: LineChatOptions) {
    this.#options = options;
  }

  /** The bound port (after connect). */
  get port(): number {
    const address = this.#server?.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  onMessage(listener: MessageListener): void {
    this.#listener = listener;
  }

  async connect(): Promise<void> {
    const server = createServer((socket) => this.#accept(socket));
    server.maxConnections = MAX_CONNECTIONS;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // Loopback only: the example has no transport security of its own.
      server.listen(this.#options.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) => this.#options.logger?.warn({ err: error }, 'line-chat server error'));
    this.#server = server;
  }

  async disconnect(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    this.#listener = null;
    for (const peer of this.#peers) peer.socket.destroy();
    this.#peers.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async send(sessionId: string, message: OutboundMessage): Promise<void> {
    const senderId = senderIdOf(sessionId);
    const line = `${message.error ? '! ' : ''}${message.text.replace(/[\r\n]+/g, ' ')}\n`;
    const peers = [...this.#peers].filter((p) => p.senderId === senderId && !p.socket.destroyed);
    if (peers.length === 0) {
      this.#hold(senderId, line);
      return;
    }
    for (const peer of peers) peer.socket.write(line);
  }

  #hold(senderId: string, line: string): void {
    if (!this.#outbox.has(senderId) && this.#outbox.size >= OUTBOX_SENDERS) {
      const oldest = this.#outbox.keys().next().value;
      if (oldest !== undefined) this.#outbox.delete(oldest);
    }
    const queue = this.#outbox.get(senderId) ?? [];
    queue.push(line);
    if (queue.length > OUTBOX_PER_SENDER) queue.shift();
    this.#outbox.set(senderId, queue);
  }

  #accept(socket: Socket): void {
    const peer: Peer = { socket, senderId: `${socket.remoteAddress}:${socket.remotePort}`, nick: null };
    this.#peers.add(peer);
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    let buffer = '';
    // One line at a time, in order, so a sender's messages reach the gateway in the order typed.
    let chain: Promise<void> = Promise.resolve();
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let newline = buffer.indexOf('\n');
      while (newline >= 0) {
        const line = buffer.slice(0, newline).replace(/\r$/, '');
        buffer = buffer.slice(newline + 1);
        newline = buffer.indexOf('\n');
        chain = chain.then(() => this.#line(peer, line));
      }
      if (Buffer.byteLength(buffer) > MAX_LINE_BYTES) {
        socket.end(`! lines are at most ${MAX_LINE_BYTES} bytes\n`);
        buffer = '';
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => this.#peers.delete(peer));
  }

  async #line(peer: Peer, line: string): Promise<void> {
    if (peer.socket.destroyed) return;
    const text = line.trim();
    if (text === '') return;
    if (text.startsWith('/nick')) {
      const nick = text.slice(5).trim();
      if (!NICK.test(nick)) {
        peer.socket.write('! a nick is 1-32 letters, digits or ._-\n');
        return;
      }
      peer.nick = nick;
      peer.senderId = nick;
      peer.socket.write(`* you are ${nick}\n`);
      const held = this.#outbox.get(nick);
      this.#outbox.delete(nick);
      for (const queued of held ?? []) peer.socket.write(queued);
      return;
    }
    const listener = this.#listener;
    if (!listener) return;
    try {
      const acceptance = await listener({
        sender: { channel: this.name, sender_id: peer.senderId, ...(peer.nick ? { display_name: peer.nick } : {}) },
        text,
      });
      if (acceptance.status === 'rejected') peer.socket.write(`! ${acceptance.message}\n`);
    } catch (error) {
      // Not accepted (e.g. stopping): tell the sender so they can send it again.
      peer.socket.write(`! not accepted, send it again later: ${(error as Error).message}\n`);
    }
  }
}
