/**
 * The event-loop serial binding over a real pseudo-terminal pair (socat): data arrives whole and in order
 * both ways, a write the far end cannot take yet waits (EAGAIN) without holding the event loop and
 * finishes once the far end reads, and closing the port ends a waiting write instead of leaving it hanging.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SerialPort } from 'serialport';
import t, { type Test } from 'tap';
import { SocatPair } from '../fixtures/socat.js';
import { eventLoopBinding } from './event-loop-binding.js';

// A hang is what a broken binding does: fail the test instead of the suite's timeout.
t.setTimeout(60_000);
const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-binding-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

async function openPort(t: Test, devicePath: string): Promise<SerialPort> {
  const options = { path: devicePath, baudRate: 115200, autoOpen: false, lock: false, binding: eventLoopBinding() };
  const port = new SerialPort(options as ConstructorParameters<typeof SerialPort>[0]);
  await new Promise<void>((resolve, reject) => port.open((error) => (error ? reject(error) : resolve())));
  t.teardown(() => new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve())));
  return port;
}

async function pair(t: Test, name: string) {
  const socat = new SocatPair(path.join(dir, `${name}-a`), path.join(dir, `${name}-b`));
  await socat.start();
  t.teardown(() => socat.stop());
  return { a: await openPort(t, socat.a), b: await openPort(t, socat.b) };
}

/** A pattern a reordered, lost or doubled chunk cannot reproduce. */
function pattern(bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) out[i] = (i * 7 + (i >> 8)) & 0xff;
  return out;
}

function collect(port: SerialPort, bytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  return new Promise((resolve) => {
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= bytes) {
        port.off('data', onData);
        resolve(Buffer.concat(chunks));
      }
    };
    port.on('data', onData);
  });
}

t.test('lines go both ways whole and in order', async (t) => {
  const { a, b } = await pair(t, 'lines');
  const line = (who: string, i: number) => `${who} line ${String(i).padStart(4, '0')}\n`;
  const expected = (who: string) => Array.from({ length: 200 }, (_, i) => line(who, i)).join('');
  const toB = collect(b, expected('A').length);
  const toA = collect(a, expected('B').length);
  for (let i = 0; i < 200; i++) {
    a.write(line('A', i));
    b.write(line('B', i));
  }
  t.equal((await toB).toString(), expected('A'));
  t.equal((await toA).toString(), expected('B'));
});

t.test('a write larger than the link buffers waits for the far end, without holding the event loop', async (t) => {
  const { a, b } = await pair(t, 'big');
  const data = pattern(1 << 20);
  b.pause();
  let written = false;
  a.write(data, () => {
    written = true;
  });
  // The far end reads nothing: the write cannot finish, and timers still run meanwhile.
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.notOk(written, 'the write waits while the far end reads nothing');
  const received = collect(b, data.length);
  b.resume();
  const got = await received;
  t.equal(got.length, data.length, 'every byte arrives');
  t.ok(got.equals(data), 'in order');
  await new Promise<void>((resolve) => a.drain(() => resolve()));
  t.ok(written, 'the write finished once the far end read');
});

t.test('closing the port ends a write that waits', async (t) => {
  const { a, b } = await pair(t, 'close');
  b.pause();
  // The stream also emits the failed write as 'error' (the serial-line driver listens, as here).
  a.on('error', () => {});
  const outcome = new Promise<Error | null | undefined>((resolve) => a.write(pattern(1 << 20), (error) => resolve(error)));
  await new Promise((resolve) => setTimeout(resolve, 200));
  await new Promise<void>((resolve) => a.close(() => resolve()));
  const error = await outcome;
  t.match(error, { canceled: true }, 'the waiting write fails (canceled) instead of hanging');
});
