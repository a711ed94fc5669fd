/**
 * Who asks. Every operation runs as a principal, and the agent acts only as its caller could act.
 *
 * Permissions are one language for every transport: MQTT topic filters relative to the base topic, the
 * same the broker's publish ACL uses. An operation names what it needs as such a path (`lamp/set`,
 * `bridge/request/device/add`, `agent/request`); an MQTT user may do it when its ACL lets it publish to
 * `<base>/<path>`, and HTTP tokens and chat senders carry an explicit list of filters from config.
 */
import { topicMatches } from '../broker/topics.js';

export type PrincipalKind = 'mqtt' | 'http' | 'chat' | 'system';

export interface Principal {
  readonly kind: PrincipalKind;
  /** Stable within its kind: MQTT username (or client id when anonymous), HTTP user, `<channel>:<sender>`. */
  readonly id: string;
  /** Whether this principal may do what `permission` names (a topic path relative to the base topic). */
  may(permission: string): boolean;
}

/** Same kind and id: the same caller (confirmations must come from whoever was asked). */
export function samePrincipal(a: Principal, b: Principal): boolean {
  return a.kind === b.kind && a.id === b.id;
}

/** A principal whose permissions are a list of topic filters (`#` = everything). */
export function principalWithFilters(kind: PrincipalKind, id: string, filters: readonly string[]): Principal {
  const list = [...filters];
  return { kind, id, may: (permission) => list.some((filter) => topicMatches(filter, permission)) };
}

/** The runtime itself (start-up work, timers): may do everything. */
export const SYSTEM_PRINCIPAL: Principal = principalWithFilters('system', 'clawbox', ['#']);

/** For logs and audit records: never the principal's permissions, only who it is. */
export function describePrincipal(principal: Principal): { kind: PrincipalKind; id: string } {
  return { kind: principal.kind, id: principal.id };
}
