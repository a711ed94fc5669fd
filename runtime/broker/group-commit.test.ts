/**
 * GroupCommitDb on a real LevelDB: writes of one turn share a commit, call order is kept (also across a
 * clear), chained batches work, and close() commits what is queued; deferred writes resolve before their
 * commit, reads see them, synced() says when they are committed (or that a commit failed), and beyond
 * the bound writes wait for their commit again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Level } from 'level';
import t, { type Test } from 'tap';
import { GroupCommitDb } from './group-commit.js';

async function open(
  t: { teardown(fn: () => unknown): void },
  options?: ConstructorParameters<typeof GroupCommitDb>[1],
): Promise<{ db: GroupCommitDb; dir: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-group-commit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const level = new Level<string, Buffer | string>(dir);
  await level.open();
  const db = new GroupCommitDb(level, options);
  t.teardown(() => (db.status === 'open' ? db.close() : undefined));
  return { db, dir };
}

t.test('the writes of one turn are one commit; each resolves once committed', async (t) => {
  const { db } = await open(t);
  const writes = Array.from({ length: 200 }, (_, i) => db.put(`k:${i}`, Buffer.from([i % 256]), { valueEncoding: 'buffer' }));
  await Promise.all(writes);
  t.same(db.stats, { commits: 1, ops: 200 });
  t.same(await db.get('k:199', { valueEncoding: 'buffer' }), Buffer.from([199]));
});

t.test('call order is kept for one key, across batches, chained batches and a clear', async (t) => {
  const { db } = await open(t);
  const order = [
    db.put('a', '1'),
    db.batch([
      { type: 'put', key: 'a', value: '2' },
      { type: 'put', key: 'b', value: 'x' },
    ]),
    db.clear({ gte: 'b', lt: 'c' }),
    db.put('b', 'after-clear'),
    db.batch().put('a', '3').del('c').write(),
  ];
  await Promise.all(order);
  t.equal(await db.get('a'), '3');
  t.equal(await db.get('b'), 'after-clear', 'the put after the clear survives it');
});

t.test('close() commits what is queued; later writes are refused', async (t) => {
  const { db, dir } = await open(t);
  const pending = db.put('last', 'kept');
  await db.close();
  await pending;
  await t.rejects(db.put('x', 'y'), /closed/);
  const level = new Level<string, string>(dir);
  t.equal(await level.get('last'), 'kept');
  await level.close();
});

const deferMessages = { deferrable: (key: string) => key.startsWith('m:') };

/** Settles to what the promise did, or 'pending' if it has not by the end of this turn's microtasks. */
async function state(promise: Promise<unknown>): Promise<'resolved' | 'rejected' | 'pending'> {
  return Promise.race([
    promise.then(
      () => 'resolved' as const,
      () => 'rejected' as const,
    ),
    Promise.resolve().then(() => 'pending' as const),
  ]);
}

t.test('a deferred write resolves before its commit; synced() resolves after it; strict writes still wait', async (t) => {
  const { db } = await open(t, deferMessages);
  t.equal(db.synced(), undefined, 'nothing queued: nothing to wait for');
  t.equal(await state(db.put('m:1', 'one')), 'resolved', 'deferred write resolved at once');
  const strict = db.put('s:1', 'strict');
  t.equal(await state(strict), 'pending', 'strict write waits for its commit');
  t.equal(db.stats.commits, 0, 'nothing committed yet');
  t.equal(db.deferredOps, 1);
  const synced = db.synced();
  t.ok(synced, 'something to wait for');
  await synced;
  t.equal(await state(strict), 'resolved', 'the strict write of the same batch resolved with it');
  t.equal(db.stats.commits, 1, 'both in one commit');
  t.equal(db.deferredOps, 0);
  t.equal(db.synced(), undefined);
});

t.test('reads see deferred writes before they are committed (get, encodings, deletes, a clear, range reads)', async (t) => {
  const { db } = await open(t, deferMessages);
  await db.put('m:a', Buffer.from('alpha'), { valueEncoding: 'buffer' });
  await db.put('m:b', 'beta');
  t.equal(db.stats.commits, 0, 'not committed yet');
  t.same(await db.get('m:a', { valueEncoding: 'buffer' }), Buffer.from('alpha'));
  t.equal(await db.get('m:a'), 'alpha', 'utf8 by default, as LevelDB would answer');
  t.same(await db.get('m:b', { valueEncoding: 'buffer' }), Buffer.from('beta'));
  await db.del('m:b');
  t.equal(await db.get('m:b'), undefined, 'a queued delete reads as gone');
  const values: string[] = [];
  for await (const value of db.values({ gte: 'm:', lt: 'm;', valueEncoding: 'utf8' })) values.push(String(value));
  t.same(values, ['alpha'], 'a range read waits for the commit and sees it');
  await db.put('m:c', 'gamma');
  const clearing = db.clear({ gte: 'm:', lt: 'm;' });
  t.equal(await db.get('m:c'), undefined, 'a queued clear hides the queued write in its range');
  await db.put('m:d', 'after');
  t.equal(await db.get('m:d'), 'after', 'a write after the clear is seen');
  await clearing;
  await db.synced();
  t.equal(await db.get('m:c'), undefined);
  t.equal(await db.get('m:a'), undefined);
  t.equal(await db.get('m:d'), 'after');
});

