/**
 * The health check a new slot must pass before it is marked good, run on the box against the local
 * runtime with the box's own config: the runtime is ready (/healthz), the status page answers with the
 * API token, the broker answers an MQTT CONNECT, and a device command makes the round trip through the
 * front door (on a simulated switch only: a health check never moves real hardware). Each step retries
 * until the deadline, since the runtime may still be starting.
 */
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../runtime/config/schema.js';
import { httpsModule } from '../runtime/system/tls-on-demand.js';

export interface HealthStep {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** Between tries of a step; each try is cheap, but the box may be a slow board still starting clawbox. */
const RETRY_MS = 3000;

interface DeviceEntry {
  readonly id: string;
  readonly driver?: string;
  readonly capabilities?: readonly string[];
}

interface Target {
  readonly tls: boolean;
  readonly httpPort: number;
  readonly mqttPort: number;
  readonly token: string | undefined;
  readonly device: string | undefined;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host.startsWith('127.') || host === '::1';
}

export function healthTarget(config: Config): Target {
  const tls = config.http.tls?.enabled ?? 'auto';
  const devices = ((config as unknown as { devices?: DeviceEntry[] }).devices ?? []).filter(
    (d) => d.driver === 'simulated' && (d.capabilities ?? []).includes('switch'),
  );
  return {
    tls: tls === true || (tls === 'auto' && config.mode === 'appliance' && !isLoopback(config.http.host)),
    httpPort: config.http.port,
    mqttPort: config.broker.port,
    token: config.http.token,
    device: devices[0]?.id,
  };
}

interface Reply {
  readonly status: number;
  readonly body: string;
}

function call(target: Target, method: string, path: string, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (target.token) headers.authorization = `Bearer ${target.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    // Loopback to the box's own listener, whose certificate is self-signed: nothing to verify here.
    const options = { host: '127.0.0.1', port: target.httpPort, method, path, headers, timeout: 10_000, rejectUnauthorized: false };
    const req = (target.tls ? httpsModule().request : httpRequest)(options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= 1024 * 1024) chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/** An MQTT 3.1.1 CONNECT without credentials: any CONNACK (accepted or refused) means the broker answers. */
function mqttAnswers(port: number): Promise<string> {
  const clientId = Buffer.from(`clawbox-health-${process.pid}`);
  const variable = Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0, 10, 0, clientId.length]);
  const packet = Buffer.concat([Buffer.from([0x10, variable.length + clientId.length]), variable, clientId]);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(10_000, () => socket.destroy(new Error('no CONNACK within 10 s')));
    socket.on('connect', () => socket.write(packet));
    socket.once('data', (data: Buffer) => {
      socket.destroy();
      if (data[0] === 0x20 && data.length >= 4) resolve(`CONNACK return code ${data[3]}`);
      else reject(new Error(`answered 0x${data[0]?.toString(16)} instead of a CONNACK`));
    });
    socket.on('error', reject);
  });
}

async function stepHealthz(target: Target): Promise<string> {
  const reply = await call(target, 'GET', '/healthz');
  if (reply.status !== 200) throw new Error(`/healthz answered ${reply.status}`);
  return reply.body.slice(0, 200);
}

async function stepStatus(target: Target): Promise<string> {
  const reply = await call(target, 'GET', '/api/status');
  if (reply.status !== 200) throw new Error(`/api/status answered ${reply.status}`);
  const doc = JSON.parse(reply.body) as unknown;
  if (typeof doc !== 'object' || doc === null) throw new Error('/api/status is not a JSON object');
  return `status document with ${Object.keys(doc).length} sections`;
}

async function stepDevice(target: Target): Promise<string> {
  if (!target.device) {
    const reply = await call(target, 'GET', '/api/devices');
    if (reply.status !== 200) throw new Error(`/api/devices answered ${reply.status}`);
    return 'no simulated switch configured: the device list answers';
  }
  const id = encodeURIComponent(target.device);
  const got = await call(target, 'POST', `/api/devices/${id}/get`, '{}');
  if (got.status !== 200) throw new Error(`get ${target.device} answered ${got.status}: ${got.body.slice(0, 200)}`);
  const state = (JSON.parse(got.body) as { data?: { state?: { state?: unknown } } }).data?.state?.state;
  const want = state === 'ON' ? 'ON' : 'OFF';
  // Sets the state it already has: a full command round trip that changes nothing.
  const set = await call(target, 'POST', `/api/devices/${id}/set`, JSON.stringify({ state: want }));
  const answered = (JSON.parse(set.body) as { data?: { state?: { state?: unknown } } }).data?.state?.state;
  if (set.status !== 200 || answered !== want) throw new Error(`set ${target.device} ${want} answered ${set.status}: ${set.body.slice(0, 200)}`);
  return `${target.device}: state ${want} set and read back`;
}

export interface HealthOptions {
  /** How long the whole check may wait for the runtime, in ms. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  readonly onStep?: (step: HealthStep) => void;
  /** True once waiting longer cannot help (the runtime's service has failed for good). */
  readonly hopeless?: () => boolean;
}

export async function checkHealth(target: Target, options: HealthOptions): Promise<HealthStep[]> {
  const deadline = Date.now() + options.timeoutMs;
  const steps: [string, () => Promise<string>][] = [
    ['runtime ready (/healthz)', () => stepHealthz(target)],
    ['status page (/api/status with the API token)', () => stepStatus(target)],
    ['MQTT broker answers', () => mqttAnswers(target.mqttPort)],
    ['device command round trip', () => stepDevice(target)],
  ];
  const results: HealthStep[] = [];
  for (const [name, run] of steps) {
    let last = 'not tried';
    let ok = false;
    for (;;) {
      options.signal?.throwIfAborted();
      try {
        last = await run();
        ok = true;
        break;
      } catch (error) {
        last = (error as Error).message;
      }
      if (Date.now() + RETRY_MS > deadline || options.hopeless?.()) break;
      await sleep(RETRY_MS, undefined, options.signal ? { signal: options.signal } : {});
    }
    const step = { name, ok, detail: last };
    results.push(step);
    options.onStep?.(step);
    if (!ok) break;
  }
  return results;
}
