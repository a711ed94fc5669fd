/**
 * LoginGuard on its own, with real scrypt hashes where a password is checked: backoff per username and per
 * address after the free failures, reset on success, the busy refusal of a full queue, the cache of verified
 * logins (which passes a username backoff but never an address backoff), and the bounds of every map.
 */
import t from 'tap';
import { HashLimiter, LoginGuard, type LoginAttempt, addressKey } from './login-guard.js';
import { hashPassword, verifyPassword } from './password.js';

const HASH = await hashPassword('right');
// Refusals answered at once here; the delay has its own test.
const LONG = { freeFailures: 2, backoffBaseMs: 60_000, backoffMaxMs: 60_000, refusalDelayMs: 0 };

function login(guard: LoginGuard, password: string, address: string, username = 'ann'): ReturnType<LoginGuard['attempt']> {
  const attempt: LoginAttempt = {
    realm: 'test',
    username,
    address,
    secret: password,
    credential: HASH,
    check: () => verifyPassword(password, HASH),
  };
  return guard.attempt(attempt);
}

t.test('an address backs off after the free failures; refusals run no hash', async (t) => {
  const guard = new LoginGuard(LONG, new HashLimiter(2, 16));
  t.match(await login(guard, 'wrong', '10.0.0.1'), { ok: false, reason: 'wrong', backoffMs: 0 });
  t.match(await login(guard, 'wrong', '10.0.0.1', 'bob'), { ok: false, reason: 'wrong', backoffMs: 0 });
  t.match(await login(guard, 'wrong', '10.0.0.1', 'carl'), { ok: false, reason: 'wrong', backoffMs: 60_000 }, 'third failure starts the backoff');
  const checks = guard.stats.checks;
  const refused = await login(guard, 'right', '10.0.0.1', 'dora');
  t.match(refused, { ok: false, reason: 'backoff', scope: 'address' }, 'even the right password is not checked');
  t.ok(!refused.ok && refused.reason === 'backoff' && refused.retryAfterMs > 0 && refused.retryAfterMs <= 60_000);
  t.equal(guard.stats.checks, checks, 'no hash for a refused attempt');
  t.match(await login(guard, 'right', '10.0.0.2', 'dora'), { ok: true }, 'another address is not affected');
});

t.test('a username backs off across addresses; success from elsewhere is refused until the window ends', async (t) => {
  const guard = new LoginGuard(LONG, new HashLimiter(2, 16));
  for (const address of ['10.0.1.1', '10.0.1.2', '10.0.1.3']) await login(guard, 'wrong', address);
  t.match(await login(guard, 'right', '10.0.1.4'), { ok: false, reason: 'backoff', scope: 'username' });
  t.match(await login(guard, 'right', '10.0.1.4', 'bob'), { ok: true }, 'other usernames still log in');
});

t.test('a verified login is cached per address: it passes a username backoff, never an address backoff', async (t) => {
  const guard = new LoginGuard(LONG, new HashLimiter(2, 16));
  t.match(await login(guard, 'right', '10.0.2.1'), { ok: true, cached: false });
  t.match(await login(guard, 'right', '10.0.2.1'), { ok: true, cached: true }, 'second login skips scrypt');
  t.equal(guard.stats.checks, 1);
  // An attacker elsewhere backs the username off; the device that proved its password keeps reconnecting.
  for (const address of ['10.0.2.7', '10.0.2.8', '10.0.2.9']) await login(guard, 'guess', address);
  t.match(await login(guard, 'right', '10.0.2.9'), { ok: false, reason: 'backoff' }, 'the attacker with the right password is still refused');
  t.match(await login(guard, 'right', '10.0.2.1'), { ok: true, cached: true }, 'the known device passes the username backoff');
  t.match(await login(guard, 'wrong', '10.0.2.1'), { ok: false, reason: 'backoff', scope: 'username' }, 'a guess from there is refused');
  // Failures at the device's own address: the cache no longer helps there.
  const shared = new LoginGuard(LONG, new HashLimiter(2, 16));
  await login(shared, 'right', '10.0.3.1');
  for (const user of ['x', 'y', 'z']) await login(shared, 'guess', '10.0.3.1', user);
  t.match(await login(shared, 'right', '10.0.3.1'), { ok: false, reason: 'backoff', scope: 'address' });
});

t.test('success resets the records of its username and address', async (t) => {
  const guard = new LoginGuard({ freeFailures: 2, backoffBaseMs: 1, backoffMaxMs: 1, refusalDelayMs: 0 }, new HashLimiter(2, 16));
  await login(guard, 'wrong', '10.0.4.1');
  await login(guard, 'wrong', '10.0.4.1');
  t.match(guard.sizes(), { addresses: 1, usernames: 1, cached: 0, pendingAddresses: 0 });
  t.match(await login(guard, 'right', '10.0.4.1'), { ok: true });
  t.match(guard.sizes(), { addresses: 0, usernames: 0, cached: 1, pendingAddresses: 0 });
  t.match(await login(guard, 'wrong', '10.0.4.1'), { ok: false, reason: 'wrong', backoffMs: 0 }, 'counting starts again');
});

