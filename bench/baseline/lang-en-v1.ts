/** English for the intent fast path. */
import type { IntentLanguage, IntentTemplate } from './language-v1.js';

const FILLERS = new Set(['the', 'a', 'an', 'my', 'our', 'please', 'kindly', 'now', 'hey', 'ok', 'okay', 'just']);
const LEADING = [
  ['can', 'you'],
  ['could', 'you'],
  ['would', 'you'],
  ['will', 'you'],
  ['i', 'want', 'you', 'to'],
  ['i', 'would', 'like', 'you', 'to'],
];
const CONTRACTIONS: Array<[RegExp, string]> = [
  [/\bwhat's\b/g, 'what is'],
  [/\bwhats\b/g, 'what is'],
  [/\bhow's\b/g, 'how is'],
  [/\bit's\b/g, 'it is'],
  [/\bdon't\b/g, 'do not'],
  [/\bdont\b/g, 'do not'],
  [/\bper cent\b/g, 'percent'],
];

function tokenize(text: string): string[] {
  let s = text.toLowerCase().normalize('NFKC');
  for (const [re, to] of CONTRACTIONS) s = s.replace(re, to);
  s = s
    .replace(/(\d),(\d)/g, '$1.$2') // 21,5 -> 21.5
    .replace(/(\d)\s*(°\s*[cf]?|℃|℉)/g, '$1 degrees ')
    .replace(/°\s*[cf]?|℃|℉/g, ' degrees ')
    .replace(/(\d)\s*%/g, '$1 percent ')
    .replace(/%/g, ' percent ')
    .replace(/\b(\d+(?:\.\d+)?)\s*c\b/g, '$1 degrees')
    .replace(/_/g, ' ')
    .replace(/-(?!\d)/g, ' ') // keep the minus of "-5", split "living-room"
    .replace(/(?<!\d)\.|\.(?!\d)/g, ' ')
    .replace(/[^\p{L}\p{N}.\s-]/gu, ' ');
  let tokens = s.split(/\s+/).filter((token) => token && token !== '-');
  for (const lead of LEADING) {
    if (lead.every((w, i) => tokens[i] === w)) tokens = tokens.slice(lead.length);
  }
  tokens = tokens.filter((t) => !FILLERS.has(t));
  // "for me" at the end is politeness, not content.
  if (tokens.at(-2) === 'for' && tokens.at(-1) === 'me') tokens = tokens.slice(0, -2);
  return tokens.map((t) => (t === 'degree' || t === 'celsius' || t === 'centigrade' ? 'degrees' : t === 'pct' ? 'percent' : t));
}

const t = (kind: IntentTemplate['kind'], ...patterns: string[]): IntentTemplate[] => patterns.map((pattern) => ({ kind, pattern }));
const hinted = (hint: string[], ...patterns: string[]): IntentTemplate[] => patterns.map((pattern) => ({ kind: 'set_number', pattern, hint }));

const templates: IntentTemplate[] = [
  ...t('on', 'turn|switch|power on {D}', 'turn|switch|power {D} on', '{D} on', 'enable|activate {D}', 'light up {D}'),
  ...t('off', 'turn|switch|power|shut off {D}', 'turn|switch|power|shut {D} off', '{D} off', 'disable|deactivate {D}', 'kill {D}'),
  ...t('toggle', 'toggle|flip {D}'),
  ...t('open', 'open|raise {D}', 'open up {D}'),
  ...t('close', 'close|lower|shut {D}'),
  ...t('stop', 'stop|halt {D}'),
  ...t(
    'set_number',
    'set|put|change|turn|make|adjust {D} to|at {N} {U}?',
    'set|change|adjust|turn {D} {P} to|at {N} {U}?',
    'set|change|adjust {P} of|for|on|in {D} to|at {N} {U}?',
    '{D} to {N} {U}?',
    '{D} {P} to? {N} {U}?',
    '{D} {N} {U}',
  ),
  ...hinted(['brightness'], 'dim|brighten {D} to? {N} {U}?'),
  ...hinted(['target_temperature'], 'heat|warm|cool {D} to {N} {U}?'),
  ...hinted(['position'], 'open|close {D} to {N} {U}?'),
  ...t(
    'set_value',
    'set|put|switch|change|turn {D} to|into|on {V} mode?',
    'set|change|switch {D} mode to {V}',
    'set|change|switch mode of|for|on {D} to {V}',
    'put {D} in|into|on {V} mode',
    '{D} to {V} mode?',
    '{D} {V} mode',
  ),
  ...t(
    'query',
    'what is {D} {R}',
    'what is {R} of|in|at|on|from {D}',
    'tell me {D} {R}',
    'tell me {R} of|in|at|on|from {D}',
    'how {A} is {D}',
    'how {A} is it in {D}',
    '{D} {R}',
    'what is {R}',
    'is {D} on|off|open|closed',
    'status|state of {D}',
  ),
];

export const english: IntentLanguage = {
  code: 'en',
  tokenize,
  templates,
  propertyWords: {
    brightness: ['brightness'],
    level: ['brightness', 'position'],
    temperature: ['target_temperature'],
    target: ['target_temperature'],
    setpoint: ['target_temperature'],
    position: ['position'],
    mode: ['mode'],
  },
  readingWords: {
    temperature: ['current_temperature', 'temperature'],
    temp: ['current_temperature', 'temperature'],
    humidity: ['humidity'],
    brightness: ['brightness'],
    state: ['state'],
    status: ['state'],
    power: ['power', 'state'],
    position: ['position'],
    mode: ['mode'],
    target: ['target_temperature'],
    setpoint: ['target_temperature'],
    pressure: ['pressure'],
    co2: ['co2'],
    illuminance: ['illuminance'],
  },
  adjectives: {
    warm: ['current_temperature', 'temperature'],
    hot: ['current_temperature', 'temperature'],
    cold: ['current_temperature', 'temperature'],
    humid: ['humidity'],
    bright: ['brightness', 'illuminance'],
    open: ['position'],
  },
  unitWords: {
    percent: ['brightness', 'position'],
    degrees: ['target_temperature'],
  },
  genericNouns: ['sensor', 'thermometer', 'thermostat', 'meter', 'monitor', 'device'],
  say: {
    done(name, command) {
      const parts = Object.entries(command).map(([key, value]) => {
        if (key === 'state') {
          const v = String(value).toUpperCase();
          if (v === 'ON') return `turned ${name} on`;
          if (v === 'OFF') return `turned ${name} off`;
          if (v === 'TOGGLE') return `toggled ${name}`;
          if (v === 'OPEN') return `opening ${name}`;
          if (v === 'CLOSE') return `closing ${name}`;
          if (v === 'STOP') return `stopped ${name}`;
        }
        if (key === 'brightness') return `set ${name} to ${value} %`;
        if (key === 'position') return `set ${name} to ${value} % open`;
        if (key === 'target_temperature') return `set ${name} to ${value} °C`;
        return `set ${name} ${key.replace(/_/g, ' ')} to ${String(value).replace(/_/g, ' ')}`;
      });
      const sentence = parts.join(' and ');
      return `${sentence.charAt(0).toUpperCase()}${sentence.slice(1)}.`;
    },
    reading(name, property, value, unit) {
      const what = property === 'state' ? '' : ` ${property.replace(/^current_/, '').replace(/_/g, ' ')}`;
      if (property === 'state') return `${name} is ${String(value).toLowerCase()}.`;
      return `The ${name}${what} is ${value}${unit ? ` ${unit}` : ''}.`;
    },
    unknownReading: (name, property) => `${name} has not reported its ${property.replace(/_/g, ' ')} yet.`,
    refused: (reason) => `I can't do that: ${reason}.`,
    confirm(name, command, id) {
      const what = this.done(name, command).replace(/\.$/, '');
      return `Please confirm: ${what.charAt(0).toLowerCase()}${what.slice(1)}? Reply "confirm ${id}" within a minute.`;
    },
    failed: (name, message) => `${name} did not do it: ${message}.`,
    noModel: () => 'I only understand direct device commands right now (no language model is loaded), e.g. "turn on the kitchen lamp".',
  },
};
