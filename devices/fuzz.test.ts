/**
 * Fuzz: 10,500 random and mutated payloads on set, cmnd and bridge request topics through a real broker
 * and a real MQTT client. Each one must be answered exactly once; a set is answered with a state exactly
 * when an independent oracle (written here without ajv) says it is valid, and an invalid one leaves every
 * device unchanged. Seeded: a failure prints the seed (CLAWBOX_FUZZ_SEED reproduces it).
 */
import t from 'tap';
import { seededRandom } from '../runtime/seeded-random.js';
import { connectClient, json, startStack } from './fixtures/stack.js';

const seed = Number(process.env.CLAWBOX_FUZZ_SEED ?? Date.now() % 2 ** 31);
const rand = seededRandom(seed);
const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));

const LIMIT = 1024;
const KINDS = {
  light: ['switch', 'dimmer'],
  thermo: [{ type: 'thermostat', min: 10, max: 25, step: 0.5, modes: ['off', 'heat'] }],
  blind: ['cover'],
  temp: [{ type: 'sensor', readings: [{ property: 'temperature' }] }],
} as const;
type Kind = keyof typeof KINDS;
/** Several devices of each kind, so that one worker per device can run in parallel. */
const COPIES = Number(process.env.COPIES ?? 8);
const devices = (Object.keys(KINDS) as Kind[]).flatMap((kind) =>
  Array.from({ length: COPIES }, (_, i) => ({ id: `${kind}-${i}`, kind, driver: 'simulated', capabilities: KINDS[kind] })),
);

// ---- the oracle: what a valid set command is, per device, without the code under test ----------------
const isInt = (v: unknown, lo: number, hi: number) => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
const RULES: Record<string, Record<string, (v: unknown) => boolean>> = {
  light: { state: (v) => v === 'ON' || v === 'OFF' || v === 'TOGGLE', brightness: (v) => isInt(v, 0, 100) },
  thermo: {
    target_temperature: (v) => typeof v === 'number' && v >= 10 && v <= 25 && Number.isInteger(v * 2),
    mode: (v) => v === 'off' || v === 'heat',
  },
  blind: { state: (v) => v === 'OPEN' || v === 'CLOSE' || v === 'STOP', position: (v) => isInt(v, 0, 100) },
  temp: {},
};

function oracle(kind: string, payload: Buffer): boolean {
  const rules = RULES[kind];
  if (!rules || payload.length > LIMIT) return false;
  const text = payload.toString('utf8');
  if (kind === 'light' && ['ON', 'OFF', 'TOGGLE'].includes(text.trim().toUpperCase())) return true;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return false;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value).filter((k) => k !== 'transaction');
  if (keys.length === 0) return false;
  return keys.every((k) => Object.hasOwn(rules, k) && rules[k]!((value as Record<string, unknown>)[k]));
}

// ---- generators ---------------------------------------------------------------------------------------
const WORDS = ['state', 'brightness', 'target_temperature', 'mode', 'position', 'colour', '__proto__', 'constructor', 'transaction', 'temperature', ''];
const VALUES: unknown[] = ['ON', 'OFF', 'TOGGLE', 'on', 'OPEN', 'CLOSE', 'STOP', 'heat', 'off', 'cool', '', 'x'.repeat(50), 0, 1, 40, 100, 101, -1, 21.5, 21.3, 10, 25, 25.5, 1e308, -0, 0.5, true, false, null, [], {}, [1, 2], { a: 1 }];

function randomValue(depth = 0): unknown {
  const r = rand();
  if (r < 0.6 || depth > 2) return pick(VALUES);
  if (r < 0.7) return int(-1000, 1000) / pick([1, 2, 10, 3]);
  if (r < 0.8) return String.fromCharCode(...Array.from({ length: int(0, 12) }, () => int(1, 0x2fff)));
  if (r < 0.9) return Array.from({ length: int(0, 3) }, () => randomValue(depth + 1));
  return randomObject(depth + 1);
}

function randomObject(depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = int(0, 3); i > 0; i--) {
    const key = rand() < 0.85 ? pick(WORDS) : String(randomValue(depth + 1)).slice(0, 20);
    // defineProperty: a "__proto__" key must be an own property, as JSON.parse makes it.
    Object.defineProperty(out, key, { value: randomValue(depth), enumerable: true, writable: true, configurable: true });
  }
  if (rand() < 0.2) out.transaction = pick([1, 'tx', 'y'.repeat(200), null, {}]);
  return out;
}

function mutate(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const op = int(0, 5);
  if (bytes.length === 0 || op === 0) return Buffer.concat([bytes, Buffer.from([int(0, 255)])]);
  const i = int(0, bytes.length - 1);
  if (op === 1) return Buffer.concat([bytes.subarray(0, i), bytes.subarray(i + 1)]); // drop a byte
  if (op === 2) return bytes.subarray(0, i); // truncate
  if (op === 3) {
    const copy = Buffer.from(bytes);
    copy[i] = int(0, 255); // flip a byte
    return copy;
  }
  if (op === 4) return Buffer.from(text.replace(/\d+/, String(int(-500, 500))));
  return Buffer.concat([bytes.subarray(0, i), bytes.subarray(i)]); // unchanged: still valid sometimes
}

