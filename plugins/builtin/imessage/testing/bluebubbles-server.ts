/**
 * A local server speaking the part of a BlueBubbles server's API the iMessage channel uses, as BlueBubbles
 * documents and implements it (packages/server: api/http/index.ts, v1 message routes and validators):
 *   - the password as the `password` query parameter on REST calls and in the socket.io handshake query
 *     (a socket with a wrong one is disconnected);
 *   - GET /api/v1/ping → {status: 200, message, data: "pong"};
 *   - POST /api/v1/message/text {chatGuid, tempGuid, message, method} (chatGuid required; tempGuid and a
 *     message required for apple-script; a tempGuid already queued is refused);
 *   - socket.io event `new-message` with the message (guid, text, isFromMe, handle.address, chats[].guid,
 *     attachments[]).
 * Test controls: a person sends a message, the next sends answer 429 with Retry-After, connections drop.
 */
import { type IncomingMessage, type Server as HttpServer, type ServerResponse, createServer } from 'node:http';
import { Server as SocketServer } from 'socket.io';

export class FakeBlueBubbles {
  readonly password: string;
  readonly sent: { chatGuid: string; tempGuid: string; message: string; method: string }[] = [];
  rateLimitedCount = 0;
  /** Authenticated socket connections so far (a reconnect adds one). */
  connections = 0;
  #http: HttpServer;
  #io: SocketServer;
  #rateLimit = { count: 0, seconds: 1 };
  #next = 1;
  #tempGuids = new Set<string>();

  private constructor(password: string) {
    this.password = password;
    this.#http = createServer((req, res) => void this.#handle(req, res));
    this.#io = new SocketServer(this.#http, { transports: ['websocket', 'polling'] });
    this.#io.on('connection', (socket) => {
      if (String(socket.handshake.query.password ?? '') !== this.password) {
        socket.disconnect();
        return;
      }
      this.connections++;
    });
  }

  static async start(password = 'bb-secret'): Promise<FakeBlueBubbles> {
    const server = new FakeBlueBubbles(password);
    await new Promise<void>((resolve) => server.#http.listen(0, '127.0.0.1', resolve));
    return server;
  }

  get url(): string {
    const address = this.#http.address();
    return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }

  userSends(address: string, text: string, options: { media?: boolean; group?: boolean; guid?: string } = {}): void {
    const chatGuid = options.group ? 'iMessage;+;chat123456' : `iMessage;-;${address}`;
    this.#io.emit('new-message', {
      guid: options.guid ?? `msg-${this.#next++}`,
      text: options.media ? `\uFFFC${text}` : text,
      isFromMe: false,
      dateCreated: Date.now(),
      handle: { address, service: 'iMessage' },
      chats: [{ guid: chatGuid, style: options.group ? 43 : 45 }],
      attachments: options.media ? [{ guid: 'att-1', mimeType: 'image/jpeg', transferName: 'photo.jpg' }] : [],
    });
  }

  deliveredTo(address: string): string[] {
    return this.sent.filter((s) => s.chatGuid === `iMessage;-;${address}`).map((s) => s.message);
  }

  rateLimitNext(count: number, seconds: number): void {
    this.#rateLimit = { count, seconds };
  }

  /** Closes every socket's transport (as a network drop would); resolves once a client connected again. */
  async dropConnections(): Promise<void> {
    const before = this.connections;
    this.#io.disconnectSockets(true);
    const until = Date.now() + 30_000;
    while (this.connections <= before && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  }

  async close(): Promise<void> {
    this.#io.disconnectSockets(true);
    await new Promise<void>((resolve) => this.#io.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // socket.io answers its own path on this server.
    if (req.url?.startsWith('/socket.io/')) return;
    const url = new URL(req.url ?? '/', 'http://localhost');
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    if (url.searchParams.get('password') !== this.password) {
      return reply(401, { status: 401, message: 'You are not authorized to access this resource', error: { type: 'Authentication Error' } });
    }
    if (req.method === 'GET' && url.pathname === '/api/v1/ping') return reply(200, { status: 200, message: 'Ping received!', data: 'pong' });
    if (req.method === 'POST' && url.pathname === '/api/v1/message/text') {
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      } catch {
        return reply(400, { status: 400, message: 'Bad Request', error: { type: 'Validation Error', error: 'invalid JSON' } });
      }
      const { chatGuid, tempGuid, message, method = 'apple-script' } = body as Record<string, string>;
      const bad = (error: string) => reply(400, { status: 400, message: 'Bad Request', error: { type: 'Validation Error', error } });
      if (typeof chatGuid !== 'string' || chatGuid === '') return bad('chatGuid is required');
      if (method === 'apple-script' && !tempGuid) return bad("A 'tempGuid' is required when sending via AppleScript");
      if (method === 'apple-script' && !message) return bad("A 'message' is required when sending via AppleScript");
      if (this.#rateLimit.count > 0) {
        this.#rateLimit.count--;
        this.rateLimitedCount++;
        return reply(429, { status: 429, message: 'Too Many Requests' }, { 'retry-after': String(this.#rateLimit.seconds) });
      }
      if (this.#tempGuids.has(tempGuid!)) return bad(`Message is already queued to be sent! (Temp GUID: ${tempGuid})`);
      this.#tempGuids.add(tempGuid!);
      this.sent.push({ chatGuid, tempGuid: tempGuid!, message: message!, method });
      return reply(200, { status: 200, message: 'Message sent!', data: { guid: `sent-${this.#next++}`, text: message, tempGuid } });
    }
    reply(404, { status: 404, message: 'Not Found' });
  }
}