t.test('windows double with each failure up to the cap', async (t) => {
  // Attempts that are all checked before any of them fails: each failure lengthens the window.
  const guard = new LoginGuard({ freeFailures: 1, backoffBaseMs: 1000, backoffMaxMs: 5000, maxPendingPerAddress: 8 }, new HashLimiter(8, 0));
  const results = await Promise.all(
    Array.from({ length: 6 }, (_, i) => guard.attempt({ realm: 'test', address: '10.0.5.1', secret: `${i}`, credential: 'c', check: async () => false })),
  );
  t.same(
    results.map((r) => (!r.ok && r.reason === 'wrong' ? r.backoffMs : -1)),
    [0, 1000, 2000, 4000, 5000, 5000],
  );
});

t.test('backoff refusals are answered late, but no more than maxDelayedRefusals at a time', async (t) => {
  const guard = new LoginGuard({ freeFailures: 0, backoffBaseMs: 60_000, refusalDelayMs: 50, maxDelayedRefusals: 2 }, new HashLimiter(2, 16));
  await guard.attempt({ realm: 'test', address: '10.0.7.1', secret: 'x', credential: 'c', cheap: true, check: async () => false });
  const refusals = Array.from({ length: 5 }, () =>
    guard.attempt({ realm: 'test', address: '10.0.7.1', secret: 'x', credential: 'c', cheap: true, check: async () => false }),
  );
  t.equal(guard.sizes().delayedRefusals, 2, 'two held, the other three answered at once');
  for (const result of await Promise.all(refusals)) t.match(result, { ok: false, reason: 'backoff', scope: 'address' });
  t.equal(guard.sizes().delayedRefusals, 0);
});

t.test('a full queue is refused at once; one address holds at most maxPendingPerAddress', async (t) => {
  const limiter = new HashLimiter(1, 2);
  const guard = new LoginGuard({ maxPendingPerAddress: 2 }, limiter);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const slow = (address: string): ReturnType<LoginGuard['attempt']> =>
    guard.attempt({ realm: 'test', username: `u-${address}`, address, secret: 'p', credential: 'c', check: () => gate.then(() => false) });
  const a1 = slow('10.0.6.1');
  const a2 = slow('10.0.6.1');
  t.match(await slow('10.0.6.1'), { ok: false, reason: 'busy' }, 'third from one address');
  const b1 = slow('10.0.6.2');
  t.equal(limiter.running + limiter.queued, 3);
  t.match(await slow('10.0.6.3'), { ok: false, reason: 'busy' }, 'queue full');
  t.equal(guard.sizes().pendingAddresses, 2);
  release();
  for (const result of await Promise.all([a1, a2, b1])) t.match(result, { ok: false, reason: 'wrong' });
  t.equal(guard.sizes().pendingAddresses, 0, 'pending counts are released');
  t.equal(guard.stats.refusedBusy, 2);
});

t.test('failure records and the cache stay within their bounds', async (t) => {
  const guard = new LoginGuard(
    { freeFailures: 1, maxTrackedAddresses: 8, maxTrackedUsernames: 4, maxCached: 3 },
    new HashLimiter(2, 16),
  );
  for (let i = 0; i < 30; i++) {
    await guard.attempt({ realm: 'test', username: `u${i}`, address: `10.1.0.${i}`, secret: 's', credential: 'c', cheap: true, check: async () => false });
  }
  t.equal(guard.sizes().addresses, 8);
  t.equal(guard.sizes().usernames, 4);
  for (let i = 0; i < 6; i++) {
    await guard.attempt({ realm: 'test', username: 'ok', address: `10.2.0.${i}`, secret: 's', credential: 'c', check: async () => true });
  }
  t.equal(guard.sizes().cached, 3);
});

t.test('addresses: IPv6 per /64, IPv4-mapped as IPv4', async (t) => {
  t.equal(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  t.equal(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64');
  t.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
  t.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  t.equal(addressKey('::ffff:192.168.1.5'), '192.168.1.5');
  t.equal(addressKey('192.168.1.5'), '192.168.1.5');
  t.equal(addressKey(undefined), 'unknown');
});

t.test('disabled: every attempt is checked, nothing is refused', async (t) => {
  const guard = new LoginGuard({ enabled: false, freeFailures: 0 }, new HashLimiter(1, 0));
  for (let i = 0; i < 5; i++) t.match(await login(guard, 'wrong', '10.3.0.1'), { ok: false, reason: 'wrong' });
  t.match(await login(guard, 'right', '10.3.0.1'), { ok: true, cached: false });
  t.equal(guard.stats.checks, 6);
});
