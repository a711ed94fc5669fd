// Test fixture: tools that succeed, and tools that misbehave in every way the host must survive.
import { threadId } from 'node:worker_threads';

const instance = `${process.pid}:${threadId}:${Date.now()}:${Math.random()}`;
let ctx;
const received = [];

export default {
  async start(context) {
    ctx = context;
    try {
      await ctx.mqtt.subscribe('fixture/in/#', (topic, payload) => received.push({ topic, payload }));
    } catch (error) {
      ctx.log.warn(`no MQTT: ${error.message}`);
    }
    ctx.log.info('node-basic started', { greeting: ctx.config.greeting });
  },
  tools: {
    add: ({ a, b }) => ({ sum: a + b }),
    hello: ({ who }) => ({ text: `${ctx.config.greeting}, ${who}` }),
    throws: () => {
      throw new Error('boom');
    },
    coded: () => {
      throw Object.assign(new Error('not for you'), { code: 'FORBIDDEN' });
    },
    bad_result: () => ({ sum: 'not a number' }),
    hang: () => {
      for (;;) {
        // spin
      }
    },
    slow: ({ ms = 100 }, call) =>
      new Promise((resolve) => {
        const timer = setTimeout(() => resolve({ waited: ms }), ms);
        call.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve({ aborted: true });
        });
      }),
    exit: () => process.exit(3),
    crash_later: () => {
      setTimeout(() => {
        throw new Error('late boom');
      }, 5);
      return { ok: true };
    },
    flood: ({ mb = 8 }) => {
      const chunk = 'x'.repeat(1024 * 1024 - 1) + '\n';
      for (let i = 0; i < mb; i++) process.stdout.write(chunk);
      return { written_mb: mb };
    },
    huge_result: () => ({ data: 'y'.repeat(8 * 1024 * 1024) }),
    eat_memory: () => {
      const hoard = [];
      for (;;) hoard.push(new Array(1e6).fill(Math.random()));
    },
    whoami: () => ({ instance, received }),
    devices: async (_args, call) => call.devices.list(),
    switch: async ({ id, command }, call) => call.devices.execute(id, command),
    publish: async ({ topic, payload }) => {
      await ctx.mqtt.publish(topic, payload);
      return { ok: true };
    },
  },
};
