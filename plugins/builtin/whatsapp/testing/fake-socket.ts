/**
 * WhatsApp's side, at Baileys' lowest seam: a fake of the socket makeWASocket returns, made by a factory
 * the channel is given instead of makeWASocket. It emits Baileys' own events with Baileys' shapes —
 * `connection.update` ({connection, qr, lastDisconnect: {error: Boom with a DisconnectReason code}}),
 * `creds.update`, `messages.upsert` ({type: 'notify', messages: [WAMessage]}) — and records what the
 * channel sent and marked read. WhatsApp's servers cannot be reached from here.
 */
import { EventEmitter } from 'node:events';
import { Boom } from '@hapi/boom';
import type { AuthenticationState } from '@whiskeysockets/baileys';
import type { SocketFactory, WhatsAppSocket } from '../whatsapp.js';

export class FakeSocket implements WhatsAppSocket {
  readonly ev = new EventEmitter();
  ended = false;
  constructor(
    readonly phone: FakeWhatsApp,
    readonly auth: AuthenticationState,
  ) {}

  async sendMessage(jid: string, content: { text: string }): Promise<unknown> {
    if (this.ended) throw new Boom('Connection Closed', { statusCode: 428 });
    if (this.phone.limit.count > 0) {
      this.phone.limit.count--;
      this.phone.rateLimitedCount++;
      throw new Boom('rate-overlimit', { statusCode: 429, data: { retry_after: this.phone.limit.seconds } });
    }
    this.phone.sent.push({ jid, text: content.text });
    return { key: { remoteJid: jid, fromMe: true, id: `out-${this.phone.sent.length}` } };
  }

  async readMessages(keys: unknown[]): Promise<void> {
    this.phone.read.push(...keys);
  }

  end(_error: Error | undefined): void {
    this.ended = true;
  }

  emit(event: string, value: unknown): void {
    this.ev.emit(event, value);
  }
}

export class FakeWhatsApp {
  readonly sockets: FakeSocket[] = [];
  readonly sent: { jid: string; text: string }[] = [];
  readonly read: unknown[] = [];
  readonly limit = { count: 0, seconds: 1 };
  rateLimitedCount = 0;
  /** Whether the phone has linked this box (no QR needed). */
  paired: boolean;
  #next = 1;

  constructor(options: { paired?: boolean } = {}) {
    this.paired = options.paired ?? true;
  }

  readonly factory: SocketFactory = ({ auth }) => {
    const socket = new FakeSocket(this, auth);
    this.sockets.push(socket);
    // As Baileys does: the socket reports connecting, then open (or a QR code while unpaired).
    setImmediate(() => {
      socket.emit('connection.update', { connection: 'connecting' });
      if (this.paired) socket.emit('connection.update', { connection: 'open' });
      else socket.emit('connection.update', { qr: `2@fake-qr-${this.sockets.length},abc,def,ghi` });
    });
    return socket;
  };

  get current(): FakeSocket | undefined {
    return this.sockets.at(-1);
  }

  /** The phone scans the QR code: Baileys saves the new login, then asks for a restart (515). */
  scan(): void {
    const socket = this.current!;
    this.paired = true;
    socket.auth.creds.me = { id: '4915100000000:1@s.whatsapp.net', name: 'box' };
    socket.emit('creds.update', { me: socket.auth.creds.me });
    this.close(515);
  }

  /** The connection closes with a DisconnectReason code (as a Boom error, as Baileys reports it). */
  close(statusCode: number): void {
    const socket = this.current!;
    socket.ended = true;
    socket.emit('connection.update', { connection: 'close', lastDisconnect: { error: new Boom('Connection closed', { statusCode }), date: new Date() } });
  }

  userSends(jid: string, text: string, options: { media?: boolean; fromMe?: boolean; pushName?: string } = {}): void {
    const message = options.media ? { imageMessage: { caption: text, mimetype: 'image/jpeg' } } : { conversation: text };
    this.current!.emit('messages.upsert', {
      type: 'notify',
      messages: [{ key: { remoteJid: jid, fromMe: options.fromMe ?? false, id: `in-${this.#next++}` }, pushName: options.pushName ?? 'Someone', message }],
    });
  }

  deliveredTo(jid: string): string[] {
    return this.sent.filter((s) => s.jid === jid).map((s) => s.text);
  }
}
