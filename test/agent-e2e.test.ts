/**
 * The agent lane through the real runtime process: MQTT agent topic -> scheduler -> fast path or model ->
 * device layer. The model part uses the real stories260K GGUF from ../shared/models when it is there.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import t from 'tap';
import { ROOT } from './cli-helpers.js';
import { startRuntime } from './runtime-process.js';

const STORIES = path.resolve(ROOT, '..', 'shared', 'models', 'stories260K.gguf');

interface AgentReply {
  status: 'ok' | 'error';
  transaction?: number;
  data?: { text: string; actions: { device: string; command: Record<string, unknown> }[]; path: string };
  error?: { code: string; message: string; retry_after_ms?: number };
}

async function agentClient(port: number) {
  const client: MqttClient = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 });
  const waiting = new Map<number, (reply: AgentReply) => void>();
  client.on('message', (_topic, payload) => {
    const reply = JSON.parse(payload.toString()) as AgentReply;
    if (typeof reply.transaction === 'number') waiting.get(reply.transaction)?.(reply);
  });
  await client.subscribeAsync('clawbox/agent/response', { qos: 1 });
  let next = 1;
  return {
    client,
    ask(text: string, extra: Record<string, unknown> = {}, timeoutMs = 15000): Promise<AgentReply> {
      const transaction = next++;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no agent reply to "${text}"`)), timeoutMs);
        waiting.set(transaction, (reply) => {
          clearTimeout(timer);
          resolve(reply);
        });
        void client.publishAsync('clawbox/agent/request', JSON.stringify({ text, transaction, ...extra }), { qos: 1 });
      });
    },
  };
}

t.test('fast path: natural-language commands reach the demo devices without a model', async (t) => {
  const runtime = await startRuntime();
  t.teardown(() => runtime.child.kill('SIGKILL'));
  const agent = await agentClient(runtime.mqttPort);
  t.teardown(() => agent.client.end(true));

  const on = await agent.ask('turn on the lamp');
  t.match(on, { status: 'ok', data: { path: 'fast', actions: [{ device: 'lamp', command: { state: 'ON' } }] } });
  const status = (await (await fetch(`http://127.0.0.1:${runtime.httpPort}/api/status`)).json()) as {
    sections: { devices: { id: string; state: Record<string, unknown> }[] };
  };
  t.match(status.sections.devices.find((d) => d.id === 'lamp'), { state: { state: 'ON' } }, 'the lamp really is on');

  const badPayload = await new Promise<AgentReply>((resolve) => {
    agent.client.once('message', (_t, p) => resolve(JSON.parse(p.toString()) as AgentReply));
    void agent.client.publishAsync('clawbox/agent/request', '{"text": 42}', { qos: 1 });
  });
  t.match(badPayload, { status: 'error', error: { code: 'PAYLOAD_INVALID' } }, 'a bad request gets a specific error');

  const unmatched = await agent.ask('write me a poem about the sea');
  t.match(unmatched, { status: 'error', error: { code: 'MODEL_NOT_LOADED' } }, 'no model: only the fast path answers');
});

t.test('model path with a real GGUF: answers are validated tool calls or clear refusals', { skip: !existsSync(STORIES) && `no ${STORIES}` }, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-agent-'));
  const config = path.join(dir, 'config.yaml');
  writeFileSync(config, `models:\n  - name: stories\n    path: ${STORIES}\n    role: main\n    context_size: 2048\n    sequences: 2\n`);
  const runtime = await startRuntime({ args: ['--config', config] });
  t.teardown(() => runtime.child.kill('SIGKILL'));
  await runtime.waitForLog((l) => l.component === 'models' && /loaded/i.test(l.msg), 60000);
  // After loading, the agent measures the model (the scheduler's figures) and warms the prefix.
  const warmed = await runtime.waitForLog((l) => l.component === 'agent' && /main model warmed up/.test(l.msg), 60000);
  const rates = warmed.rates as { samples: number; prefill_ms_per_token: number | null };
  t.ok(rates.samples >= 3 && (rates.prefill_ms_per_token ?? 0) > 0, `calibrated before the first request: ${JSON.stringify(rates)}`);
  const agent = await agentClient(runtime.mqttPort);
  t.teardown(() => agent.client.end(true));

  const replies = await Promise.all(
    ['the weather is nice today', 'once upon a time there was a lamp', 'hello'].map((text) =>
      agent.ask(text, { deadline_ms: 5000 }, 30000),
    ),
  );
  for (const reply of replies) {
    if (reply.status === 'ok') {
      t.equal(reply.data?.path, 'model', 'not a fast-path phrase, so the model answered');
      for (const action of reply.data?.actions ?? []) t.ok(['lamp', 'light', 'thermostat', 'temperature', 'cover'].includes(action.device));
    } else {
      t.ok(['MODEL_OUTPUT_INVALID', 'BUSY', 'DEADLINE_EXCEEDED'].includes(reply.error!.code), `refused with ${reply.error!.code}: ${reply.error!.message}`);
    }
  }
  const fast = await agent.ask('turn off the lamp');
  t.match(fast, { status: 'ok', data: { path: 'fast' } }, 'fast path still first with a model loaded');

  // A new device changes the prompt prefix; it is re-warmed at once, not by the next request.
  await agent.client.publishAsync('clawbox/bridge/request/device/add', JSON.stringify({ id: 'kettle', driver: 'simulated', capabilities: ['switch'] }));
  await runtime.waitForLog((l) => l.component === 'agent' && /prompt prefix re-warmed/.test(l.msg), 20000);
  t.pass('prefix re-warmed after the device list changed');
});
