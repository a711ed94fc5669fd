/** Test helpers for the channels: a composed app with a gateway, and a line-chat client. */
import { Writable } from 'node:stream';
import { type Socket, connect } from 'node:net';
import { type App, createApp } from '../app/app.js';
import { AGENT_REQUEST_INPUT } from '../agent/operations.js';
import { makeTestContext } from '../app/testing/test-context.js';
import { createLogging } from '../runtime/logging.js';
import { FrontDoor } from '../runtime/operations/front-door.js';
import { type OperationContext, defineOperation } from '../runtime/operations/operation.js';
import { ChannelGateway, type ChannelGatewayDeps } from './gateway.js';

export interface AppWithGateway {
  app: App;
  gateway: ChannelGateway;
  /** The front door the test's gateway runs chat.message on (the app's, unless a stand-in agent was given). */
  frontDoor: FrontDoor;
  stateDir: string;
  stop(): Promise<void>;
}

/** agent.request's input (agent/operations.ts). */
export interface AgentRequestInput {
  text: string;
  session?: string;
  deadline_ms?: number;
}

/** A stand-in for the agent: what agent.request answers, with the operation's context (signal, principal). */
export type AgentStandIn = (input: AgentRequestInput, ctx: OperationContext) => Promise<unknown>;

/**
 * A stand-in operation with agent.request's name, schema and permission (agent/operations.ts), for tests
 * that count or hold what reaches the agent. It lives on a front door of its own, so the app's real
 * agent.request stays as it is; a stand-in may pass a request on to the real one.
 */
function standInAgentRequest(handler: AgentStandIn) {
  return defineOperation<AgentRequestInput, unknown>({
    name: 'agent.request',
    summary: 'test stand-in for the agent',
    input: AGENT_REQUEST_INPUT,
    permission: () => 'agent/request',
    changesWorld: false,
    deadlineMs: 30_000,
    handler,
  });
}

/** Passes a stand-in's request on to the app's real agent.request, as the same caller. */
export function realAgent(app: App, input: AgentRequestInput, ctx: OperationContext): Promise<unknown> {
  return app.frontDoor.invoke('agent.request', input, {
    principal: ctx.principal,
    source: ctx.source,
    signal: ctx.signal,
    deadlineMs: Math.max(0, ctx.deadline - Date.now()),
  });
}

/** A real app (temp or given state dir, ports 0, local mode with demo devices) with a gateway configured by the test. */
export async function startAppWithGateway(
  options: {
    stateDir?: string;
    channels?: Record<string, unknown>;
    /** A stand-in for agent.request (else the app's real agent answers). */
    agent?: (app: App) => AgentStandIn;
    safety?: ChannelGatewayDeps['safety'];
    /** Raw config for the app (as in the YAML file), e.g. `{ http: { token } }`. */
    config?: Record<string, unknown>;
    mode?: 'local' | 'appliance';
    /** The built web app to serve (see web/build.ts); none by default. */
    webRoot?: string;
  } = {},
): Promise<AppWithGateway> {
  const test = makeTestContext({
    ...(options.stateDir ? { stateDir: options.stateDir } : {}),
    ...(options.config ? { config: options.config } : {}),
    ...(options.mode ? { mode: options.mode } : {}),
  });
  const sink = new Writable({ write: (_chunk, _enc, done) => done() });
  const logging = createLogging({ level: 'silent', components: {}, pretty: false, destination: sink });
  const app = createApp({ config: test.ctx.config, logging, env: {}, ...(options.webRoot ? { webRoot: options.webRoot } : {}) });
  await app.start();
  // The test's own gateway (its agent, channel config, safety) replaces the one the app composed.
  await app.channels.stop();
  let frontDoor = app.frontDoor;
  if (options.agent) {
    frontDoor = new FrontDoor({ logger: logging.forComponent('front-door') });
    frontDoor.register(standInAgentRequest(options.agent(app)));
  }
  const gateway = new ChannelGateway({
    frontDoor,
    http: app.http,
    config: options.channels ?? { line_chat: { enabled: true, port: 0 } },
    safety: options.safety ?? null,
  });
  await gateway.start(app.ctx);
  let stopped = false;
  return {
    app,
    gateway,
    frontDoor,
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
