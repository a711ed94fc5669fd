/**
 * The status page's live feed as Server-Sent Events on `/api/events` (plain HTTP, no upgrade, and the
 * browser reconnects by itself). Events:
 *   `status`  — the whole /api/status document; on connect, every `intervalMs` and on lifecycle changes
 *   `warning` — one new warn-or-worse log entry, as it happens
 * One snapshot per tick is shared by every open stream; a stream whose reader stops reading is dropped
 * rather than buffered without bound.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RuntimeContext } from '../context.js';
import { ClawboxError } from '../errors.js';
import { sendError } from './respond.js';
import { buildStatusDocument } from './status-document.js';

const MAX_BUFFERED_BYTES = 1024 * 1024;

export class LiveEvents {
  readonly #streams = new Set<ServerResponse>();
  readonly #ctx: RuntimeContext;
  readonly #intervalMs: number;
  readonly #unsubscribe: Array<() => void> = [];
  #timer: NodeJS.Timeout | undefined;
  #ticking = false;
  #closed = false;

  constructor(ctx: RuntimeContext, options: { intervalMs?: number } = {}) {
    this.#ctx = ctx;
    this.#intervalMs = options.intervalMs ?? 1000;
    this.#unsubscribe.push(
      ctx.logRing.onEntry((entry) => this.#broadcast('warning', entry)),
      ctx.bus.on('lifecycle', () => void this.#pushStatus()),
    );
  }

  get size(): number {
    return this.#streams.size;
  }

  /** Turns this response into an event stream until the client goes away or close() is called. */
  open(req: IncomingMessage, res: ServerResponse): void {
    if (this.#closed) {
      // The server is stopping: no new stream (the browser retries and finds the next run).
      sendError(res, new ClawboxError('BUSY', 'the server is stopping'));
      return;
    }
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      // Tell a reverse proxy (nginx) not to buffer the stream.
      'X-Accel-Buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    req.socket.setNoDelay(true);
    this.#streams.add(res);
    res.once('close', () => {
      this.#streams.delete(res);
      if (this.#streams.size === 0) this.#stopTimer();
    });
    void buildStatusDocument(this.#ctx).then((doc) => this.#send(res, 'status', doc));
    this.#startTimer();
  }

  /** Ends every stream (the server is stopping) and stops listening to the runtime. */
  close(): void {
    this.#closed = true;
    this.#stopTimer();
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
    for (const res of this.#streams) res.end();
    this.#streams.clear();
  }

  #startTimer(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.#pushStatus(), this.#intervalMs);
    this.#timer.unref();
  }

  #stopTimer(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #pushStatus(): Promise<void> {
    if (this.#streams.size === 0 || this.#ticking) return;
    this.#ticking = true;
    try {
      this.#broadcast('status', await buildStatusDocument(this.#ctx));
    } finally {
      this.#ticking = false;
    }
  }

  #broadcast(event: 'status' | 'warning', data: unknown): void {
    for (const res of this.#streams) this.#send(res, event, data);
  }

  #send(res: ServerResponse, event: string, data: unknown): void {
    if (res.writableEnded || res.destroyed) return;
    if (res.writableLength > MAX_BUFFERED_BYTES) {
      // Never log from here: a warning would come back through the log ring into this stream.
      res.destroy();
      return;
    }
    // JSON.stringify never emits a raw newline, so one `data:` line is one event.
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }
}