t.test('synced() rejects when a commit since the call failed', async (t) => {
  const { db } = await open(t, deferMessages);
  // LevelDB refuses an undefined value: the whole batch fails.
  await db.write([{ type: 'put', key: 'm:bad', value: undefined as never }]);
  await t.rejects(db.synced()!, 'the failed commit reaches synced()');
  await db.put('m:good', 'ok');
  await t.resolves(db.synced()!, 'a later good commit resolves for those who asked after the failure');
});

t.test('beyond maxDeferredOps writes wait for their commit', async (t) => {
  const { db } = await open(t, { ...deferMessages, maxDeferredOps: 2 });
  t.equal(await state(db.put('m:1', '1')), 'resolved');
  t.equal(await state(db.put('m:2', '2')), 'resolved');
  const third = db.put('m:3', '3');
  t.equal(await state(third), 'pending', 'the bound is reached: this one waits');
  await third;
  t.equal(db.deferredOps, 0);
  t.equal(await state(db.put('m:4', '4')), 'resolved', 'deferred again once committed');
  await db.synced();
});

t.test('recently committed values of deferrable keys are read from memory, within the bound; a clear drops them', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-group-commit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const level = new Level<string, Buffer | string>(dir);
  await level.open();
  let levelReads = 0;
  const get = level.get.bind(level);
  level.get = ((...args: Parameters<typeof level.get>) => {
    levelReads++;
    return get(...args);
  }) as typeof level.get;
  const db = new GroupCommitDb(level, { ...deferMessages, recentValues: 2 });
  t.teardown(() => db.close());
  await db.put('m:1', Buffer.from('one'), { valueEncoding: 'buffer' });
  await db.put('m:2', 'two');
  await db.del('m:3');
  await db.put('s:1', 'strict');
  await db.synced();
  t.equal(await db.get('m:3'), undefined, 'a committed delete is remembered');
  t.equal(await db.get('m:2'), 'two');
  t.equal(levelReads, 0, 'both answered from memory');
  t.equal(await db.get('m:1', { valueEncoding: 'buffer' }).then(String), 'one', 'beyond the bound: from LevelDB, same value');
  t.equal(await db.get('s:1'), 'strict', 'strict keys: from LevelDB');
  t.equal(levelReads, 2);
  const clearing = db.clear({ gte: 'm:', lt: 'm;' });
  t.equal(await db.get('m:2'), undefined, 'a queued clear hides a remembered value');
  await clearing;
  t.equal(await db.get('m:2'), undefined, 'and it stays gone');
});

/** Opens a GroupCommitDb whose LevelDB records the `sync` option of every batch it writes. */
async function openRecordingSyncs(t: Test, options: ConstructorParameters<typeof GroupCommitDb>[1]) {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-group-commit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const level = new Level<string, Buffer | string>(dir);
  await level.open();
  const syncs: boolean[] = [];
  const batch = level.batch.bind(level) as (ops: unknown, options: { sync?: boolean }) => Promise<void>;
  (level as unknown as { batch: typeof batch }).batch = (ops, batchOptions) => {
    syncs.push(batchOptions.sync === true);
    return batch(ops, batchOptions);
  };
  const db = new GroupCommitDb(level, options);
  t.teardown(() => (db.status === 'open' ? db.close() : undefined));
  return { db, dir, syncs };
}

