/**
 * serialport's binding with reads and writes on the event loop (Linux and macOS).
 *
 * Why: serialport's Unix bindings pass every read and write of the port's file descriptor to libuv's
 * thread pool (`fs.read` / `fs.write`), although the descriptor is non-blocking: a command and its reply
 * cost three pool round trips (write, read, the read that finds nothing left), each waking a pool thread
 * and the event loop again. On a box with one or two cores those wake-ups compete with everything else
 * and are most of a serial command's cost inside the runtime. The same syscalls on a non-blocking
 * descriptor return at once, so they are made directly; when one would block (EAGAIN) it waits for the
 * binding's own poller, exactly as serialport does. Opening, termios settings, locking and closing stay
 * serialport's. Windows keeps serialport's binding (it has no poller; its I/O is overlapped already).
 */
import { readSync, writeSync } from 'node:fs';
import { SerialPort } from 'serialport';

type AnyBinding = typeof SerialPort.binding;
type PortBinding = Awaited<ReturnType<AnyBinding['open']>>;

/** The parts of a Unix port binding used here (LinuxPortBinding, DarwinPortBinding). */
interface UnixPort {
  fd: number | null;
  readonly isOpen: boolean;
  poller: { once(event: 'readable' | 'writable', listener: (error: Error | null) => void): unknown };
  read(buffer: Buffer, offset: number, length: number): Promise<{ buffer: Buffer; bytesRead: number }>;
  write(buffer: Buffer): Promise<void>;
}

const WOULD_BLOCK = new Set(['EAGAIN', 'EWOULDBLOCK', 'EINTR']);
/** What serialport treats as the device gone (the stream then closes with a disconnect). */
const DISCONNECTED = new Set(['EBADF', 'ENXIO', 'UNKNOWN']);

/** serialport's stream ignores a canceled error (the port was closed on purpose). */
function notOpen(): Error {
  return Object.assign(new Error('Port is not open'), { canceled: true });
}

function ioFailure(error: NodeJS.ErrnoException): Error {
  if (DISCONNECTED.has(error.code ?? '') || error.errno === -1) Object.assign(error, { disconnect: true });
  return error;
}

function wait(port: UnixPort, event: 'readable' | 'writable'): Promise<void> {
  return new Promise((resolve, reject) => {
    port.poller.once(event, (error) => (error ? reject(error) : resolve()));
  });
}

/** Ports whose last read returned less than asked: nothing is left, so the next read waits for data first. */
const drained = new WeakSet<UnixPort>();

async function read(port: UnixPort, buffer: Buffer, offset: number, length: number): Promise<{ buffer: Buffer; bytesRead: number }> {
  // The stream asks again right after every chunk; a read then would only find EAGAIN (a thrown error
  // per reply). The poller is level-triggered: data that came meanwhile makes it fire at once.
  if (drained.delete(port)) {
    if (port.fd === null) throw notOpen();
    await wait(port, 'readable');
  }
  for (;;) {
    if (port.fd === null) throw notOpen();
    let bytesRead: number;
    try {
      bytesRead = readSync(port.fd, buffer, offset, length, null);
    } catch (error) {
      const err = error as NodeJS.ErrnoException;
      if (!WOULD_BLOCK.has(err.code ?? '')) throw ioFailure(err);
      bytesRead = 0;
    }
    if (bytesRead > 0) {
      if (bytesRead < length) drained.add(port);
      return { buffer, bytesRead };
    }
    await wait(port, 'readable');
  }
}

async function write(port: UnixPort, buffer: Buffer): Promise<void> {
  let offset = 0;
  while (offset < buffer.length) {
    if (port.fd === null) throw new Error('Port is not open');
    try {
      offset += writeSync(port.fd, buffer, offset, buffer.length - offset);
      continue;
    } catch (error) {
      const err = error as NodeJS.ErrnoException;
      if (!WOULD_BLOCK.has(err.code ?? '')) throw ioFailure(err);
    }
    await wait(port, 'writable');
  }
}

function isUnixPort(port: unknown): port is UnixPort {
  const p = port as Partial<UnixPort>;
  return typeof p.fd === 'number' && typeof p.poller?.once === 'function';
}

/** `base` with each opened port's read and write replaced by the event-loop versions above. */
export function eventLoopBinding(base: AnyBinding = SerialPort.binding): AnyBinding {
  return {
    ...base,
    list: () => base.list(),
    async open(options: Parameters<AnyBinding['open']>[0]): Promise<PortBinding> {
      const port = await (base.open as (o: typeof options) => Promise<PortBinding>)(options);
      if (!isUnixPort(port)) return port;
      const unix: UnixPort = port;
      // `drain()` waits for the binding's current write, so keep it where serialport looks for it.
      const slot = port as unknown as { writeOperation: Promise<void> | null };
      unix.read = (buffer, offset, length) => read(unix, buffer, offset, length);
      unix.write = (buffer) => {
        const operation = write(unix, buffer).finally(() => {
          if (slot.writeOperation === operation) slot.writeOperation = null;
        });
        slot.writeOperation = operation;
        return operation;
      };
      return port;
    },
  } as AnyBinding;
}
