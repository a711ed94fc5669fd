/**
 * The `Date` header on every HTTP answer, written by us instead of Node (RFC 9110 §6.6.1: an origin server
 * with a clock sends one). Node formats its own with `toUTCString()`, and the first call of that in a process
 * pages ICU's time zone code into memory for good (runtime/system/timestamps.ts says why): the first
 * `/healthz` of an idle box would pay it.
 *
 * The servers are created with `ServerResponse: DatedResponse`, so every answer gets the header, including
 * the ones a route writes with writeHead itself; a header the route set stays. Answers written raw on a
 * socket (refused upgrades, unparsable requests) take theirs from rawHttpResponse.
 */
import { type IncomingMessage, ServerResponse } from 'node:http';
import { httpDate } from '../system/timestamps.js';

export class DatedResponse extends ServerResponse {
  constructor(req: IncomingMessage, options?: object) {
    // @ts-expect-error Node constructs a response with options the typings leave out (the socket's high-water mark and such): handed on as they are.
    super(req, options);
    this.sendDate = false;
  }

  // Node's implicit header path (first write or end) goes through writeHead too.
  override writeHead(...args: unknown[]): this {
    if (!this.headersSent && !this.hasHeader('date')) this.setHeader('Date', httpDate());
    return (super.writeHead as (...rest: unknown[]) => this).apply(this, args);
  }
}

/** A complete response without a body, written straight to a socket: `status` is `404 Not Found` and such. */
export function rawHttpResponse(status: string): string {
  return `HTTP/1.1 ${status}\r\nDate: ${httpDate()}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`;
}