/** Lets the event loop run a few turns (a commit that was going to start would have started). */
async function someTurns(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** A linger long enough that only the event under test commits a write-behind batch. */
const noTimer = { ...deferMessages, writeBehindMs: 600_000 };

t.test('a write-behind write resolves at once and starts no commit; reads see it; its linger commits it without fsync', async (t) => {
  const { db, syncs } = await openRecordingSyncs(t, { ...deferMessages, writeBehindMs: 20 });
  const write = db.writeBehind(() => db.put('m:state', 'ON'));
  t.equal(await state(write), 'resolved', 'resolved at once');
  await someTurns();
  t.equal(db.stats.commits, 0, 'no commit of its own yet');
  t.equal(await db.get('m:state'), 'ON', 'reads see it');
  while (db.stats.commits === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  t.same(syncs, [false], 'committed once its linger ended, without fsync');
  t.equal(db.deferredOps, 0);
  t.equal(db.synced(), undefined, 'nothing left to wait for');
});

t.test('write-behind writes of one key keep only the last; they go with the next other write, synced', async (t) => {
  const { db, syncs } = await openRecordingSyncs(t, noTimer);
  for (let i = 1; i <= 50; i++) await db.writeBehind(() => db.put('m:dimmer', String(i)));
  await db.writeBehind(() => db.del('m:gone'));
  await someTurns();
  t.equal(db.stats.commits, 0, 'still waiting');
  await db.put('s:subscription', 'x');
  t.same(db.stats, { commits: 1, ops: 3 }, 'one commit: the last dimmer value, the delete, the strict write');
  t.same(syncs, [true], 'with fsync, for the strict write');
  t.equal(await db.get('m:dimmer'), '50');
});

t.test('something waiting for a write-behind write commits it now: synced(), a range read, a clear, close()', async (t) => {
  {
    const { db } = await openRecordingSyncs(t, noTimer);
    db.writeBehind(() => db.put('m:a', '1'));
    await t.resolves(db.synced()!, 'synced() resolves');
    t.equal(db.stats.commits, 1);
  }
  {
    const { db } = await openRecordingSyncs(t, noTimer);
    db.writeBehind(() => db.put('m:a', '1'));
    const values: string[] = [];
    for await (const value of db.values({ gte: 'm:', lt: 'm;', valueEncoding: 'utf8' })) values.push(String(value));
    t.same(values, ['1'], 'a range read sees it');
  }
  {
    const { db } = await openRecordingSyncs(t, noTimer);
    db.writeBehind(() => db.put('m:a', 'before'));
    await db.clear({ gte: 'm:', lt: 'm;' });
    t.equal(db.stats.commits, 1, 'written before the clear');
    await db.synced();
    t.equal(await db.get('m:a'), undefined, 'the clear did not run before it');
  }
  {
    const { db, dir } = await openRecordingSyncs(t, noTimer);
    db.writeBehind(() => db.put('m:last', 'kept'));
    await db.close();
    const level = new Level<string, string>(dir);
    t.equal(await level.get('m:last'), 'kept', 'close() writes it');
    await level.close();
  }
});

t.test('only the writes made inside writeBehind() are write-behind; beyond maxDeferredOps they commit at once', async (t) => {
  const { db } = await openRecordingSyncs(t, { ...noTimer, maxDeferredOps: 3 });
  const returned = db.writeBehind(() => 'fn result');
  t.equal(returned, 'fn result', "writeBehind returns fn's result");
  const strict = db.put('s:1', 'after');
  t.equal(await state(strict), 'pending', 'a write after writeBehind() is strict again');
  await strict;
  for (let i = 0; i < 3; i++) await db.writeBehind(() => db.put(`m:${i}`, 'v'));
  await someTurns();
  t.equal(db.stats.commits, 1, 'within the bound they wait');
  await db.writeBehind(() => db.put('m:3', 'v'));
  // Nothing else makes them due now (no timer within the test, nobody waits): only the bound.
  while (db.stats.commits < 2) await new Promise((resolve) => setTimeout(resolve, 5));
  t.equal(db.stats.ops, 5, 'the four went out together');
  t.equal(db.deferredOps, 0);
});

t.test('putBehind: a write-behind put whose value is made only for the write or a read, and only for the last of a key', async (t) => {
  const { db, syncs } = await openRecordingSyncs(t, noTimer);
  const made: number[] = [];
  const value = (i: number) => () => {
    made.push(i);
    return Buffer.from(`v${i}`);
  };
  for (let i = 1; i <= 20; i++) db.putBehind('m:lamp', value(i));
  await someTurns();
  t.same(made, [], 'nothing made while it waits');
  t.equal(db.stats.commits, 0, 'no commit of its own');
  t.same(await db.get('m:lamp', { valueEncoding: 'buffer' }), Buffer.from('v20'), 'a read sees the last one (and makes it)');
  t.same(made, [20], 'only the last was made');
  db.putBehind('m:lamp', value(21));
  db.putBehind('m:lamp', value(22));
  await db.put('s:other', 'x');
  t.same(made, [20, 22], 'the commit made only the last of the second round');
  t.same(syncs, [true], 'it went with the next strict write');
  t.equal(await db.get('m:lamp'), 'v22', 'committed, and read back from LevelDB or the recent values');
  t.equal(db.deferredOps, 0);
});
