/** English for the intent fast path (data only; see language.ts). */
import type { IntentLanguage, VerbMeaning } from './language.js';

const v = (kinds: VerbMeaning['kinds'], property?: string): VerbMeaning => (property ? { kinds, property } : { kinds });
/** A comparative: a bare number after it is a change. */
const c = (kinds: VerbMeaning['kinds'], property?: string): VerbMeaning => ({ ...v(kinds, property), by: true });
const BRIGHTNESS = 'brightness';
const TARGET = 'target_temperature';

export const english: IntentLanguage = {
  code: 'en',
  spaced: true,
  rewrite: [
    [/[’‘`´]/g, "'"],
    [/\bwhat's\b|\bwhats\b/g, 'what is'],
    [/\bhow's\b|\bhows\b/g, 'how is'],
    [/\bit's\b/g, 'it is'],
    [/\bthat's\b/g, 'that is'],
    [/\bdon't\b|\bdont\b/g, 'do not'],
    [/\bdoesn't\b|\bisn't\b|\baren't\b|\bwon't\b|\bcan't\b|\bshouldn't\b/g, 'not'],
    [/\bi'd\b/g, 'i would'],
    [/\blet's\b/g, 'let us'],
    [/(\w)'s\b/g, '$1'],
    [/'/g, ''],
    [/\bper cent\b/g, 'percent'],
    [/\b(\d+(?:\.\d+)?)\s*c\b/g, '$1 °c'],
    [/\b(\d+(?:\.\d+)?)\s*f\b/g, '$1 °f'],
    [/\b(\d+(?:\.\d+)?)\s*pct\b/g, '$1 %'],
  ],
  plurals: [
    ['ies', 'y'],
    ['ches', 'ch'],
    ['shes', 'sh'],
    ['xes', 'x'],
    ['s', ''],
  ],
  numbers: {
    values: {
      zero: 0, one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9, ten: 10,
      eleven: 11, twelve: 12, thirteen: 13, fourteen: 14, fifteen: 15, sixteen: 16, seventeen: 17, eighteen: 18, nineteen: 19,
      twenty: 20, thirty: 30, forty: 40, fifty: 50, sixty: 60, seventy: 70, eighty: 80, ninety: 90,
    },
    multipliers: { hundred: 100 },
  },
  fillers: [
    'the', 'teh', 'hte', 'a', 'an', 'my', 'our', 'your', 'please', 'pls', 'plz', 'pleas', 'kindly', 'now', 'right now', 'hey', 'hi', 'hello', 'ok', 'okay',
    'just', 'quickly', 'thanks', 'thank you', 'thx', 'ty', 'can you', 'could you', 'would you', 'will you', 'can u', 'could u',
    'would you mind', 'i want you to', 'i would like you to', 'i need you to', 'go ahead and', 'for me', 'for us', 'let us',
    'please could you', 'be so kind and', 'would you be so kind as to', 'mind', 'also', 'clawbox', 'again', 'there', 'here', 'in here',
    'the one', 'ones', 'house', 'home', 'whole house', 'apartment', 'flat', 'like', 'i would like', 'i want', 'i need', 'that one', 'this one', 'lol', 'xx', 'pretty please', 'some', 'yeah', 'yes', 'so', 'well',
  ],
  conjunctions: ['and', 'then', 'and then', 'and also', 'plus', 'as well as', 'after that', 'followed by', 'as well'],
  negations: ['not', 'do not', 'never', 'no', 'dont', 'without', 'stop being', 'nobody', 'nothing'],
  verbs: {
    'turn on': v(['on']), 'turning on': v(['on']), 'switching on': v(['on']), 'turn of': v(['off']), 'switch of': v(['off']),
    'turning off': v(['off']), 'switching off': v(['off']), opening: v(['open']), closing: v(['close']), 'switch on': v(['on']), 'power on': v(['on']), 'put on': v(['on']), 'light up': v(['on']), 'turn them on': v(['on']),
    start: v(['on']), enable: v(['on']), activate: v(['on']), on: v(['on']),
    'turn off': v(['off']), 'switch off': v(['off']), 'power off': v(['off']), 'shut off': v(['off']), 'shut down': v(['off']),
    kill: v(['off']), disable: v(['off']), deactivate: v(['off']), off: v(['off']), 'cut': v(['off']), out: v(['off']),
    toggle: v(['toggle']), flip: v(['toggle']),
    open: v(['open']), 'open up': v(['open']), 'roll up': v(['open', 'up']), 'pull up': v(['open', 'up']), raise: c(['open', 'up']),
    close: v(['close']), shut: v(['close', 'off']), 'roll down': v(['close', 'down']), 'pull down': v(['close', 'down']),
    lower: c(['close', 'down']), draw: v(['close']), closed: v(['close']),
    stop: v(['stop']), halt: v(['stop']), pause: v(['stop']),
    set: v(['set']), put: v(['set']), change: v(['set']), turn: v(['set']), switch: v(['set']), make: v(['set']), adjust: v(['set']),
    bring: v(['set']), move: v(['set']), get: v(['set']), go: v(['set']), keep: v(['set']), let: v(['set']), leave: v(['set']),
    'turn up': c(['up']), 'crank up': c(['up']), increase: c(['up']), boost: c(['up']), up: c(['open', 'up']), higher: c(['up']), more: { kinds: ['up'], by: true, again: 'same' },
    'turn down': c(['down']), decrease: c(['down']), reduce: c(['down']), down: c(['close', 'down']), less: { kinds: ['down'], by: true, again: 'reverse' },
    brighten: v(['up'], BRIGHTNESS), brighter: c(['up'], BRIGHTNESS), 'more light': v(['up'], BRIGHTNESS),
    dim: v(['down'], BRIGHTNESS), dimmer: c(['down'], BRIGHTNESS), darker: c(['down'], BRIGHTNESS), 'dim down': v(['down'], BRIGHTNESS),
    warmer: c(['up'], TARGET), hotter: c(['up'], TARGET), 'warm up': v(['up'], TARGET), 'heat up': v(['up'], TARGET), warm: v(['up'], TARGET),
    heat: v(['up'], TARGET),
    cooler: c(['down'], TARGET), colder: c(['down'], TARGET), 'cool down': v(['down'], TARGET), cool: v(['down'], TARGET), chillier: c(['down'], TARGET),
  },
  states: { 'switched on': 'on', 'turned on': 'on', 'switched off': 'off', 'turned off': 'off', on: 'on', off: 'off', open: 'open', opened: 'open', closed: 'closed', shut: 'closed', running: 'on', lit: 'on' },
  modes: {
    heating: 'heat', heat: 'heat', cooling: 'cool', cool: 'cool', automatic: 'auto', auto: 'auto', 'fan only': 'fan_only',
    eco: 'eco', dry: 'dry', off: 'off',
  },
  properties: {
    brightness: ['brightness'], level: ['brightness', 'position'], dimming: ['brightness'],
    temperature: ['target_temperature', 'current_temperature', 'temperature'], temp: ['target_temperature', 'current_temperature', 'temperature'],
    'target temperature': ['target_temperature'], target: ['target_temperature'], setpoint: ['target_temperature'], 'set point': ['target_temperature'],
    humidity: ['humidity'], position: ['position'], mode: ['mode'], state: ['state'], status: ['state'], power: ['state'],
    pressure: ['pressure'], co2: ['co2'], illuminance: ['illuminance'],
  },
  adjectives: {
    warm: ['current_temperature', 'temperature'], hot: ['current_temperature', 'temperature'], cold: ['current_temperature', 'temperature'],
    humid: ['humidity'], bright: ['brightness', 'illuminance'], open: ['position'],
  },
  units: { 'degrees celsius': '°c', 'degrees fahrenheit': '°f', 'degree celsius': '°c', percent: '%', '%': '%', degrees: '°', degree: '°', deg: '°', '°': '°', celsius: '°c', centigrade: '°c', '°c': '°c', fahrenheit: '°f', '°f': '°f' },
  amounts: {
    'a bit': 'small', bit: 'small', 'a little': 'small', little: 'small', 'a little bit': 'small', 'little bit': 'small', slightly: 'small',
    'a tad': 'small', tad: 'small', somewhat: 'small', 'a touch': 'small', 'a lot': 'large', lot: 'large', much: 'large', way: 'large',
    'a bit more': 'small', 'a lot more': 'large',
  },
  levels: {
    half: 50, halfway: 50, 'half way': 50, 'half open': 50, full: 100, fully: 100, max: 100, maximum: 100, 'all the way': 100, completely: 100,
  },
  quantifiers: ['all', 'every', 'everything', 'all of', 'each', 'both', 'whole', 'entire', 'all devices', 'every device', 'everywhere'],
  pronouns: ['it', 'them', 'that', 'those', 'this', 'these', 'same'],
  questions: {
    what: 'strong', 'what is': 'strong', 'what are': 'strong', how: 'strong', 'how is': 'strong', 'how much': 'strong', which: 'strong',
    is: 'strong', are: 'strong', 'tell me': 'strong', 'check': 'strong', 'show me': 'strong', 'do you know': 'strong', 
    'currently': 'weak', 'current': 'weak', reading: 'weak', 'right now': 'weak', 'report': 'strong',
  },
  markers: { to: 'to', at: 'to', into: 'to', by: 'by', in: 'in', on: 'in', of: 'in', for: 'in', from: 'in', mode: 'mode', with: 'in' },
  nouns: {
    light: 'light', lights: 'light', lighting: 'light', bulb: 'lamp', bulbs: 'lamp', lamp: 'lamp', lamps: 'lamp',
    blind: 'blind', blinds: 'blind', shade: 'blind', shades: 'blind', shutter: 'blind', shutters: 'blind', curtain: 'blind', curtains: 'blind',
    jalousie: 'blind', awning: 'blind', cover: 'cover', covers: 'cover', door: 'door', doors: 'door', gate: 'door', gates: 'door', garage: 'door',
    thermostat: 'thermostat', thermostats: 'thermostat', heating: 'thermostat', heat: 'thermostat', heater: 'thermostat', heaters: 'thermostat', radiator: 'thermostat',
    hvac: 'thermostat', climate: 'thermostat', ac: 'thermostat', aircon: 'thermostat', 'air conditioning': 'thermostat', 'air conditioner': 'thermostat',
    sensor: 'sensor', sensors: 'sensor', thermometer: 'sensor', hygrometer: 'sensor', fan: 'fan', fans: 'fan', switch: 'switch', plug: 'switch',
    socket: 'switch', outlet: 'switch', device: 'device', devices: 'device', thing: 'device', things: 'device', stuff: 'device',
  },
  pluralNouns: ['lighting', 'everything', 'stuff', 'heating'],
  followUps: {
    leads: ['and', 'and also', 'also', 'now', 'and now', 'then', 'and then', 'what about', 'how about', 'and what about', 'same for', 'same with', 'the same for', 'do the same for', 'same goes for'],
    corrections: ['no', 'nope', 'not that one', 'no not that one', 'i meant', 'i mean', 'no i meant', 'sorry', 'sorry i meant', 'actually', 'wrong one', 'instead', 'rather'],
    other: ['other', 'other one', 'another', 'another one'],
    others: ['others', 'other ones', 'the rest', 'rest'],
  },
  ordinals: { 'first one': 1, 'second one': 2, 'third one': 3, 'last one': -1, first: 1, second: 2, third: 3, fourth: 4, fifth: 5, last: -1, '1st': 1, '2nd': 2, '3rd': 3 },
  asides: {
    interjections: [
      'ugh', 'urgh', 'argh', 'oh', 'ooh', 'oh man', 'man', 'ok', 'okay', 'alright', 'well', 'hmm', 'hm', 'um', 'uh', 'ah', 'aw', 'brr', 'brrr',
      'phew', 'wow', 'whoa', 'gosh', 'geez', 'jeez', 'damn', 'sigh', 'yawn', 'yikes', 'oof', 'meh', 'omg', 'yeah', 'so', 'because', 'since', 'cause', 'cuz', 'coz',
      'good night', 'goodnight', 'night night', 'nighty night', 'good morning', 'morning', 'good evening',
    ],
    openers: [
      'i', 'im', 'ive', 'ill', 'we', 'were', 'weve', 'it', 'its', 'there', 'this', 'that', 'here', 'the', 'my', 'our', 'too', 'way too', 'so',
      'getting', 'dark', 'cold', 'hot', 'freezing', 'chilly', 'sunny', 'stuffy', 'bright', 'late', 'kinda', 'pretty', 'really', 'time for',
      // The moment by name: "bedtime, lights off", "heading out, lamp off", "guests are coming, lights on".
      'bedtime', 'bed time', 'nap time', 'naptime', 'movie time', 'movie night', 'dinner time', 'dinnertime', 'lunch time', 'lunchtime',
      'breakfast time', 'heading', 'leaving', 'off to', 'back home', 'home', 'guests', 'visitors',
    ],
    joiners: ['so', 'because', 'since', 'cause', 'cuz', 'coz'],
    blockers: [
      'if', 'when', 'whenever', 'unless', 'until', 'till', 'once', 'after', 'before', 'then', 'and then', 'followed by', 'afterwards', 'later', 'soon', 'tomorrow', 'tonight', 'at',
      'minute', 'minutes', 'min', 'mins', 'hour', 'hours', 'second', 'seconds', 'oclock', 'you', 'your', 'u', 'ur', 'youre', 'yourself',
      'want', 'wanna', 'need', 'like', 'wish', 'would', 'prefer', 'rather', 'should', 'must', 'maybe', 'wonder', 'whether', 'or',
      'what', 'why', 'how', 'who', 'where', 'which', 'ignore', 'forget', 'instructions', 'system', 'admin',
    ],
    sequels: ['then', 'and then', 'after that', 'afterwards', 'followed by', 'later', 'next'],
  },
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
      return `The ${name}${what} is ${String(value).replace(/_/g, ' ')}${unit ? ` ${unit}` : ''}.`;
    },
    unknownReading: (name, property) => `${name} has not reported its ${property.replace(/_/g, ' ')} yet.`,
    refused: (reason) => `I can't do that: ${reason}.`,
    confirm(name, command, id) {
      const what = this.done(name, command).replace(/\.$/, '');
      return `Please confirm: ${what.charAt(0).toLowerCase()}${what.slice(1)}? Reply "confirm ${id}" within a minute.`;
    },
    failed: (name, message) => `${name} did not do it: ${message}.`,
    noModel: () => 'I only understand direct device commands right now (no language model is loaded), e.g. "turn on the kitchen lamp".',
    which: (subject, names) =>
      `Which ${subject}: ${names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names.at(-1)}` : names[0]}?`,
  },
};
