/**
 * Memory, documents and tools through the real runtime process, no model: an MQTT client's follow-up
 * ("turn it off") is resolved in its own conversation (by client id, no session named), a calculation is
 * answered by the compute plugin, and "what does the manual say" by the knowledge base indexed from
 * knowledge.dirs at start — each through the front door as that client.
 */
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import t from 'tap';
import { ROOT } from './cli-helpers.js';
import { startRuntime } from './runtime-process.js';

interface AgentReply {
  status: 'ok' | 'error';
  transaction?: number;
  data?: { text: string; actions: { device: string; command: Record<string, unknown> }[]; path: string; sources?: Array<{ source: string }> };
  error?: { code: string; message: string };
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
    ask(text: string): Promise<AgentReply> {
      const transaction = next++;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no agent reply to "${text}"`)), 30_000);
        waiting.set(transaction, (reply) => {
          clearTimeout(timer);
          resolve(reply);
        });
        void client.publishAsync('clawbox/agent/request', JSON.stringify({ text, transaction }), { qos: 1 });
      });
    },
  };
}

t.test('follow-ups per MQTT client, compute and the knowledge base without a model', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-e2e-kb-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const docs = path.join(dir, 'docs');
  cpSync(path.join(ROOT, 'knowledge', 'test-fixtures', 'docs'), docs, { recursive: true });
  const config = path.join(dir, 'config.yaml');
  writeFileSync(config, `knowledge:\n  dirs: [${JSON.stringify(docs)}]\n`);
  const runtime = await startRuntime({ args: ['--config', config], startTimeoutMs: 60_000 });
  t.teardown(() => runtime.child.kill('SIGKILL'));
  const alice = await agentClient(runtime.mqttPort);
  const bob = await agentClient(runtime.mqttPort);
  t.teardown(() => Promise.all([alice.client.endAsync(true), bob.client.endAsync(true)]));

  t.match(await alice.ask('turn on the lamp'), { status: 'ok', data: { actions: [{ device: 'lamp', command: { state: 'ON' } }] } });
  t.match(await alice.ask('turn it off'), { status: 'ok', data: { path: 'fast', actions: [{ device: 'lamp', command: { state: 'OFF' } }] } }, 'her follow-up');
  t.match(await bob.ask('turn it off'), { status: 'error', error: { code: 'MODEL_NOT_LOADED' } }, "another client has no 'it'");

  t.match(await alice.ask('what is 15 % of 240?'), { status: 'ok', data: { path: 'fast', text: '15 % of 240 = 36' } });

  await runtime.waitForLog((l) => l.component === 'knowledge' && /re-indexed/.test(String(l.msg)), 60_000);
  const eco = await alice.ask('What does the manual say about eco mode?');
  t.match(eco, { status: 'ok', data: { path: 'fast', text: /lowers the set point by 3 °C.*\(source: Clawtherm T2 Thermostat — User Manual — Modes > Eco mode\)/ } });
  t.equal(eco.data?.sources?.[0]?.source, path.join(docs, 'thermostat-manual.md'));

  const http = `http://127.0.0.1:${runtime.httpPort}`;
  const search = (await (await fetch(`${http}/api/kb/search?q=quiet+hours&limit=1`)).json()) as { status: string; data: { hits: Array<{ source: string; heading: string }> } };
  t.match(search, { status: 'ok', data: { hits: [{ source: path.join(docs, 'house-rules.html'), heading: 'Quiet hours' }] } }, 'GET /api/kb/search');
  t.equal((await fetch(`${http}/api/kb/search?limit=2`)).status, 400, 'no query: 400');
  const listed = (await (await fetch(`${http}/api/kb/documents`)).json()) as { data: { documents: unknown[] } };
  t.equal(listed.data.documents.length, 3, 'GET /api/kb/documents');
});
