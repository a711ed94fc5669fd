import { Writable } from 'node:stream';
import { getHeapSpaceStatistics } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pino from 'pino';
import t from 'tap';
import { mallocTrimAvailable } from './malloc-trim.js';
import { settleMemory, shouldSettle } from './settle-memory.js';

function recordingLogger() {
  const lines: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      for (const w of waiters.splice(0)) w();
      done();
    },
  });
  /** Resolves once `count` lines were logged. */
  const logged = async (count: number): Promise<void> => {
    const alive = setInterval(() => {}, 1000); // the settler's timers are unref'd
    while (lines.length < count) await new Promise<void>((resolve) => waiters.push(resolve));
    clearInterval(alive);
  };
  return { log: pino({ level: 'debug' }, stream), lines, logged };
}

type Settled = { msg: string; why: string; heapTotalMb: [number, number] };

/** Garbage that has lived through scavenges: the old generation holds it, as after a start or a burst. */
function makeOldGarbage(): void {
  let garbage: { id: number; text: string }[] | undefined = Array.from({ length: 300_000 }, (_, id) => ({ id, text: `item ${id}` }));
  for (let i = 0; i < 20; i++) garbage.push(...Array.from({ length: 1000 }, (_, id) => ({ id, text: `more ${id}` })));
  if (garbage.length < 300_000) throw new Error('unreachable');
  garbage = undefined;
}

t.test('gc stays private: neither this context nor a new one gets it', async (t) => {
  t.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined');
  t.equal(runInNewContext('typeof gc'), 'undefined');
});

t.test('after start, then after the heap grew on a quiet process: the garbage is given back', async (t) => {
  makeOldGarbage();
  const { log, lines, logged } = recordingLogger();
  const stop = settleMemory(log, { firstAfterMs: 0, checkEveryMs: 50 });
  t.teardown(stop);
  await logged(1);
  const first = lines[0] as Settled;
  t.match(first, { msg: 'memory settled', why: 'after start' });
  t.ok(first.heapTotalMb[1] < first.heapTotalMb[0] - 10, `after start: V8's heap went from ${first.heapTotalMb[0]} to ${first.heapTotalMb[1]} MB`);

  makeOldGarbage(); // a burst
  await logged(2);
  const second = lines[1] as Settled;
  t.match(second, { msg: 'memory settled', why: 'heap grew while the process was quiet' });
  t.ok(second.heapTotalMb[1] < second.heapTotalMb[0] - 8, `after the burst: ${second.heapTotalMb[0]} to ${second.heapTotalMb[1]} MB`);
});

t.test("glibc's heaps are trimmed after each collection and periodically, busy or not", { skip: mallocTrimAvailable() ? false : 'no malloc_trim here' }, async (t) => {
  const { log, lines, logged } = recordingLogger();
  const stop = settleMemory(log, { firstAfterMs: 0, checkEveryMs: 20, trimEveryMs: 0, maxUtilization: 0 });
  t.teardown(stop);
  await logged(3);
  t.match(lines[0], { msg: 'memory settled', why: 'after start', trimMs: Number });
  // maxUtilization 0: never quiet enough for a collection, yet the heaps are trimmed.
  t.match(lines[1], { msg: 'malloc heaps trimmed', trimMs: Number, rssMb: [Number, Number] });
  t.match(lines[2], { msg: 'malloc heaps trimmed' });
});

t.test('cancelled before it runs: no collection', async (t) => {
  const { log, lines } = recordingLogger();
  const cancel = settleMemory(log, { firstAfterMs: 50 });
  cancel();
  const { log: marker, logged } = recordingLogger();
  t.teardown(settleMemory(marker, { firstAfterMs: 100 })); // a later one that does run: by then the first would have
  await logged(1);
  t.equal(lines.length, 0);
});

t.test('only when the heap grew enough and the event loop was quiet', async (t) => {
  const mb = 1 << 20;
  t.ok(shouldSettle(20 * mb, 0.01), 'grown and quiet');
  t.notOk(shouldSettle(20 * mb, 0.5), 'grown but busy: V8 keeps up on its own, and a pause would hit clients');
  t.notOk(shouldSettle(2 * mb, 0.01), 'quiet but hardly grown');
});

/** Bytes in V8's trusted space, where the bytecode of compiled functions lives. */
function bytecodeSpaceUsed(): number {
  const space = getHeapSpaceStatistics().find((s) => s.space_name === 'trusted_space');
  if (!space) throw new Error('this V8 has no trusted_space');
  return space.space_used_size;
}

t.test('the collection after start drops the bytecode of what only the start ran; it runs again when called', async (t) => {
  const settleOnce = async (): Promise<void> => {
    const { log, logged } = recordingLogger();
    const stop = settleMemory(log, { firstAfterMs: 0, checkEveryMs: 60_000 });
    await logged(1);
    stop();
  };
  await settleOnce(); // what this process compiled so far is gone: the next one measures only the functions below
  const empty = bytecodeSpaceUsed();
  const startOnly = Array.from(
    { length: 300 },
    (_, i) => new Function('n', `let sum = ${i}; for (let k = 0; k < n; k++) { sum += (k * ${i}) % 7; if (sum > 1e9) sum = 0; } return [sum, '${'x'.repeat(40)}', ${i}];`),
  );
  const results = startOnly.map((f) => f(5));
  const compiled = bytecodeSpaceUsed() - empty;
  t.ok(compiled > 50_000, `the functions' bytecode: ${compiled} bytes`);

  await settleOnce();
  const left = bytecodeSpaceUsed() - empty;
  t.ok(left < compiled * 0.2, `after the collection ${left} of ${compiled} bytes are left`);
  t.same(
    startOnly.map((f) => f(5)),
    results,
    'each runs as before, compiled again',
  );
});
