/** Content safety on a streamed reply: whole words only, held-back numbers, and a stop at the first change. */
import t from 'tap';
import { createContentSafety } from '../plugins/builtin/content-safety/safety.js';
import { screenedStream } from './stream-screen.js';

function feed(pieces: string[], safety = createContentSafety({ config: { rules: [{ id: 'no-secrets', category: 'secret', words: ['topsecret'] }], categories: { secret: 'block' } } })) {
  const out: string[] = [];
  const stream = screenedStream(safety, 'http', (text) => out.push(text));
  for (const piece of pieces) stream.push(piece);
  return { out, emitted: stream.emitted() };
}

t.test('whole words go out as they complete; the last word waits for what follows', async (t) => {
  const { out, emitted } = feed(['The la', 'mp is ', 'on and', ' the blind ', 'is open']);
  t.same(out, ['The', ' lamp is', ' on', ' and the blind', ' is']);
  t.equal(emitted, 'The lamp is on and the blind is', '"open" may still grow');
});

t.test('a growing number is held back (it may be a card number)', async (t) => {
  const { emitted } = feed(['your card 4111 ', '1111 ', '1111 ']);
  t.equal(emitted, 'your card', 'the digits are not sent while they may still be growing');
});

t.test('streaming stops for good where the policy would block or mask', async (t) => {
  const { out, emitted } = feed(['the plan is ', 'topsecret and ', 'more words ', 'follow here ']);
  t.same(out, ['the plan is'], 'nothing after the blocked word, nor anything later');
  t.equal(emitted, 'the plan is');
  const masked = feed(['mail me at bob@example.com ', 'please ', 'now '], createContentSafety({}));
  t.notMatch(masked.emitted, /@/, 'an e-mail address the default policy masks is never streamed');
});

t.test('without content safety, every piece goes out as it comes', async (t) => {
  const out: string[] = [];
  const stream = screenedStream(null, 'http', (text) => out.push(text));
  stream.push('hel');
  stream.push('lo 4111 ');
  t.same(out, ['hel', 'lo 4111 ']);
  t.equal(stream.emitted(), 'hello 4111 ');
});
