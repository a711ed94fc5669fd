/** Test helpers for the channels: a composed app with a gateway, and a line-chat client. */
import { Writable } from 'node:stream';
import { type Socket, connect } from 'node:net';
import { type App, createApp } from '../app/app.js';
import { makeTestContext } from '../runtime/broker/test-context.js';
import { createLogging } from '../runtime/logging.js';
import { type AgentHandle, ChannelGateway, type ChannelGatewayDeps } from './gateway.js';

export interface AppWithGateway {
  app: App;
  gateway: ChannelGateway;
  stateDir: string;
  stop(): Promise<void>;
}

/** A real app (temp or given state dir, ports 0, local mode with demo devices) with a gateway configured by the test. */
export async function startAppWithGateway(
  options: {
    stateDir?: string;
    channels?: Record<string, unknown>;
    agent?: (app: App) => ChannelGatewayDeps['agent'];
    safety?: ChannelGatewayDeps['safety'];
    /** Raw config for the app (as in the YAML file), e.g. `{ http: { token } }`. */
    config?: Record<string, unknown>;
    mode?: 'local' | 'appliance';
  } = {},
): Promise<AppWithGateway> {
  const test = makeTestContext({
    ...(options.stateDir ? { stateDir: options.stateDir } : {}),
    ...(options.config ? { config: options.config } : {}),
    ...(options.mode ? { mode: options.mode } : {}),
  });
  const sink = new Writable({ write: (_chunk, _enc, done) => done() });
  const logging = createLogging({ level: 'silent', components: {}, pretty: false, destination: sink });
  const app = createApp({ config: test.ctx.config, logging, env: {} });
  await app.start();
  // The test's own gateway (its agent, channel config, safety) replaces the one the app composed.
  await app.channels.stop();
  const gateway = new ChannelGateway({
    agent: options.agent ? options.agent(app) : app.agent,
    http: app.http,
    config: options.channels ?? { line_chat: { enabled: true, port: 0 } },
    ...(options.safety ? { safety: options.safety } : {}),
  });
  await gateway.start(app.ctx);
  let stopped = false;
  return {
    app,
    gateway,
    stateDir: test.stateDir,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await gateway.stop();
      await app.stop();
      test.cleanup();
    },
  };
}

export type { AgentHandle };

/** A line-chat client: write lines, await the next line received. */
export interface LineClient {
  socket: Socket;
  say(line: string): void;
  next(timeoutMs?: number): Promise<string>;
  close(): void;
}

export async function lineClient(port: number): Promise<LineClient> {
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.setEncoding('utf8');
  const lines: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  let buffer = '';
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    let at = buffer.indexOf('\n');
    while (at >= 0) {
      const line = buffer.slice(0, at);
      buffer = buffer.slice(at + 1);
      at = buffer.indexOf('\n');
      const waiter = waiting.shift();
      if (waiter) waiter(line);
      else lines.push(line);
    }
  });
  return {
    socket,
    say: (line) => socket.write(`${line}\n`),
    next: (timeoutMs = 5000) => {
      const ready = lines.shift();
      if (ready !== undefined) return Promise.resolve(ready);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no line from the line-chat server in time')), timeoutMs);
        waiting.push((line) => {
          clearTimeout(timer);
          resolve(line);
        });
      });
    },
    close: () => socket.destroy(),
  };
}
