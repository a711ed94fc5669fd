/**
 * GroupCommitDb on a real LevelDB: writes of one turn share a commit, call order is kept (also across a
 * clear), chained batches work, and close() commits what is queued.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Level } from 'level';
import t from 'tap';
import { GroupCommitDb } from './group-commit.js';

async function open(t: { teardown(fn: () => unknown): void }): Promise<{ db: GroupCommitDb; dir: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-group-commit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const level = new Level<string, Buffer | string>(dir);
  await level.open();
  const db = new GroupCommitDb(level);
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
