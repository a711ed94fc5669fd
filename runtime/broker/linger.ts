/**
 * A server DISCONNECT the client can read. aedes writes the DISCONNECT and then destroys the socket; when
 * the client has sent more than the broker read (a client over its Receive Maximum usually has: its next
 * PUBLISHes or PUBRELs are in the broker's receive buffer), closing a socket with unread data makes the
 * kernel send a reset instead of a FIN, and a reset can discard the DISCONNECT before the client reads it:
 * the client sees "connection reset" and never learns why.
 *
 * So, for a connection the broker is refusing: what the client still sends is read and discarded, and the
 * socket is ended (FIN after the DISCONNECT) instead of destroyed; it is destroyed once the client closes
 * its side, or after `lingerMs` at the latest. A destroy with an error (a broken connection) stays immediate.
 */
import type { Duplex } from 'node:stream';

export const LINGER_MS = 2000;

export function lingerOnClose(conn: Duplex, lingerMs = LINGER_MS): void {
  // Flowing mode once aedes drops its 'readable' listener: the receive buffer is drained, not left unread.
  conn.on('data', () => {});
  const destroy = conn.destroy.bind(conn);
  let ending = false;
  conn.destroy = ((error?: Error) => {
    if (error || ending || conn.destroyed) return destroy(error);
    ending = true;
    const timer = setTimeout(() => destroy(), lingerMs);
    timer.unref();
    conn.once('close', () => clearTimeout(timer));
    conn.once('end', () => destroy());
    conn.end();
    return conn;
  }) as Duplex['destroy'];
}
