import t from 'tap';
import { Backstop } from './backstop.js';

t.test('a call that settles in time settles as its work did; one that never does expires; the timer stops when none is left', async (t) => {
  const backstop = new Backstop(5);
  await t.resolves(backstop.guard(Promise.resolve('answer'), 50, () => new Error('expired')), 'resolved in time');
  await t.rejects(backstop.guard(Promise.reject(new Error('driver failed')), 50, () => new Error('expired')), { message: 'driver failed' });
  const never = new Promise<string>(() => {});
  const started = performance.now();
  await t.rejects(backstop.guard(never, 30, () => new Error('expired')), { message: 'expired' }, 'a call that never settles expires');
  t.ok(performance.now() - started >= 30, 'not before its time');
  t.equal(backstop.size, 0, 'nothing left in flight');
  // With no call in flight the timer is gone, so nothing keeps the process alive: tap would hang otherwise.
});

t.test('a late answer after the expiry changes nothing', async (t) => {
  const backstop = new Backstop(5);
  let answer!: (value: string) => void;
  const late = new Promise<string>((resolve) => {
    answer = resolve;
  });
  const guarded = backstop.guard(late, 10, () => new Error('expired'));
  await t.rejects(guarded, { message: 'expired' });
  answer('too late');
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(backstop.size, 0);
});
