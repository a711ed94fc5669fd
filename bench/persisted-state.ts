/**
 * Realistic persisted state for restart benchmarks, written through a running runtime over MQTT:
 * retained messages, offline persistent sessions with queued QoS 1 messages, and audited device commands
 * (the same amounts as `bench:footprint`'s restart). The caller kills the runtime afterwards, so the next
 * start restores all of it.
 */
import mqtt from 'mqtt';

export const PERSISTED_STATE = { retained: 1000, persistent_sessions: 200, queued_per_session: 20, audited_commands: 500 } as const;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function writePersistedState(mqttPort: number): Promise<void> {
  const publisher = await mqtt.connectAsync({ host: '127.0.0.1', port: mqttPort, clientId: 'bench-state-pub', reconnectPeriod: 0 });
  const payload = JSON.stringify({ value: 'x'.repeat(200) });
  for (let i = 0; i < PERSISTED_STATE.retained; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, j) => publisher.publishAsync(`bench/retained/${i + j}`, payload, { qos: 1, retain: true })));
  }
  for (let i = 0; i < PERSISTED_STATE.persistent_sessions; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, PERSISTED_STATE.persistent_sessions - i) }, async (_, j) => {
        const client = await mqtt.connectAsync({ host: '127.0.0.1', port: mqttPort, clientId: `bench-session-${i + j}`, clean: false, reconnectPeriod: 0 });
        await client.subscribeAsync('bench/queue/#', { qos: 1 });
        await client.endAsync();
      }),
    );
  }
  for (let i = 0; i < PERSISTED_STATE.queued_per_session; i++) await publisher.publishAsync(`bench/queue/${i}`, payload, { qos: 1 });
  // Device commands: each one is audited.
  for (let i = 0; i < PERSISTED_STATE.audited_commands; i += 50) {
    await Promise.all(
      Array.from({ length: 50 }, (_, j) => publisher.publishAsync('clawbox/lamp/set', JSON.stringify({ state: (i + j) % 2 ? 'ON' : 'OFF' }), { qos: 1 })),
    );
  }
  await sleep(1000); // the store and the audit log write what they were given
  await publisher.endAsync();
}
