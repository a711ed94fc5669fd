/**
 * A wrong-password login flood and a device-style request loop over real mqtt.js clients, shared by the
 * login-flood test and bench/login-flood.ts. Each flood loop connects from its own loopback source address
 * (127.0.0.0/8 is all loopback on Linux), as attackers on separate hosts would.
 */
import net from 'node:net';
import { type IClientOptions, MqttClient } from 'mqtt';

/** Connects from `localAddress`; resolves once connected, rejects with the CONNACK error (its `code`). */
export function connectFrom(port: number, localAddress: string, options: IClientOptions = {}): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = new MqttClient(() => net.connect({ host: '127.0.0.1', port, localAddress }), {
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      protocolVersion: 4,
      ...options,
    });
    const fail = (error: Error): void => {
      client.end(true);
      reject(error);
    };
    client.once('connect', () => {
      client.off('error', fail);
      client.off('close', closed);
      resolve(client);
    });
    client.once('error', fail);
    const closed = (): void => fail(new Error('connection closed before CONNACK'));
    client.once('close', closed);
  });
}

export interface FloodTally {
  attempts: number;
  /** Logins that got in: a guard that works keeps this at 0. */
  connected: number;
  /** CONNACK return codes (and 'closed' / 'other') with their counts. */
  refusals: Record<string, number>;
}

/** One attacker: wrong-password logins one after another from `address` until `stop()` or `attempts`. */
export async function floodLoop(
  port: number,
  address: string,
  usernames: readonly string[],
  limit: { stop?: () => boolean; attempts?: number },
  tally: FloodTally,
): Promise<void> {
  for (let i = 0; !limit.stop?.() && (limit.attempts === undefined || i < limit.attempts); i++) {
    tally.attempts++;
    const username = usernames[i % usernames.length]!;
    try {
      const client = await connectFrom(port, address, { username, password: `guess-${i}`, clientId: `flood-${address}-${i}` });
      tally.connected++;
      client.end(true);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      const key = typeof code === 'number' ? String(code) : /closed/.test(String(error)) ? 'closed' : 'other';
      tally.refusals[key] = (tally.refusals[key] ?? 0) + 1;
    }
  }
}

/** A device: answers every `devices/<id>/set` with the same payload on `devices/<id>/state` (QoS 1). */
export async function startResponder(client: MqttClient, id: string): Promise<void> {
  client.on('message', (topic, payload) => {
    if (topic === `devices/${id}/set`) client.publish(`devices/${id}/state`, payload, { qos: 1 });
  });
  await client.subscribeAsync(`devices/${id}/set`, { qos: 1 });
}

/**
 * Sequential QoS 1 requests to a responder until `stop()` (and at least `min`); returns each round trip in
 * ms. A request not answered within `timeoutMs` rejects.
 */
export async function requestLoop(
  client: MqttClient,
  id: string,
  limit: { stop: () => boolean; min?: number; timeoutMs?: number },
): Promise<number[]> {
  const waiting = new Map<string, () => void>();
  client.on('message', (topic, payload) => {
    if (topic === `devices/${id}/state`) waiting.get(payload.toString())?.();
  });
  await client.subscribeAsync(`devices/${id}/state`, { qos: 1 });
  const rtts: number[] = [];
  for (let i = 0; !limit.stop() || rtts.length < (limit.min ?? 0); i++) {
    const tag = `req-${i}`;
    const began = performance.now();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiting.delete(tag);
        reject(new Error(`request ${tag} not answered within ${limit.timeoutMs ?? 30_000} ms`));
      }, limit.timeoutMs ?? 30_000);
      waiting.set(tag, () => {
        clearTimeout(timer);
        waiting.delete(tag);
        resolve();
      });
      client.publish(`devices/${id}/set`, tag, { qos: 1 });
    });
    rtts.push(performance.now() - began);
  }
  return rtts;
}
