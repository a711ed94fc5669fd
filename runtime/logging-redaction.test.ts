/**
 * No secret in a log line: through the real logger (pino with the redaction formatter and line hook) into a
 * stream, for query tokens in URLs and messages, Authorization and Cookie headers, secret keys at any depth
 * (a config error's object), errors and their messages, the pretty output and the warnings ring.
 */
import { Writable } from 'node:stream';
import t from 'tap';
import { REDACTED, createLogging, redactText } from './logging.js';

function capture(level: 'info' | 'debug' = 'info') {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const logging = createLogging({ level, components: {}, pretty: false, destination });
  return { logging, log: logging.forComponent('test'), text: () => lines.join('') };
}

t.test('query tokens, headers and secret keys never reach the line', async (t) => {
  const { log, text, logging } = capture();
  log.error({ url: '/api/status?token=SECRET-A&x=1', method: 'GET' }, 'http request failed');
  log.error({ req: { url: '/?access_token=SECRET-B', headers: { Authorization: 'Bearer SECRET-C', cookie: 'clawbox_session=SECRET-D', host: 'box' } } }, 'x');
  log.warn(
    { config: { http: { token: 'SECRET-E', password_hash: 'scrypt$16384$8$1$SECRET-F' }, broker: { users: [{ username: 'ann', password: 'SECRET-G' }] } } },
    'config invalid',
  );
  log.info('redirecting /login?password=SECRET-H#top');
  log.info({ target: new URL('http://box/?token=SECRET-I') }, 'url object');
  log.error(new Error('fetch /api?token=SECRET-J failed'));
  log.error({ err: Object.assign(new Error('config error'), { details: { token: 'SECRET-K' } }) }, 'config error');
  log.warn({ note: 'sent Authorization: Bearer SECRET-L.abc' }, 'header in text');
  log.warn({ channels: { platforms: { telegram: { credentials: { bot_token: 'SECRET-M' } } } }, bot_token: 'SECRET-N' }, 'chat platform');
  const out = text();
  t.notMatch(out, /SECRET/, `no secret in:\n${out}`);
  t.match(out, `?token=${REDACTED}&x=1`, 'the rest of the URL stays');
  t.match(out, `"password_hash":"${REDACTED}"`);
  t.match(out, `"Authorization":"${REDACTED}"`);
  t.match(out, `"cookie":"${REDACTED}"`);
  t.match(out, '"host":"box"', 'other headers stay');
  t.match(out, '"username":"ann"', 'other keys stay');
  t.match(out, `/login?password=${REDACTED}#top`);
  const ring = logging.ring.entries();
  t.ok(ring.length >= 5, 'warnings reached the ring');
  t.notMatch(JSON.stringify(ring), /SECRET/, 'the ring (status page) has no secret either');
});

t.test('redactText: only the value goes; escapes and neighbours survive', async (t) => {
  t.equal(redactText('/a?token=abc&b=2'), `/a?token=${REDACTED}&b=2`);
  t.equal(redactText('/a?b=2&Access_Token=abc'), `/a?b=2&Access_Token=${REDACTED}`);
  t.equal(redactText('next=%2F%3Ftoken%3Dabc'), `next=%2F%3Ftoken%3D${REDACTED}`);
  t.equal(redactText('"msg":"?password=a\\"b\\\\c","x":1'), `"msg":"?password=${REDACTED}","x":1`);
  t.equal(redactText('"stack":"at /?token=abc\\n    at x"'), `"stack":"at /?token=${REDACTED}\\n    at x"`);
  t.equal(redactText('mytoken=abc tokens=3'), 'mytoken=abc tokens=3', 'other names stay');
});

t.test('child bindings are redacted too', async (t) => {
  const { logging, text } = capture();
  logging.root.child({ url: '/x?token=SECRET-M', token: 'SECRET-N' }).info('bound');
  t.notMatch(text(), /SECRET/);
  t.match(text(), REDACTED);
});
