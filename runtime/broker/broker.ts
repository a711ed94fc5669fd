/**
 * The embedded MQTT broker (aedes 2, MQTT 3.1.1 and 5 on the same listeners, each client answered in its
 * own protocol): TCP, optional TLS, and WebSocket through the HTTP server;
 * users, ACLs and the anonymous policy (access.ts); retained messages and sessions on disk
 * (persistence.ts); and the runtime's own internal client (internal-client.ts), which is how the rest of
 * the runtime publishes and subscribes (the Messaging interface).
 *
 * `<base>/bridge/state` is `offline` (retained) from start until the lifecycle reaches `serving`, then
 * `online`, and `offline` again on stop. A crash leaves `online` behind, which the next start overwrites
 * with `offline` before it listens.
 */
// First: mqtt-packet (loaded by aedes) must find the quiet debug loggers and bl's stand-in in place (see
// quiet-debug.ts, mqtt-packet-memory.ts).
import { mqttPacketDebugQuiet } from './quiet-debug.js';
import { leanMqttPacket } from './mqtt-packet-memory.js';
import type { IncomingMessage } from 'node:http';
import { type Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Aedes, type AedesPublishPacket, type Client } from 'aedes';
import type { Config } from '../config/schema.js';
import type { Component, RuntimeContext } from '../context.js';
import { ClawboxError } from '../errors.js';
import type { Logger } from '../logging.js';
import type { ClientMessageHandler, ClientRequests, MessageHandler, Messaging, PublishOptions } from '../messaging.js';
import type { LoginGuard } from '../auth/login-guard.js';
import { AccessPolicy } from './access.js';
import { ClientRequestRouter } from './client-requests.js';
import { ConnectionExtensions } from './connection-extensions.js';
import { hardenBroker, hardenClient } from './aedes-hardening.js';
import { deliverQueueOnResume } from './session-resume.js';
import { keepDeliveryOrder } from './delivery-order.js';
import { type Synced, holdPubacks, releaseAfterPublish } from './durable-acks.js';
import { enforceDeliveryQos } from './delivery-qos.js';
import { frameLimitFor, limitIncomingPackets, maximumPacketSizeFor } from './frame-limit.js';
import { gateInboundPackets } from './inbound-gate.js';
import { InternalClient } from './internal-client.js';
import { limitOutgoingPackets } from './outbound-limits.js';
import { markRedeliveries } from './redelivery.js';
import { wipeWholeSessions } from './queued-messages.js';
import { closeServer, createTcpServer, createTlsServer, listen, loadTlsOptions } from './listeners.js';
import type { ClusterBrokerOptions, ClusterPersistence } from './cluster-persistence.js';
import { type BrokerPersistence, guardStoreStreams, openPersistence, skipCleanSessionAckLookups } from './persistence.js';
import { SessionExpiry, type SessionExpiryStore } from './session-expiry.js';
import { type MqttSessionExport, SessionErasure } from './session-erasure.js';
import { SessionOwners } from './session-owners.js';
import { isSessionMarker, trackSessions } from './session-present.js';
import { type BrokerMetrics, BrokerStats, registerBrokerMetrics } from './stats.js';
import { WebSocketListener, refuseUpgrade } from './websocket.js';
import { DelayedWills } from './will-persistence.js';
import { batchWrites } from './write-batching.js';

