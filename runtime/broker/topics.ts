/**
 * MQTT 3.1.1 topic names and filters: validation, matching a topic against a filter, and deciding
 * whether one filter covers another (for subscribe ACLs). Kept free of aedes so that it is easy to test.
 */

/** Why a topic name cannot be published to, or null when it is fine [MQTT-4.7.3-1..3, 3.3.2-2]. */
export function topicNameProblem(topic: string): string | null {
  if (topic.length === 0) return 'a topic must not be empty';
  if (Buffer.byteLength(topic, 'utf8') > 65535) return 'a topic must be at most 65535 bytes';
  if (topic.includes('\u0000')) return 'a topic must not contain U+0000';
  if (topic.includes('+') || topic.includes('#')) return 'a topic name must not contain the wildcards + or #';
  return null;
}

/** Why a topic filter cannot be subscribed to, or null when it is fine [MQTT-4.7.1-2, 4.7.1-3]. */
export function topicFilterProblem(filter: string): string | null {
  if (filter.length === 0) return 'a topic filter must not be empty';
  if (Buffer.byteLength(filter, 'utf8') > 65535) return 'a topic filter must be at most 65535 bytes';
  if (filter.includes('\u0000')) return 'a topic filter must not contain U+0000';
  const levels = filter.split('/');
  for (const [i, level] of levels.entries()) {
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) {
      return '# must be a whole level and the last one';
    }
    if (level.includes('+') && level !== '+') return '+ must be a whole level';
  }
  return null;
}

/**
 * Does `topic` match `filter`? Wildcards in the first level do not match topics starting with `$`
 * [MQTT-4.7.2-1]; `a/#` also matches `a` [MQTT-4.7.1-2].
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.charCodeAt(0) === DOLLAR && (filter.charCodeAt(0) === PLUS || filter.charCodeAt(0) === HASH)) return false;
  // Level by level by index, without splitting: the broker asks this for every message (ACLs, delivery
  // QoS, request routes), and two arrays per call showed in its CPU profile.
  let f = 0;
  let t = 0;
  for (;;) {
    const fEnd = levelEnd(filter, f);
    if (fEnd - f === 1 && filter.charCodeAt(f) === HASH) return true;
    const tEnd = levelEnd(topic, t);
    const anyLevel = fEnd - f === 1 && filter.charCodeAt(f) === PLUS;
    if (!anyLevel && (fEnd - f !== tEnd - t || !filter.startsWith(topic.slice(t, tEnd), f))) return false;
    const filterDone = fEnd === filter.length;
    const topicDone = tEnd === topic.length;
    if (filterDone || topicDone) {
      if (filterDone) return topicDone;
      // The topic ends here: only a trailing "/#" still matches (it also matches its parent level).
      return filter.length - fEnd === 2 && filter.charCodeAt(fEnd + 1) === HASH;
    }
    f = fEnd + 1;
    t = tEnd + 1;
  }
}

const DOLLAR = 36;
const PLUS = 43;
const HASH = 35;

function levelEnd(s: string, from: number): number {
  const slash = s.indexOf('/', from);
  return slash === -1 ? s.length : slash;
}

/**
 * Does the ACL `pattern` allow every topic that `filter` can match? Used for SUBSCRIBE: a client may
 * subscribe to `sensors/+/temp` under `sensors/#`, but not to `#` under `sensors/#`.
 */
export function filterCovers(pattern: string, filter: string): boolean {
  if (filter.startsWith('$') && (pattern.startsWith('+') || pattern.startsWith('#'))) return false;
  const p = pattern.split('/');
  const f = filter.split('/');
  for (let i = 0; i < f.length; i++) {
    const want = f[i]!;
    const allow = p[i];
    if (allow === '#') return true;
    if (allow === undefined) return false;
    if (want === '#') return false; // only '#' in the pattern covers '#'
    if (allow === '+') continue; // covers a literal level and '+'
    if (want === '+' || allow !== want) return false;
  }
  // The filter is shorter: 'a/#' in the pattern also covers the parent 'a'.
  return p.length === f.length || (p.length === f.length + 1 && p[f.length] === '#');
}
