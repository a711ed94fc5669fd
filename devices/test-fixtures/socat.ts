/**
 * Real serial links for tests and benchmarks: a socat pseudo-terminal pair (`socat pty,raw,echo=0,link=A
 * pty,raw,echo=0,link=B`), and child processes (device simulators) on the far end. Killing socat is
 * pulling the cable; starting it again on the same link names is plugging it back in.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const LINE_SIM = path.join(here, 'line-device-sim.mjs');
export const MODBUS_SIM = path.join(here, 'modbus-slave-sim.mjs');

export class SocatPair {
  #proc: ChildProcess | null = null;

  constructor(
    readonly a: string,
    readonly b: string,
  ) {}

  async start(): Promise<void> {
    if (this.#proc) return;
    const proc = spawn('socat', [`pty,raw,echo=0,link=${this.a}`, `pty,raw,echo=0,link=${this.b}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.#proc = proc;
    proc.once('exit', () => {
      if (this.#proc === proc) this.#proc = null;
    });
    const until = Date.now() + 5000;
    while (!(existsSync(this.a) && existsSync(this.b))) {
      if (Date.now() > until || proc.exitCode !== null) throw new Error('socat did not create the pty pair');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Unplug: socat exits and removes both links. */
  async stop(): Promise<void> {
    const proc = this.#proc;
    if (!proc) return;
    this.#proc = null;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
    });
  }
}

export class SimProcess {
  #proc: ChildProcess | null = null;

  constructor(
    readonly script: string,
    readonly args: string[],
  ) {}

  async start(): Promise<void> {
    const loader = this.script.endsWith('.ts') ? ['--import', 'tsx'] : [];
    const proc = spawn(process.execPath, [...loader, this.script, ...this.args], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.#proc = proc;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${path.basename(this.script)} did not start`)), 10_000);
      proc.stdout!.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${path.basename(this.script)} exited with ${code}`));
      });
    });
    proc.removeAllListeners('exit');
  }

  /** Sends a control line on the simulator's stdin (e.g. "press"). */
  control(line: string): void {
    this.#proc?.stdin?.write(`${line}\n`);
  }

  /** Sends a control line and resolves with the next line the simulator prints. */
  ask(line: string): Promise<string> {
    const proc = this.#proc;
    if (!proc?.stdout) return Promise.reject(new Error('simulator not running'));
    return new Promise((resolve) => {
      let buffer = '';
      const onData = (chunk: Buffer) => {
        buffer += chunk.toString();
        const end = buffer.indexOf('\n');
        if (end >= 0) {
          proc.stdout!.off('data', onData);
          resolve(buffer.slice(0, end));
        }
      };
      proc.stdout!.on('data', onData);
      this.control(line);
    });
  }

  /** SIGSTOP / SIGCONT: the device keeps its port open but stops answering. */
  pause(): void {
    this.#proc?.kill('SIGSTOP');
  }

  resume(): void {
    this.#proc?.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    const proc = this.#proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    this.#proc = null;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGCONT');
      proc.kill('SIGTERM');
    });
  }
}

/** A socat pair with a simulator on end B; the driver opens end A. */
export class SerialRig {
  readonly pair: SocatPair;
  sim: SimProcess | null = null;

  constructor(
    readonly dir: string,
    readonly name: string,
    readonly script: string,
    readonly simArgs: () => string[] = () => [],
  ) {
    this.pair = new SocatPair(path.join(dir, `${name}-a`), path.join(dir, `${name}-b`));
  }

  get devicePath(): string {
    return this.pair.a;
  }

  async plug(): Promise<void> {
    await this.pair.start();
    this.sim = new SimProcess(this.script, [this.pair.b, ...this.simArgs()]);
    await this.sim.start();
  }

  async unplug(): Promise<void> {
    await this.pair.stop();
    await this.sim?.stop();
    this.sim = null;
  }
}
