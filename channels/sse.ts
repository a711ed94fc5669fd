/**
 * A server-sent-events response whose head is written with the first event, so that anything that fails
 * before the first event can still answer as a plain HTTP error with its status.
 */
import type { ServerResponse } from 'node:http';

export class SseResponse {
  readonly #res: ServerResponse;
  #started = false;

  constructor(res: ServerResponse) {
    this.#res = res;
  }

  /** True once the head (200, text/event-stream) went out: errors must be events from now on. */
  get started(): boolean {
    return this.#started;
  }

  /** One event; `data` is sent as JSON unless it is a string. */
  send(data: unknown, event?: string): void {
    const res = this.#res;
    if (!this.#started) {
      this.#started = true;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        // Reverse proxies (nginx) would otherwise hold the tokens back.
        'x-accel-buffering': 'no',
      });
    }
    if (res.writableEnded || res.destroyed) return;
    res.write(`${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  }

  end(): void {
    if (!this.#res.writableEnded) this.#res.end();
  }
}
