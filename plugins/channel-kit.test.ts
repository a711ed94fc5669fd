/** The channel kit's pure parts: splitting a reply at a platform limit, retrying what the platform rate-limits. */
import t from 'tap';
import { Backoff, RetryLater, splitMessage, withRetry } from './channel-kit.js';

t.test('splitMessage', async (t) => {
  t.same(splitMessage('short', 10), ['short'], 'short texts stay whole');
  t.same(splitMessage('', 10), [''], 'an empty text is one empty part');
  const paragraphs = `${'a'.repeat(30)}\n\n${'b'.repeat(30)}`;
  t.same(splitMessage(paragraphs, 40), ['a'.repeat(30), 'b'.repeat(30)], 'cut at the paragraph break');
  t.same(splitMessage('one two three four five six', 10), ['one two', 'three four', 'five six'], 'cut at spaces, none left at the edges');
  const word = 'x'.repeat(25);
  t.same(splitMessage(word, 10), ['x'.repeat(10), 'x'.repeat(10), 'x'.repeat(5)], 'a word longer than the limit is cut anywhere');
  const emoji = '😀'.repeat(10); // 20 UTF-16 units
  const parts = splitMessage(emoji, 5);
  t.ok(parts.every((p) => p.length <= 5 && !/[\uD800-\uDBFF]$/.test(p)), 'no part ends inside a surrogate pair');
  t.equal(parts.join(''), emoji, 'nothing lost');
  for (const limit of [7, 50, 4096]) {
    const text = Array.from({ length: 3000 }, (_, i) => (i % 17 === 0 ? `line${i}\n` : `w${i}`)).join(' ');
    const split = splitMessage(text, limit);
    t.ok(split.every((p) => p.length <= limit && p.length > 0), `every part within ${limit}`);
    t.equal(split.join('').replace(/\s+/g, ''), text.replace(/\s+/g, ''), `only whitespace is lost at ${limit}`);
  }
});

t.test('withRetry', async (t) => {
  let calls = 0;
  const waits: number[] = [];
  const result = await withRetry(
    async () => {
      if (++calls < 3) throw Object.assign(new Error('429'), { retryAfter: 5 });
      return 'sent';
    },
    { classify: (e) => new RetryLater('later', (e as { retryAfter: number }).retryAfter), onWait: (ms) => waits.push(ms) },
  );
  t.equal(result, 'sent');
  t.same(waits, [5, 5], 'waited what the platform asked');
  await t.rejects(withRetry(async () => Promise.reject(new Error('400 bad request')), { classify: () => null }), /400/, 'other errors are not retried');
  await t.rejects(
    withRetry(async () => Promise.reject(new Error('429')), { classify: () => new RetryLater('later', 120_000), maxWaitMs: 1000 }),
    /429/,
    'a wait longer than we accept fails the send instead',
  );
  let tries = 0;
  await t.rejects(
    withRetry(async () => Promise.reject(new Error(`try ${++tries}`)), { classify: () => new RetryLater('later', 1), attempts: 3 }),
    /try 3/,
    'gives up after the attempts',
  );
});

t.test('Backoff doubles up to its ceiling and resets', async (t) => {
  const backoff = new Backoff(100, 500);
  t.same([backoff.next(), backoff.next(), backoff.next(), backoff.next()], [100, 200, 400, 500]);
  backoff.reset();
  t.equal(backoff.next(), 100);
});