const VALID: Record<string, Record<string, () => unknown>> = {
  light: { state: () => pick(['ON', 'OFF', 'TOGGLE']), brightness: () => int(0, 100) },
  thermo: { target_temperature: () => int(20, 50) / 2, mode: () => pick(['off', 'heat']) },
  blind: { state: () => pick(['OPEN', 'CLOSE', 'STOP']), position: () => int(0, 100) },
  temp: { temperature: () => int(0, 30) },
};

function setPayload(kind: string): Buffer {
  const r = rand();
  if (r < 0.2) return Buffer.from(JSON.stringify(randomObject()));
  if (r < 0.45) return mutate(JSON.stringify(randomObject()));
  if (r < 0.55) return Buffer.from(pick(['ON', 'off', 'Toggle', ' on ', 'ONN', '', 'null', '[]', '"ON"', '{}', '{"state":"ON"}{']));
  if (r < 0.62) return Buffer.from(Array.from({ length: int(0, 40) }, () => int(0, 255)));
  if (r < 0.64) return Buffer.alloc(LIMIT + int(1, 200), 0x20);
  // Valid commands, some mutated, so that both kinds of answer are exercised.
  const command: Record<string, unknown> = {};
  for (const [key, make] of Object.entries(VALID[kind]!)) if (rand() < 0.7) command[key] = make();
  if (rand() < 0.1) command.transaction = 'tx';
  return rand() < 0.7 ? Buffer.from(JSON.stringify(command)) : mutate(JSON.stringify(command));
}

const CMND = ['POWER', 'Power1', 'power', 'Dimmer', 'DIMMER', 'STATE', 'Status', 'target_temperature', 'mode', 'position', 'state', 'Color', 'Backlog', 'x'];
function cmndPayload(): Buffer {
  const r = rand();
  if (r < 0.5) return Buffer.from(pick(['ON', 'OFF', 'TOGGLE', '1', '0', '2', '', '+', '-', '40', '101', '-5', '21.5', 'heat', 'OPEN', 'MAYBE', '"off"']));
  if (r < 0.8) return Buffer.from(String(randomValue()));
  return Buffer.from(Array.from({ length: int(0, 30) }, () => int(0, 255)));
}

const BRIDGE = ['devices', 'device/add', 'device/remove', 'device/rename', 'device/schema', 'device/nope', 'device/add/x'];
function bridgePayload(name: string): Buffer {
  const id = pick(['fz-1', 'fz-2', 'FZ', '', 'bridge', 'a/b', 'x'.repeat(70), 'light-0']);
  const body: Record<string, unknown> = rand() < 0.7 ? { id } : randomObject();
  if (name === 'device/add' && rand() < 0.6) {
    body.driver = pick(['simulated', 'serial-line', 'nope', 3]);
    body.capabilities = pick([['switch'], ['switch', 'cover'], [], ['sensor'], 'switch', [{ type: 'dimmer' }]]);
  }
  if (name === 'device/rename') body.name = pick(['New', '', 5, 'n'.repeat(130)]);
  if (body.id === 'light-0' && name !== 'device/schema') body.id = 'fz-3'; // never remove or rename a fuzz target
  if (rand() < 0.2) body.transaction = pick([7, 'tx']);
  const text = JSON.stringify(body);
  return rand() < 0.3 ? mutate(text) : Buffer.from(text);
}