/** What the HTTP server calls for upgrade requests on a path it hands over. */
export interface UpgradeHandler {
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

export interface BrokerStatus {
  clients: number;
  subscriptions: number;
  messages: { received: number; sent: number };
  rates: { in_per_s: number; out_per_s: number };
  listeners: { tcp: number; tls?: number; websocket: string | null };
  persistence: 'level' | 'memory' | 'redis';
  /** Cluster mode: Redis' persistence policy, i.e. what an acknowledgement survives (cluster-persistence.ts). */
  durability?: ClusterPersistence['durability'];
  /**
   * Shared subscription groups and their connected members (null in cluster mode, where they are refused),
   * and QoS 1/2 messages not sent because a client's flow-control queue was full (connection-extensions.ts).
   */
  mqtt5: { shared_groups: number | null; shared_members: number | null; flow_queue_dropped: number };
}

/**
 * MQTT 5 limits the broker announces in CONNACK. Receive Maximum: QoS 2 messages a client may have in
 * flight toward the broker (the bound aedes 1.2 had as `maxInflightInbound`; 3.1.1 clients get it too).
 * Topic aliases: how many a client may define per connection (a small map each). Server keep alive: the
 * default of `broker.max_keepalive`, the longest keepalive an MQTT 5 client gets (0 = none is not
 * allowed), so a dead link is noticed; 3.1.1 clients keep theirs (MQTT 3.1.1 has no way to tell them).
 */
export const MQTT5_LIMITS = { receiveMaximum: 1000, topicAliasMaximum: 32, serverKeepAliveMax: 600 } as const;

type PublishFn = (packet: AedesPublishPacket, client: Client | null, done?: (error?: Error) => void) => void;

/** Everything that exists only while the broker runs; a restart builds a fresh one. */
interface Running {
  config: Config['broker'];
  logger: Logger;
  aedes: Aedes;
  persistence: BrokerPersistence;
  internal: InternalClient;
  stats: BrokerStats;
  tcp: Server;
  tls?: Server;
  websocket?: WebSocketListener;
  connections: Set<Duplex>;
  ports: { tcp: number; tls?: number };
  cleanups: (() => void)[];
  /** MQTT 5 delayed wills that must outlive a restart (will-persistence.ts); with a persistent store only. */
  wills?: DelayedWills;
  extensions: ConnectionExtensions;
  /** One person's sessions, for data rights. */
  sessionErasure: SessionErasure;
}

export class Broker implements Component, Messaging, ClientRequests, UpgradeHandler {
  readonly name = 'broker';
  #running: Running | undefined;
  #starting: Partial<Running> | undefined;
  #baseTopic = 'clawbox';
  #stopping: Promise<void> | undefined;
  /** True while stop() runs: the runtime's own publishes are refused from then on. */
  #closing = false;
  /** The last pending runtime publish per topic (publish() keeps per-topic order). */
  readonly #topicTails = new Map<string, Promise<void>>();
  readonly #requests = new ClientRequestRouter();
  readonly #loginGuard: LoginGuard | undefined;
  readonly #cluster: ClusterBrokerOptions | undefined;

  /**
   * `loginGuard`: shared with the HTTP server, so backoff and the password-hash queue span both.
   * `cluster`: share fan-out and the store with the other replicas on Redis (cluster-persistence.ts).
   */
  constructor(options: { loginGuard?: LoginGuard; cluster?: ClusterBrokerOptions } = {}) {
    this.#loginGuard = options.loginGuard;
    this.#cluster = options.cluster;
  }

  /** MQTT clients connected to this broker now (0 while stopped). */
  get connectedClients(): number {
    return this.#running?.aedes.connectedClients ?? 0;
  }

  /** False while the shared state (cluster mode: Redis) cannot be reached, or the broker does not run. */
  sharedStateReady(): boolean {
    const persistence = this.#running?.persistence;
    if (!persistence) return false;
    return persistence.kind !== 'redis' || (persistence as ClusterPersistence).ready();
  }

  /** Client publishes on request topics, with the sender (see ClientRequests). Routes survive restarts. */
  onClientPublish(filter: string, handler: ClientMessageHandler): () => void {
    return this.#requests.add(filter, handler);
  }

  get baseTopic(): string {
    return this.#baseTopic;
  }

  /** The bound TCP port (config port 0 picks a free one). */
  get port(): number {
    return this.#require().ports.tcp;
  }

  get tlsPort(): number | undefined {
    return this.#running?.ports.tls;
  }

  get stateTopic(): string {
    return `${this.#baseTopic}/bridge/state`;
  }

