/**
 * Topic ACLs: ordered allow/deny rules, the first rule whose topic matches decides, and no match denies.
 *
 * A user's rules are, in this order: its `acl` list (allow or deny, for publish, subscribe, clear or all),
 * then its `publish` and `subscribe` patterns as allow rules. Anonymous clients get `broker.anonymous_acl`
 * followed by the built-in rules (anonymousRules). `%u` stands for the username and `%c` for the client id.
 *
 * - publish: rules for `publish` and `all`;
 * - clear (a retained PUBLISH with an empty payload, which deletes the retained message): rules for
 *   `clear`, `publish` and `all`, so a rule can forbid deleting what it allows to update;
 * - subscribe: rules for `subscribe` and `all`. An allow rule must cover the whole filter (`sensors/#`
 *   covers `sensors/+/temp`, not `#`); a deny rule refuses the SUBSCRIBE only when it covers the whole
 *   filter, and otherwise applies to each message at delivery (receive), so `clawbox/#` can be granted
 *   while `clawbox/secret/#` is held back;
 * - `$share/<group>/<filter>` is checked as `<filter>`;
 * - `#` and `+` in the first level never match `$`-topics [MQTT-4.7.2-1]: `$SYS` is reachable only
 *   through a rule that names it (`$SYS/#`).
 */
import type { AclRuleConfig, BrokerUserConfig } from '../config/schema.js';
import { filterCovers, topicMatches } from './topics.js';

export type AclAccess = AclRuleConfig['access'];

interface Rule {
  allow: boolean;
  topic: string;
}

/** A substituted value must stay one literal level, or `%c` = `#` would grant everything. */
function isSafeLevel(value: string): boolean {
  return value.length > 0 && !/[/+#]/.test(value) && !value.includes('\u0000');
}

/** The patterns with `%u`/`%c` filled in; a pattern whose value is unsafe is left out (matches nothing). */
export function expandPatterns(patterns: readonly string[], username: string, clientId: string): string[] {
  const out: string[] = [];
  for (const pattern of patterns) {
    const expanded = expandPattern(pattern, username, clientId);
    if (expanded !== null) out.push(expanded);
  }
  return out;
}

function expandPattern(pattern: string, username: string, clientId: string): string | null {
  if (pattern.includes('%u') && !isSafeLevel(username)) return null;
  if (pattern.includes('%c') && !isSafeLevel(clientId)) return null;
  return pattern.replaceAll('%u', username).replaceAll('%c', clientId);
}

/** `$share/<group>/<filter>` → `<filter>`; other filters unchanged. */
export function unshared(filter: string): string {
  if (!filter.startsWith('$share/')) return filter;
  const slash = filter.indexOf('/', 7);
  return slash < 0 ? filter : filter.slice(slash + 1);
}

/**
 * Built-in rules for anonymous clients, after `broker.anonymous_acl`: everything, except deleting
 * retained device state and discovery configs (an empty retained PUBLISH under the base topic or
 * `homeassistant/`); of the `$`-topics only reading `$SYS` (no client publishes to `$`-topics at all).
 */
export function anonymousRules(baseTopic: string): AclRuleConfig[] {
  return [
    { allow: false, access: 'clear', topic: `${baseTopic}/#` },
    { allow: false, access: 'clear', topic: 'homeassistant/#' },
    { allow: true, access: 'all', topic: '#' },
    { allow: true, access: 'subscribe', topic: '$SYS/#' },
  ];
}

/** The rules of a user from config: its `acl`, then `publish` and `subscribe` as allow rules. */
export function userRules(user: Pick<BrokerUserConfig, 'acl' | 'publish' | 'subscribe'>): AclRuleConfig[] {
  return [
    ...(user.acl ?? []),
    ...user.publish.map((topic) => ({ allow: true, access: 'publish' as const, topic })),
    ...user.subscribe.map((topic) => ({ allow: true, access: 'subscribe' as const, topic })),
  ];
}

/** One connected client's ACL, with the substitutions already made. */
export class TopicAcl {
  readonly #publish: Rule[] = [];
  readonly #clear: Rule[] = [];
  readonly #subscribe: Rule[] = [];
  /** The first rule of a kind is "allow #": every non-$ topic is allowed (the hot path skips matching). */
  readonly #publishesAll: boolean;
  readonly #receivesAll: boolean;

  constructor(rules: readonly AclRuleConfig[], username: string, clientId: string) {
    for (const rule of rules) {
      const expanded = expandPattern(rule.topic, username, clientId);
      // A rule whose value cannot be filled in safely: an allow rule grants nothing, a deny rule denies
      // everything it could have named (fail closed).
      if (expanded === null && rule.allow) continue;
      const compiled = { allow: rule.allow, topic: expanded ?? '#' };
      if (rule.access === 'publish' || rule.access === 'all') this.#publish.push(compiled);
      if (rule.access === 'clear' || rule.access === 'publish' || rule.access === 'all') this.#clear.push(compiled);
      if (rule.access === 'subscribe' || rule.access === 'all') this.#subscribe.push(compiled);
    }
    const allowsAll = (list: Rule[]) => list[0]?.allow === true && list[0].topic === '#';
    this.#publishesAll = allowsAll(this.#publish);
    this.#receivesAll = allowsAll(this.#subscribe);
  }

  /** `clear`: the PUBLISH is retained with an empty payload (it deletes the retained message). */
  mayPublish(topic: string, clear = false): boolean {
    if (!clear && this.#publishesAll && topic.charCodeAt(0) !== 36 /* $ */) return true;
    return decide(clear ? this.#clear : this.#publish, topic);
  }

  maySubscribe(filter: string): boolean {
    const inner = unshared(filter);
    // A deny rule that only overlaps the filter is left to mayReceive.
    for (const rule of this.#subscribe) if (filterCovers(rule.topic, inner)) return rule.allow;
    return false;
  }

  /** Whether a message on `topic` may be delivered (deny rules inside a granted filter; sessions stored before an ACL change). */
  mayReceive(topic: string): boolean {
    if (this.#receivesAll && topic.charCodeAt(0) !== 36 /* $ */) return true;
    return decide(this.#subscribe, topic);
  }
}

function decide(rules: readonly Rule[], topic: string): boolean {
  for (const rule of rules) if (topicMatches(rule.topic, topic)) return rule.allow;
  return false;
}
