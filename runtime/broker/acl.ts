/**
 * Per-user topic ACLs from config: publish and subscribe patterns with `+`/`#`, where `%u` stands for the
 * username and `%c` for the client id. A user with an empty list may not do that action at all.
 */
import type { BrokerUserConfig } from '../config/schema.js';
import { filterCovers, topicMatches } from './topics.js';

/** A substituted value must stay one literal level, or `%c` = `#` would grant everything. */
function isSafeLevel(value: string): boolean {
  return value.length > 0 && !/[/+#]/.test(value) && !value.includes('\u0000');
}

/** The patterns with `%u`/`%c` filled in; a pattern whose value is unsafe is left out (matches nothing). */
export function expandPatterns(patterns: readonly string[], username: string, clientId: string): string[] {
  const out: string[] = [];
  for (const pattern of patterns) {
    const needsUser = pattern.includes('%u');
    const needsClient = pattern.includes('%c');
    if (needsUser && !isSafeLevel(username)) continue;
    if (needsClient && !isSafeLevel(clientId)) continue;
    out.push(pattern.replaceAll('%u', username).replaceAll('%c', clientId));
  }
  return out;
}

/** One connected client's ACL, with the substitutions already made. */
export class TopicAcl {
  readonly #publish: string[];
  readonly #subscribe: string[];

  constructor(user: Pick<BrokerUserConfig, 'username' | 'publish' | 'subscribe'>, clientId: string) {
    this.#publish = expandPatterns(user.publish, user.username, clientId);
    this.#subscribe = expandPatterns(user.subscribe, user.username, clientId);
  }

  mayPublish(topic: string): boolean {
    return this.#publish.some((pattern) => topicMatches(pattern, topic));
  }

  /** Whether every topic the filter could match is allowed. */
  maySubscribe(filter: string): boolean {
    return this.#subscribe.some((pattern) => filterCovers(pattern, filter));
  }

  /** Whether a message on `topic` may be delivered (guards sessions stored before an ACL change). */
  mayReceive(topic: string): boolean {
    return this.#subscribe.some((pattern) => topicMatches(pattern, topic));
  }
}
