/**
 * A local HTTP server speaking the part of the Telegram Bot API the channel uses, as documented at
 * https://core.telegram.org/bots/api: `POST /bot<token>/<method>` with a JSON body, answers
 * `{ok: true, result}` or `{ok: false, error_code, description, parameters?: {retry_after}}`.
 * getMe, deleteWebhook, getUpdates (long polling with offset confirmation: updates below the offset are
 * forgotten), sendMessage (4096-character limit, as Telegram enforces it). Test controls: a person
 * sends a message, the next sends answer 429 with retry_after, and the connection drops.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { Socket } from 'node:net';

interface Update {
  update_id: number;
  message: Record<string, unknown>;
}

export class FakeBotApi {
  readonly token: string;
  readonly sent: { chat_id: string; text: string }[] = [];
  readonly calls: string[] = [];
  rateLimitedCount = 0;
  #server: Server;
  #updates: Update[] = [];
  #nextUpdate = 1;
  #nextMessage = 1;
  #pollers = new Set<() => void>();
  #sockets = new Set<Socket>();
  #rateLimit = { count: 0, seconds: 1 };
  #refuse = 0;

  private constructor(token: string) {
    this.token = token;
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  static async start(token = '123456:TEST-token'): Promise<FakeBotApi> {
    const api = new FakeBotApi(token);
    await new Promise<void>((resolve) => api.#server.listen(0, '127.0.0.1', resolve));
    return api;
  }

  get apiRoot(): string {
    const address = this.#server.address();
    return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }

  /** A person (a private chat) sends a text, or a photo with that caption. */
  userSends(userId: number, text: string, options: { media?: boolean; username?: string } = {}): void {
    const from = { id: userId, is_bot: false, first_name: `User ${userId}`, ...(options.username ? { username: options.username } : {}) };
    const message: Record<string, unknown> = {
      message_id: this.#nextMessage++,
      from,
      chat: { id: userId, type: 'private', first_name: from.first_name },
      date: Math.floor(Date.now() / 1000),
      ...(options.media ? { photo: [{ file_id: 'f1', file_unique_id: 'u1', width: 90, height: 90 }], caption: text } : { text }),
    };
    this.#updates.push({ update_id: this.#nextUpdate++, message });
    this.#wake();
  }

  /** A message in a group: a channel of private chats must skip it. */
  groupMessage(userId: number, text: string): void {
    this.#updates.push({
      update_id: this.#nextUpdate++,
      message: { message_id: this.#nextMessage++, from: { id: userId, is_bot: false, first_name: 'G' }, chat: { id: -100, type: 'group', title: 'g' }, date: 0, text },
    });
    this.#wake();
  }

  deliveredTo(userId: string | number): string[] {
    return this.sent.filter((s) => String(s.chat_id) === String(userId)).map((s) => s.text);
  }

  rateLimitNext(count: number, seconds: number): void {
    this.#rateLimit = { count, seconds };
  }

  /** Drops every open connection (long polls included) and resets the next `refuse` connections. */
  async dropConnections(refuse = 2): Promise<void> {
    this.#refuse = refuse;
    for (const socket of this.#sockets) socket.destroy();
  }

  async close(): Promise<void> {
    this.#wake();
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #wake(): void {
    for (const poller of [...this.#pollers]) poller();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.#refuse > 0) {
      this.#refuse--;
      req.socket.destroy();
      return;
    }
    const match = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(req.url ?? '');
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const reply = (status: number, body: unknown) => {
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (!match) return reply(404, { ok: false, error_code: 404, description: 'Not Found' });
    if (match[1] !== this.token) return reply(401, { ok: false, error_code: 401, description: 'Unauthorized' });
    const method = match[2]!;
    this.calls.push(method);
    let params: Record<string, unknown> = {};
    try {
      const text = Buffer.concat(chunks).toString('utf8');
      params = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      return reply(400, { ok: false, error_code: 400, description: 'Bad Request: invalid JSON' });
    }
    switch (method) {
      case 'getMe':
        return reply(200, { ok: true, result: { id: 42, is_bot: true, first_name: 'clawbox', username: 'clawbox_test_bot' } });
      case 'deleteWebhook':
        return reply(200, { ok: true, result: true });
      case 'getUpdates':
        return this.#getUpdates(params, req, (body) => reply(200, body));
      case 'sendMessage': {
        const text = String(params.text ?? '');
        if (this.#rateLimit.count > 0) {
          this.#rateLimit.count--;
          this.rateLimitedCount++;
          const seconds = this.#rateLimit.seconds;
          return reply(429, { ok: false, error_code: 429, description: `Too Many Requests: retry after ${seconds}`, parameters: { retry_after: seconds } });
        }
        if (text.length === 0) return reply(400, { ok: false, error_code: 400, description: 'Bad Request: message text is empty' });
        if (text.length > 4096) return reply(400, { ok: false, error_code: 400, description: 'Bad Request: message is too long' });
        this.sent.push({ chat_id: String(params.chat_id), text });
        return reply(200, { ok: true, result: { message_id: this.#nextMessage++, date: 0, chat: { id: Number(params.chat_id), type: 'private' }, text } });
      }
      default:
        return reply(404, { ok: false, error_code: 404, description: 'Not Found: method not found' });
    }
  }

  async #getUpdates(params: Record<string, unknown>, req: IncomingMessage, send: (body: unknown) => void): Promise<void> {
    const offset = typeof params.offset === 'number' ? params.offset : 0;
    // Confirmation: updates below the offset are forgotten for good.
    if (offset > 0) this.#updates = this.#updates.filter((u) => u.update_id >= offset);
    const timeoutMs = Math.min(Number(params.timeout ?? 0), 50) * 1000;
    const until = Date.now() + timeoutMs;
    for (;;) {
      const ready = this.#updates.filter((u) => u.update_id >= offset).slice(0, 100);
      if (ready.length > 0 || Date.now() >= until || req.socket.destroyed) return send({ ok: true, result: ready });
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#pollers.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(1, until - Date.now()));
        this.#pollers.add(done);
      });
    }
  }
}
