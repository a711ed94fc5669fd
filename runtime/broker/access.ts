/**
 * Who may connect and what they may do: the aedes preConnect / authenticate / authorize* hooks.
 *
 * - Users from config log in with scrypt password hashes; a client without a username is let in only if the
 *   anonymous policy allows its address (see anonymous.ts). Every client gets ordered allow/deny rules
 *   (acl.ts): a user its own, an anonymous client `broker.anonymous_acl` and then the built-in ones
 *   (everything except deleting retained state under the base topic and `homeassistant/`, and `$`-topics).
 * - A denied or oversized PUBLISH from an MQTT 3.1.1 client is acknowledged and dropped rather than
 *   answered by closing the connection: MQTT 3.1.1 allows either [MQTT-3.3.5-2], and dropping keeps a
 *   misconfigured device from reconnecting and resending forever. aedes only knows "close" for 3.1.1, so
 *   the policy marks the packet and the broker's publish entry point drops marked packets (see Broker).
 *   An MQTT 5 client gets PUBACK/PUBREC 0x87 (not authorized) with a reason string instead; its QoS 0
 *   PUBLISH is dropped.
 * - A denied subscription gets return code 0x80 in SUBACK [MQTT-3.9.3].
 * - Password logins go through a LoginGuard (../auth/login-guard.ts): bounded scrypt, backoff per username
 *   and address, cheap reconnects. A wrong password gets CONNACK 4; a username or address in backoff gets 5
 *   (not authorized, without checking the password); a full hashing queue gets 3 (server unavailable: retry).
 * - The runtime's internal client never passes through here.
 */
import type { AedesPublishPacket, AuthenticateError, Client, ConnectPacket, PublishPacket, Subscription } from 'aedes';
import { LoginGuard } from '../auth/login-guard.js';
import { verifyPassword } from '../auth/password.js';
import type { BrokerUserConfig, Config } from '../config/schema.js';
import type { Logger } from '../logging.js';
import type { AclRuleConfig } from '../config/schema.js';
import { TopicAcl, anonymousRules, userRules } from './acl.js';
import { anonymousAllowed } from './anonymous.js';

/** CONNACK return codes of MQTT 3.1.1 (3.2.2.3). */
export const CONNACK = { IDENTIFIER_REJECTED: 2, SERVER_UNAVAILABLE: 3, BAD_USERNAME_OR_PASSWORD: 4, NOT_AUTHORIZED: 5 } as const;

// Verifying against this well-formed hash when the username is unknown costs the same scrypt run as for a
// known user, so answer times do not reveal which usernames exist. No password matches it.
const DUMMY_HASH = 'scrypt$16384$8$1$Y2xhd2JveC1kdW1teS1zYWx0$FQ9Xr9S7m6p3b7r1e1TzV9Yc4o8Z3bW1uQk6y0c2dHc=';

interface Session {
  address: string | undefined;
  username?: string;
  acl: TopicAcl;
  warnedDrop?: boolean;
}

