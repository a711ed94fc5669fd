import { Writable } from 'node:stream';
import { runInNewContext } from 'node:vm';
import pino from 'pino';
import t from 'tap';
import { settleMemoryAfterStart } from './settle-memory.js';

function recordingLogger() {
  const lines: Record<string, unknown>[] = [];
  let arrived: () => void = () => {};
  const logged = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      arrived();
      done();
    },
  });
  return { log: pino({ level: 'debug' }, stream), lines, logged };
}

t.test('gc stays private: neither this context nor a new one gets it', async (t) => {
  t.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined');
  t.equal(runInNewContext('typeof gc'), 'undefined');
});

t.test('the collection after start gives the garbage back', async (t) => {
  // Garbage that has lived through scavenges: the old generation holds it, as after a start.
  let garbage: { id: number; text: string }[] | undefined = Array.from({ length: 300_000 }, (_, id) => ({ id, text: `item ${id}` }));
  for (let i = 0; i < 20; i++) garbage.push(...Array.from({ length: 1000 }, (_, id) => ({ id, text: `more ${id}` })));
  t.ok(garbage.length > 300_000);
  garbage = undefined;

  const { log, lines, logged } = recordingLogger();
  settleMemoryAfterStart(log, 0);
  await logged;
  const entry = lines.find((l) => l.msg === 'startup garbage collected') as { ms: number; heapTotalMb: [number, number] } | undefined;
  t.ok(entry, 'logged at debug level');
  const [before, after] = entry!.heapTotalMb;
  t.ok(after < before - 10, `V8's heap went from ${before} to ${after} MB`);
});

t.test('cancelled before it runs: no collection', async (t) => {
  const { log, lines } = recordingLogger();
  const cancel = settleMemoryAfterStart(log, 50);
  cancel();
  const { log: marker, logged } = recordingLogger();
  settleMemoryAfterStart(marker, 100); // a later one that does run: by then the first would have
  await logged;
  t.equal(lines.length, 0);
});