  async start(ctx: RuntimeContext): Promise<void> {
    if (this.#running || this.#starting) throw new ClawboxError('INTERNAL', 'the broker is already started');
    this.#stopping = undefined;
    const config = ctx.config.broker;
    const logger = ctx.logger('broker');
    this.#baseTopic = config.base_topic;
    const partial: Partial<Running> = { config, logger, connections: new Set(), cleanups: [] };
    this.#starting = partial;
    const began = performance.now();
    try {
      this.#running = await this.#open(ctx, partial);
    } catch (error) {
      await this.#teardown(partial);
      throw error;
    } finally {
      this.#starting = undefined;
    }
    const { ports } = this.#running;
    if (!mqttPacketDebugQuiet) logger.debug('mqtt-packet was loaded before the broker; its disabled debug loggers stay the costly ones');
    logger.info(
      {
        tcp: `${config.host}:${ports.tcp}`,
        tls: ports.tls,
        websocket: config.websocket.enabled ? config.websocket.path : null,
        // Opening the store (LevelDB recovery after a crash, loading the subscriptions) is most of it.
        startMs: Math.round(performance.now() - began),
      },
      `MQTT broker listening on ${config.host}:${ports.tcp}`,
    );
  }

  async #open(ctx: RuntimeContext, run: Partial<Running>): Promise<Running> {
    const config = run.config!;
    const logger = run.logger!;
    // Bad TLS files fail the start before anything is opened or announced.
    const tlsOptions = config.tls.enabled ? loadTlsOptions(config.tls) : undefined;
    // The Redis packages are loaded in cluster mode only.
    const cluster = this.#cluster ? await (await import('./cluster-persistence.js')).openClusterPersistence(this.#cluster, logger) : undefined;
    run.persistence = cluster ?? (await openPersistence(ctx.stateDir, config.persistence.enabled));
    const policy = new AccessPolicy({ config, mode: ctx.config.mode, logger, ...(this.#loginGuard ? { guard: this.#loginGuard } : {}) });
    leanMqttPacket();
    const stats = new BrokerStats();
    run.stats = stats;
    const frameLimit = frameLimitFor(config.max_payload_bytes);
    const aedes = await Aedes.createBroker({
      ...(cluster ? { id: cluster.brokerId, mq: cluster.mq as never } : {}),
      ...(run.persistence.aedesPersistence ? { persistence: run.persistence.aedesPersistence } : {}),
      preConnect: (client, packet, done) => {
        imposeServerKeepAlive(client, packet, config.max_keepalive ?? MQTT5_LIMITS.serverKeepAliveMax);
        policy.preConnect(client, packet, done);
      },
      authenticate: policy.authenticate,
      authorizePublish: policy.authorizePublish,
      authorizeSubscribe: (client, sub, callback) =>
        isSessionMarker(sub) ? callback(null, null as never) : policy.authorizeSubscribe(client, sub, callback),
      authorizeForward: (client, packet) => {
        if (!policy.mayForward(client, packet)) return null;
        stats.sent++;
        return packet;
      },
      // Small devices on flaky links: give a stalled subscriber 10 s, not aedes' 60 s, before dropping it.
      drainTimeout: 10_000,
      connectTimeout: 10_000,
      receiveMaximum: MQTT5_LIMITS.receiveMaximum,
      topicAliasMaximum: MQTT5_LIMITS.topicAliasMaximum,
      maximumPacketSize: maximumPacketSizeFor(frameLimit),
      // Response Information [MQTT-3.2.2.3.15]: where a client that asks may put its response topics.
      responseInformation: `${config.base_topic}/response/`,
    });
    run.aedes = aedes;
    hardenBroker(aedes);
    deliverQueueOnResume(aedes);
    wipeWholeSessions(aedes);
    // Shared subscriptions, outbound flow control, topic aliases toward clients, PUBCOMP 0x92.
    const extensions = new ConnectionExtensions(aedes, { sharedSubscriptions: !cluster, logger, queueLimit: config.max_queued_messages });
    run.extensions = extensions;
    aedes.authorizeSubscribe = extensions.authorizeSubscribe(aedes.authorizeSubscribe);
    this.#wrapPublish(aedes, policy, stats, logger, run.persistence.synced);
    markRedeliveries(aedes);
    trackSessions(aedes, run.persistence.sessions);
    const ownerOf = (client: Client): string | null => policy.ownerOf(client);
    const owners = await SessionOwners.attach(aedes, run.persistence.sessionOwners, ownerOf, (error) =>
      logger.warn({ err: error }, 'could not record whose MQTT session this is'),
    );
    skipCleanSessionAckLookups(aedes);
    guardStoreStreams(aedes, (error) => logger.debug({ err: error.message }, 'retained-message read ended early'));
    this.#watch(aedes, logger);
    if (run.persistence.sessionExpiry) {
      // Before the sweep: a session that ended while the broker was stopped publishes its delayed will first.
      if (!cluster) run.wills = await restoreDelayedWills(aedes, run.persistence.sessionExpiry, logger);
      const wills = run.wills;
      const expiry = new SessionExpiry(
        aedes,
        run.persistence.sessionExpiry,
        (error) => logger.warn({ err: error }, 'could not store a session expiry'),
        wills && ((clientId) => wills.sessionEnds(clientId)),
      );
      const swept = await expiry.sweep();
      if (swept.ended > 0) logger.info(swept, `ended ${swept.ended} MQTT 5 session(s) that expired while the broker was stopped`);
      run.cleanups!.push(() => expiry.stop());
    }
    if (cluster) run.cleanups!.push(cluster.attach(aedes, logger));
    const delayedWills = run.wills;
    run.sessionErasure = new SessionErasure(aedes, {
      owners,
      ownerOf,
      ...(delayedWills ? { cancelDelayedWill: (id: string) => delayedWills.cancel(id) } : {}),
      ...(run.persistence.compact ? { compact: run.persistence.compact } : {}),
    });
    run.internal = new InternalClient(aedes, logger);

    // Whatever a crashed run left retained here is stale until this run is serving.
    await run.internal.publish(this.stateTopic, 'offline', { retain: true, qos: 1 });

    const gate = {
      receiveMaximum: MQTT5_LIMITS.receiveMaximum,
      onRefused: (client: Client, why: string) => logger.info({ clientId: client.id }, `client disconnected: ${why}`),
    };
    const accept = (stream: Duplex, address: string | undefined, req?: IncomingMessage): void => {
      run.connections!.add(stream);
      stream.once('close', () => run.connections!.delete(stream));
      if (stream instanceof Socket) batchWrites(stream);
      const client = aedes.handle(stream, req);
      hardenClient(client);
      holdPubacks(stream);
      gateInboundPackets(client, gate);
      policy.noteConnection(client, address);
      limitIncomingPackets(client, frameLimit);
      keepDeliveryOrder(client); // before enforceDeliveryQos: see delivery-order.ts
      enforceDeliveryQos(client);
      limitOutgoingPackets(client);
      extensions.attach(client); // after the delivery wrappers: it is the outermost
    };
    run.tcp = createTcpServer((socket) => accept(socket, socket.remoteAddress));
    const ports: Running['ports'] = { tcp: await listen(run.tcp, config.host, config.port, 'broker') };
    run.ports = ports;
    if (tlsOptions) {
      run.tls = createTlsServer(tlsOptions, (socket) => accept(socket, socket.remoteAddress));
      ports.tls = await listen(run.tls, config.tls.host, config.tls.port, 'broker TLS');
    }
    if (config.websocket.enabled) {
      run.websocket = new WebSocketListener(
        (stream, req) => accept(stream, req.socket.remoteAddress, req),
        Math.max(4 * frameLimit, 1 << 20),
      );
    }

    const running = run as Running;
    running.cleanups.push(ctx.status.register('broker', () => this.#status(running)));
    const metrics: BrokerMetrics = registerBrokerMetrics(ctx.metrics, stats, () => aedes.connectedClients);
    running.cleanups.push(() => metrics.remove());
    const announceOnline = (): void => {
      running.internal.publish(this.stateTopic, 'online', { retain: true, qos: 1 }).catch((error: unknown) => {
        logger.error({ err: error }, 'could not publish the online state');
      });
    };
    running.cleanups.push(
      ctx.bus.on('lifecycle', ({ state }) => {
        if (state === 'serving') announceOnline();
      }),
    );
    if (ctx.lifecycleState() === 'serving') announceOnline();
    stats.start();
    running.cleanups.push(() => stats.stop());
    return running;
  }

  /**
   * aedes' single entry point for every message: sends a client's held PUBACK once the message is stored
   * (durable-acks.ts), drops the packets the access policy refused (MQTT 3.1.1 acknowledges them anyway),
   * and counts the rest (aedes' own `$SYS` traffic aside).
   */
  #wrapPublish(aedes: Aedes, policy: AccessPolicy, stats: BrokerStats, logger: Logger, synced?: Synced): void {
    const target = aedes as unknown as { publish: PublishFn };
    const publish = target.publish.bind(aedes);
    target.publish = (packet, client, done) => {
      let callback = done;
      let from = client;
      if (typeof client === 'function') {
        callback = client as unknown as (error?: Error) => void;
        from = null;
      }
      callback = releaseAfterPublish(packet, from, callback, synced);
      stripWillDelay(packet);
      if (policy.dropped.has(packet)) {
        policy.dropped.delete(packet);
        callback?.();
        return;
      }
      if (packet.topic.charCodeAt(0) !== 36 /* $ */) stats.received++;
      publish(packet, from, callback);
      if (from) this.#requests.dispatch(packet, from, policy, logger);
    };
  }

  #watch(aedes: Aedes, logger: Logger): void {
    // Persistence failures surface here; without a listener they would crash the process.
    (aedes as unknown as NodeJS.EventEmitter).on('error', (error: Error) => logger.error({ err: error }, 'broker error'));
    aedes.on('clientError', (client, error) => logger.debug({ clientId: client.id, err: error.message }, 'client error'));
    aedes.on('connectionError', (_client, error) => logger.debug({ err: error.message }, 'connection error'));
    aedes.on('keepaliveTimeout', (client) => logger.info({ clientId: client.id }, 'client missed its keepalive; disconnected'));
    aedes.on('client', (client) => logger.debug({ clientId: client.id }, 'client connected'));
    aedes.on('clientDisconnect', (client) => logger.debug({ clientId: client.id }, 'client disconnected'));
  }

  #status(run: Running): BrokerStatus {
    const shared = run.extensions.sharedSubscriptions?.counts();
    let subscriptions = 0;
    const clients = (run.aedes as unknown as { clients: Record<string, { subscriptions: object }> }).clients;
    for (const id in clients) subscriptions += Object.keys(clients[id]!.subscriptions).length;
    return {
      clients: run.aedes.connectedClients,
      subscriptions,
      messages: { received: run.stats.received, sent: run.stats.sent },
      rates: run.stats.rates(),
      listeners: {
        tcp: run.ports.tcp,
        ...(run.ports.tls !== undefined ? { tls: run.ports.tls } : {}),
        websocket: run.websocket ? run.config.websocket.path : null,
      },
      persistence: run.persistence.kind,
      ...(run.persistence.kind === 'redis' ? { durability: (run.persistence as ClusterPersistence).durability } : {}),
      mqtt5: {
        shared_groups: shared ? shared.groups : null,
        shared_members: shared ? shared.members : null,
        flow_queue_dropped: run.extensions.dropped,
      },
    };
  }

  /**
   * Data rights: the MQTT sessions of one person (`owner`: their MQTT username, or `anonymous@<address>`
   * as the MQTT principal names them), connected or kept in the store (session-erasure.ts).
   */
  mqttSessionsOf(owner: string, signal: AbortSignal): Promise<MqttSessionExport[]> {
    return this.#sessionErasure('export MQTT sessions').export(owner, signal);
  }

  /** Disconnects the person's clients (no will) and deletes their sessions; how many client ids went. */
  eraseMqttSessionsOf(owner: string, signal: AbortSignal): Promise<number> {
    return this.#sessionErasure('erase MQTT sessions').erase(owner, signal);
  }

  #sessionErasure(what: string): SessionErasure {
    const run = this.#running;
    if (!run || this.#closing) throw this.#notRunning(what);
    return run.sessionErasure;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const websocket = this.#running?.websocket;
    if (!websocket) {
      refuseUpgrade(socket, this.#running ? 404 : 503, this.#running ? 'Not Found' : 'Service Unavailable');
      return;
    }
    websocket.handleUpgrade(req, socket, head);
  }

  /**
   * Publishes as the runtime. Overlapping publishes to one topic go out in call order (MQTT orders a
   * publisher's messages per topic): aedes stores a retained message asynchronously before forwarding it,
   * so without this two quick retained states on a topic could reach subscribers swapped.
   */
  publish(topic: string, payload: string | Buffer, options?: PublishOptions): Promise<void> {
    const run = this.#running;
    if (!run || this.#closing) return Promise.reject(this.#notRunning(`publish to ${topic}`));
    const previous = this.#topicTails.get(topic);
    const send = (): Promise<void> => {
      if (!options?.republishedAtStart || !options.retain || !run.persistence.storeBehind) return run.internal.publish(topic, payload, options);
      // aedes keeps the payload Buffer by reference: a Buffer of this publish's own marks it for the store.
      const buffer = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload.buffer, payload.byteOffset, payload.length);
      run.persistence.storeBehind(buffer);
      return run.internal.publish(topic, buffer, options);
    };
    const sent = previous ? previous.then(send) : send();
    // Settled either way: the topic's next publish may go, and the last one forgets the topic.
    const settled = (): void => {
      if (this.#topicTails.get(topic) === tail) this.#topicTails.delete(topic);
    };
    const tail: Promise<void> = sent.then(settled, settled);
    this.#topicTails.set(topic, tail);
    return sent;
  }

  /**
   * As for any MQTT client, the retained messages matching `filter` are delivered once right after the
   * subscription is made (before the returned promise resolves), then live messages. Handlers that throw
   * are logged and do not affect other subscribers. No ACLs apply to the runtime itself.
   */
  subscribe(filter: string, handler: MessageHandler): Promise<() => Promise<void>> {
    const run = this.#running;
    if (!run || this.#closing) return Promise.reject(this.#notRunning(`subscribe to ${filter}`));
    return run.internal.subscribe(filter, handler);
  }

  #notRunning(what: string): ClawboxError {
    const state = this.#closing ? 'stopping' : 'not running';
    return new ClawboxError('BUSY', `the broker is ${state}; cannot ${what}`, { state });
  }

  /** Idempotent; a second call waits for the first. */
  stop(): Promise<void> {
    const run = this.#running;
    if (!run) return this.#stopping ?? Promise.resolve();
    this.#stopping ??= (async () => {
      this.#closing = true;
      try {
        try {
          await run.internal.publish(this.stateTopic, 'offline', { retain: true, qos: 1 });
        } catch (error) {
          run.logger.warn({ err: error }, 'could not publish the offline state');
        }
        await this.#teardown(run);
      } finally {
        this.#running = undefined;
        this.#closing = false;
      }
    })();
    return this.#stopping;
  }

  /** Closes whatever of `run` exists, in order: stop accepting, disconnect clients, close the store. */
  async #teardown(run: Partial<Running>): Promise<void> {
    for (const cleanup of run.cleanups ?? []) cleanup();
    const closing = [run.tcp, run.tls].filter((s): s is Server => s !== undefined).map(closeServer);
    run.websocket?.close();
    if (run.aedes) {
      const aedes = run.aedes;
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
    }
    await run.wills?.stop();
    run.internal?.clear();
    // Connections that never completed CONNECT are not aedes clients; close them too.
    for (const stream of run.connections ?? []) stream.destroy();
    await Promise.all(closing);
    await run.persistence?.close();
    run.logger?.info('MQTT broker stopped');
  }

  #require(): Running {
    if (!this.#running) throw new ClawboxError('INTERNAL', 'the broker is not running');
    return this.#running;
  }
}

/**
 * MQTT 5 Server Keep Alive: an MQTT 5 client asking for no keepalive, or a longer one than the broker's
 * maximum, is told the maximum in CONNACK and held to it. (aedes' `keepaliveLimit` would do this for MQTT 5
 * but refuse MQTT 3.1.1 clients with the same wish, so the value is set here before aedes' CONNECT
 * handling reads it.)
 */
function imposeServerKeepAlive(client: Client, packet: { protocolVersion?: number; keepalive?: number }, max: number): void {
  if (packet.protocolVersion !== 5) return;
  if (!packet.keepalive || packet.keepalive > max) (client as unknown as { _serverKeepAlive?: number })._serverKeepAlive = max;
}

async function restoreDelayedWills(aedes: Aedes, sessions: SessionExpiryStore, logger: Logger): Promise<DelayedWills> {
  const wills = new DelayedWills(aedes, (error) => logger.warn({ err: error }, 'could not store or publish a delayed will'));
  const ends = new Map((await sessions.list()).map(({ clientId, expiresAt }) => [clientId, expiresAt]));
  const restored = await wills.restore(ends);
  if (restored.published + restored.pending > 0) logger.info(restored, 'delayed wills of sessions from before the restart');
  return wills;
}

/**
 * A will's Will Delay Interval is a property of the will, not of a PUBLISH: a PUBLISH carrying it is a
 * protocol error to strict clients (Paho). aedes has waited out the delay by the time it publishes the
 * will, so the property is dropped here (from a copy: the stored will keeps it).
 */
function stripWillDelay(packet: AedesPublishPacket): void {
  const properties = (packet as { properties?: Record<string, unknown> }).properties;
  if (properties?.willDelayInterval === undefined) return;
  const { willDelayInterval: _delay, ...rest } = properties;
  (packet as { properties?: Record<string, unknown> }).properties = rest;
}