t.test('fuzz set / cmnd / bridge: every payload answered once, invalid ones change nothing', async (t) => {
  t.comment(`seed ${seed}`);
  const stack = await startStack(t, { config: { devices: devices.map(({ kind, ...d }) => d) }, deps: { maxPayloadBytes: LIMIT } });
  // A real client: requests are what connected clients publish (the runtime's own publishes are not requests).
  const c = await connectClient(t, stack.url);
  await c.subscribe('clawbox/+', 'clawbox/+/error', 'stat/+/RESULT', 'clawbox/bridge/response/#');
  // Let the retained states of every device arrive before counting answers.
  for (const device of devices) await c.waitFor(`clawbox/${device.id}`, () => true, undefined, true);
  c.clear();
  const registryBefore = JSON.stringify(stack.service.list().map((d) => [d.id, d.name]));
  const total = Number(process.env.CLAWBOX_FUZZ_COUNT ?? 10_500);
  const counts = { set: 0, cmnd: 0, bridge: 0, valid: 0, unknown_device: 0 };
  const perDevice = new Map<string, { sent: number; results: number }>();
  const mismatches: string[] = [];
  const stateOf = (id: string) => JSON.stringify(stack.service.get(id)?.state);

  /** One worker per device: its messages are answered in order, so the next answer is this one's. */
  async function deviceWorker(device: (typeof devices)[number], n: number): Promise<void> {
    const tally = { sent: 0, results: 0 };
    perDevice.set(device.id, tally);
    for (let i = 0; i < n && mismatches.length < 5; i++) {
      const before = stateOf(device.id);
      if (rand() < 0.7) {
        const payload = setPayload(device.kind);
        const valid = oracle(device.kind, payload);
        const answer = await c
          .request(`clawbox/${device.id}/set`, payload, [`clawbox/${device.id}`, `clawbox/${device.id}/error`])
          .catch((error: Error) => {
            mismatches.push(`${device.id} ${JSON.stringify(payload.toString('utf8').slice(0, 80))}: ${error.message}`);
            return { topic: '', payload: '' };
          });
        if (!answer.topic) return;
        counts.set++;
        tally.sent++;
        if (valid) counts.valid++;
        if ((answer.topic === `clawbox/${device.id}`) !== valid) {
          mismatches.push(`${device.id} ${JSON.stringify(payload.toString('utf8').slice(0, 80))}: oracle ${valid}, answer ${answer.payload}`);
        }
        if (!valid && stateOf(device.id) !== before) mismatches.push(`${device.id}: invalid payload changed state`);
      } else {
        const answer = await c.request(`cmnd/${device.id}/${pick(CMND)}`, cmndPayload(), `stat/${device.id}/RESULT`);
        counts.cmnd++;
        tally.sent++;
        tally.results++;
        const body = json(answer.payload);
        if ((body.Command === 'Error' || body.Command === 'Unknown') && stateOf(device.id) !== before) {
          mismatches.push(`cmnd ${device.id}: an error changed state`);
        }
      }
    }
  }

  async function unknownDeviceWorker(n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const id = pick(['ghost', 'LIGHT', 'light-x', 'Ω']);
      const answer = await c.request(`clawbox/${id}/set`, setPayload('light'), [`clawbox/${id}`, `clawbox/${id}/error`]);
      counts.unknown_device++;
      const body = json(answer.payload);
      if (answer.topic !== `clawbox/${id}/error` || (body.code !== 'DEVICE_NOT_FOUND' && body.code !== 'PAYLOAD_INVALID' && body.code !== 'PAYLOAD_TOO_LARGE')) {
        mismatches.push(`unknown ${id}: ${answer.payload}`);
      }
    }
  }

  /** Bridge responses share a topic per request name: one worker per name, one request at a time. */
  async function bridgeWorker(name: string, n: number): Promise<void> {
    for (let i = 0; i < n && mismatches.length < 5; i++) {
      const answer = await c.request(`clawbox/bridge/request/${name}`, bridgePayload(name), `clawbox/bridge/response/${name}`);
      counts.bridge++;
      const body = json(answer.payload);
      if (body.status !== 'ok' && body.status !== 'error') mismatches.push(`bridge ${name}: ${answer.payload}`);
    }
  }

  const bridgeShare = Math.round(total * 0.12);
  const unknownShare = Math.round(total * 0.03);
  const perWorker = Math.ceil((total - bridgeShare - unknownShare) / devices.length);
  const timed = async (label: string, work: Promise<void>) => {
    const started = Date.now();
    await work;
    if (process.env.CLAWBOX_FUZZ_TIMES) console.error(label, Date.now() - started, 'ms');
  };
  await Promise.all([
    ...devices.map((d) => timed(d.id, deviceWorker(d, perWorker))),
    ...BRIDGE.map((name) => timed(name, bridgeWorker(name, Math.ceil(bridgeShare / BRIDGE.length)))),
    timed('unknown', unknownDeviceWorker(unknownShare)),
  ]);
  if (mismatches.length > 0) console.error(mismatches.join("\n"));
  t.same(mismatches, [], `seed ${seed}`);
  const sent = counts.set + counts.cmnd + counts.bridge + counts.unknown_device;
  t.ok(sent >= Math.min(10_000, total), `${sent} payloads: ${JSON.stringify(counts)}`);
  t.ok(counts.valid > total / 10, 'valid commands were part of the mix');

  // Exactly one answer each: after a quiet moment, count what every device's topics carried.
  await new Promise((r) => setTimeout(r, 200));
  for (const device of devices) {
    const tally = perDevice.get(device.id)!;
    const answers = c.received.filter((m) => m.topic === `clawbox/${device.id}` || m.topic === `clawbox/${device.id}/error`).length;
    const results = c.received.filter((m) => m.topic === `stat/${device.id}/RESULT`).length;
    if (answers !== tally.sent || results !== tally.results) {
      mismatches.push(`${device.id}: ${tally.sent} sent, ${answers} state/error answers, ${results}/${tally.results} RESULTs`);
    }
  }
  t.same(mismatches, [], 'one answer per payload');
  // Mutated device/add bodies may add devices of their own (e.g. id "bride"): only the fuzzed ones must be intact.
  const after = new Map(stack.service.list().map((d) => [d.id, d.name]));
  const before = JSON.parse(registryBefore) as Array<[string, string]>;
  t.same(
    before.filter(([id, name]) => after.get(id) !== name),
    [],
    'the fuzzed devices are all still there, under their names',
  );
  t.ok(stack.service.list().filter((d) => !d.id.startsWith('fz-')).every((d) => d.availability === 'online'));
});