function authError(returnCode: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

export interface AccessPolicyOptions {
  config: Config['broker'];
  mode: Config['mode'];
  logger: Logger;
  /** Shared with other listeners of the same accounts; a guard with the process defaults otherwise. */
  guard?: LoginGuard;
}

export class AccessPolicy {
  readonly #users: Map<string, BrokerUserConfig>;
  readonly #anonymousRules: AclRuleConfig[];
  readonly #options: AccessPolicyOptions;
  readonly guard: LoginGuard;
  readonly #sessions = new WeakMap<Client, Session>();
  readonly #addresses = new WeakMap<Client, string | undefined>();
  readonly #emptyIdWithoutCleanSession = new WeakSet<Client>();
  /** Packets the publish entry point must drop after they have been acknowledged. */
  readonly dropped = new WeakSet<object>();

  constructor(options: AccessPolicyOptions) {
    this.#options = options;
    this.guard = options.guard ?? new LoginGuard();
    this.#users = new Map(options.config.users.map((user) => [user.username, user]));
    this.#anonymousRules = [...(options.config.anonymous_acl ?? []), ...anonymousRules(options.config.base_topic)];
    for (const user of options.config.users) {
      if (user.publish.length === 0 && user.subscribe.length === 0) {
        options.logger.warn(
          { username: user.username },
          `broker user "${user.username}" has no publish or subscribe patterns: it can connect but do nothing (add e.g. publish: ["#"])`,
        );
      }
    }
  }

  /** Remembers where a connection comes from; called by the listeners right after aedes.handle(). */
  noteConnection(client: Client, address: string | undefined): void {
    this.#addresses.set(client, address);
  }

  /** Sessions of connected clients, for status figures. */
  describe(client: Client): { username?: string; address?: string } {
    const session = this.#sessions.get(client);
    return { ...(session?.username ? { username: session.username } : {}), ...(session?.address ? { address: session.address } : {}) };
  }

  /**
   * Who a connected client is, as its MQTT principal is named (runtime/operations/mqtt-adapter.ts): the
   * username, or `anonymous@<address>`; null until it has logged in.
   */
  ownerOf(client: Client): string | null {
    const session = this.#sessions.get(client);
    if (!session) return null;
    return session.username ?? `anonymous@${session.address ?? client.id}`;
  }

  /**
   * Whether this connected client may publish to `topic`: what the front door asks before the agent acts
   * for it. Anonymous clients that were let in have full access; an unknown client has none.
   */
  mayPublish(client: Client, topic: string): boolean {
    const session = this.#sessions.get(client);
    if (!session) return false;
    return !topic.startsWith('$') && session.acl.mayPublish(topic);
  }

  readonly preConnect = (client: Client, packet: ConnectPacket, done: (error: Error | null, ok: boolean) => void): void => {
    // [MQTT-3.1.3-8]: a zero-byte client id needs a clean session; answered in authenticate with 0x02.
    // MQTT 5 allows it: the broker assigns an id and reports it in CONNACK.
    if (packet.clientId === '' && !packet.clean && packet.protocolVersion !== 5) this.#emptyIdWithoutCleanSession.add(client);
    // The will is published later on the client's behalf, possibly after a restart with no client left to
    // ask, so it is vetted now against the ACL of the username it claims (a wrong password fails anyway).
    if (packet.will) {
      const user = packet.username === undefined ? undefined : this.#users.get(packet.username);
      const acl = this.#aclFor(packet.username, user, packet.clientId);
      const tooBig = packet.will.payload.length > this.#options.config.max_payload_bytes;
      const clear = packet.will.retain === true && packet.will.payload.length === 0;
      if (tooBig || (acl && !acl.mayPublish(packet.will.topic, clear)) || packet.will.topic.startsWith('$')) {
        this.#options.logger.warn(
          { clientId: packet.clientId, topic: packet.will.topic },
          tooBig ? 'will message exceeds broker.max_payload_bytes; ignored' : 'will topic not allowed for this client; ignored',
        );
        packet.will = undefined;
      }
    }
    done(null, true);
  };

  readonly authenticate = (
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: (error: AuthenticateError | null, ok: boolean | null) => void,
  ): void => {
    const address = this.#addresses.get(client);
    const log = this.#options.logger;
    if (this.#emptyIdWithoutCleanSession.has(client)) {
      log.info({ address }, 'refused a zero-length client id without clean session');
      done(authError(CONNACK.IDENTIFIER_REJECTED, 'a zero-length client id needs clean session'), null);
      return;
    }
    if (username === undefined) {
      const { anonymous } = this.#options.config;
      if (!anonymousAllowed(anonymous, this.#options.mode, address)) {
        log.warn({ clientId: client.id, address }, `refused anonymous client from ${address ?? 'unknown address'} (broker.anonymous: ${anonymous})`);
        done(authError(CONNACK.NOT_AUTHORIZED, 'anonymous access is not allowed from this address'), null);
        return;
      }
      this.#sessions.set(client, { address, acl: new TopicAcl(this.#anonymousRules, '', client.id) });
      done(null, true);
      return;
    }
    const user = this.#users.get(username);
    const given = password?.toString('utf8') ?? '';
    const stored = user?.password_hash ?? DUMMY_HASH;
    const attempt = { realm: 'mqtt', username, address, secret: given, credential: stored, check: () => verifyPassword(given, stored) };
    this.guard.attempt(attempt).then(
      (result) => {
        if (result.ok && user && password !== undefined) {
          this.#sessions.set(client, { address, username, acl: new TopicAcl(userRules(user), username, client.id) });
          done(null, true);
          return;
        }
        const fields = { clientId: client.id, username, address };
        if (!result.ok && result.reason === 'backoff') {
          // Refused without hashing; the failures that started the backoff were logged as warnings.
          const seconds = Math.max(1, Math.ceil(result.retryAfterMs / 1000));
          log.debug({ ...fields, scope: result.scope }, 'MQTT login refused: backing off after failed logins');
          done(authError(CONNACK.NOT_AUTHORIZED, `too many failed logins for this ${result.scope}; retry in ${seconds} s`), null);
          return;
        }
        if (!result.ok && result.reason === 'busy') {
          log.debug(fields, 'MQTT login refused: too many password checks in progress');
          done(authError(CONNACK.SERVER_UNAVAILABLE, 'too many logins in progress; retry shortly'), null);
          return;
        }
        const backedOff = !result.ok && result.reason === 'wrong' && result.backoffMs > 0;
        log.warn(
          fields,
          backedOff
            ? 'MQTT login failed: bad username or password (further logins of this username or from this address are refused for a while)'
            : 'MQTT login failed: bad username or password',
        );
        done(authError(CONNACK.BAD_USERNAME_OR_PASSWORD, 'bad username or password'), null);
      },
      (error: unknown) => {
        log.error({ err: error, username }, 'password check failed');
        done(authError(CONNACK.NOT_AUTHORIZED, 'password check failed'), null);
      },
    );
  };

  readonly authorizePublish = (client: Client | null, packet: PublishPacket, done: (error?: Error | null) => void): void => {
    if (!client) {
      // Wills of clients of an earlier run: vetted in preConnect when they were stored.
      done(null);
      return;
    }
    const session = this.#sessions.get(client);
    const max = this.#options.config.max_payload_bytes;
    let reason: string | undefined;
    if (packet.topic.startsWith('$')) reason = '$-topics are reserved for the broker';
    else if (packet.payload.length > max) reason = `payload of ${packet.payload.length} bytes exceeds broker.max_payload_bytes (${max})`;
    else if (session && !session.acl.mayPublish(packet.topic, packet.retain && packet.payload.length === 0)) {
      reason = packet.retain && packet.payload.length === 0 ? 'deleting this retained message is not allowed by the ACL' : 'topic not allowed by the ACL';
    }
    if (reason) {
      // MQTT 5 has a reason code for it: aedes answers a QoS 1/2 PUBLISH with PUBACK/PUBREC 0x87 and this
      // reason string, drops a QoS 0 one, and keeps the connection. MQTT 3.1.1 only knows "close".
      if (client.version !== 5) this.dropped.add(packet);
      const fields = { clientId: client.id, username: session?.username, topic: packet.topic, reason };
      // Warn once per connection; a device that keeps trying would otherwise flood the log.
      if (session && !session.warnedDrop) {
        session.warnedDrop = true;
        this.#options.logger.warn(fields, `dropped a PUBLISH: ${reason} (further drops for this client at debug level)`);
      } else {
        this.#options.logger.debug(fields, 'dropped a PUBLISH');
      }
      if (client.version === 5) {
        done(new Error(reason));
        return;
      }
    }
    done(null);
  };

  readonly authorizeSubscribe = (
    client: Client,
    sub: Subscription,
    done: (error: Error | null, sub?: Subscription | null) => void,
  ): void => {
    const session = this.#sessions.get(client);
    if (session && !session.acl.maySubscribe(sub.topic)) {
      this.#options.logger.info({ clientId: client.id, username: session.username, filter: sub.topic }, 'subscription denied by the ACL');
      done(null, null);
      return;
    }
    done(null, sub);
  };

  /** False when a message must not reach this client (a stored session from before an ACL change). */
  mayForward(client: Client, packet: AedesPublishPacket): boolean {
    const acl = this.#sessions.get(client)?.acl;
    return !acl || acl.mayReceive(packet.topic);
  }

  /**
   * The ACL a CONNECT's will is vetted against: the claimed user's (a wrong password fails the login
   * anyway), the anonymous rules without a username, none for an unknown username (refused at login).
   */
  #aclFor(username: string | undefined, user: BrokerUserConfig | undefined, clientId: string): TopicAcl | undefined {
    if (user) return new TopicAcl(userRules(user), user.username, clientId);
    return username === undefined ? new TopicAcl(this.#anonymousRules, '', clientId) : undefined;
  }
}
