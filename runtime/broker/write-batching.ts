/**
 * Fewer syscalls under load: mqtt-packet corks the socket for each packet it writes and uncorks on the
 * next tick, so every delivered message costs one writev. Deferring the uncork to setImmediate coalesces
 * all packets written to a connection in one event-loop turn into one writev. When the loop is idle the
 * check phase follows the poll phase directly, so a lone packet is not held back.
 *
 * Only for net/TLS sockets, which write a batch with one writev. A WebSocket stream has no writev and
 * would send the batch chunk by chunk after a close, losing the tail (e.g. the broker's last `offline`).
 *
 * Measured on the 2 vCPU machine (Broker alone, 50k x 64 B, A/B in one run): kernel time per message
 * down 3-10x, broker CPU per message down about a quarter (QoS 1) to a half (QoS 0).
 */
import type { Socket } from 'node:net';

export function batchWrites(stream: Socket): void {
  const uncork = stream.uncork.bind(stream);
  let pending = 0;
  const flush = (): void => {
    const count = pending;
    pending = 0;
    for (let i = 0; i < count; i++) uncork();
  };
  stream.uncork = () => {
    if (pending++ === 0) setImmediate(flush);
  };
  // aedes writes a refusing CONNACK and destroys the connection right after; what is corked must go first.
  const destroy = stream.destroy.bind(stream);
  stream.destroy = (error?: Error) => {
    flush();
    return destroy(error);
  };
}
