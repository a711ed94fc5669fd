/**
 * Real parts for the runtime side of updates: a loopback HTTP server that serves bundle files (and can
 * hold a response mid-way, so a cancel lands during the download), and the update helper on a unix socket
 * in a temporary folder against a fake system root (fixture.ts). Only the reboot is not real: the helper
 * counts reboot requests instead of restarting the machine.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ApplyOptions, ApplyResult } from '../apply.js';
import type { BundleFile } from '../bundle.js';
import { createUpdateHelper } from '../helper.js';
import type { SystemLayout } from '../system.js';

export interface BundleServer {
  readonly base: string;
  /** Serves `file` at `/<name>`. */
  serve(name: string, file: string): void;
  /** Requests seen, by path. */
  readonly requests: string[];
  /** Responses stop after `bytes` until release() (undefined: never hold). */
  holdAfter(bytes: number | undefined): void;
  /** Resolves once a held response has sent its bytes up to the hold. */
  whenHolding(): Promise<void>;
  release(): void;
  close(): Promise<void>;
}

export async function startBundleServer(): Promise<BundleServer> {
  const files = new Map<string, Buffer>();
  const requests: string[] = [];
  let hold: number | undefined;
  let holding: (() => void) | null = null;
  let holdingNow = false;
  let waiters: Array<() => void> = [];
  const server = http.createServer((request, response) => {
    const name = new URL(request.url ?? '/', 'http://x').pathname.slice(1);
    requests.push(`/${name}`);
    const body = files.get(name);
    if (!body) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-length': body.length });
    if (hold === undefined || hold >= body.length) {
      response.end(body);
      return;
    }
    response.write(body.subarray(0, hold));
    holdingNow = true;
    for (const wake of waiters) wake();
    waiters = [];
    holding = () => {
      holdingNow = false;
      response.end(body.subarray(hold));
    };
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    serve: (name, file) => files.set(name, readFileSync(file)),
    requests,
    holdAfter: (bytes) => {
      hold = bytes;
    },
    whenHolding: () => (holdingNow ? Promise.resolve() : new Promise((resolve) => waiters.push(resolve))),
    release: () => {
      const release = holding;
      holding = null;
      release?.();
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface StartedHelper {
  readonly socketPath: string;
  /** Reboots the helper was asked for. */
  reboots(): number;
  close(): Promise<void>;
}

/**
 * The update helper on a fresh socket, installing `bundleFile` into `layout`'s fake system; the bundle must
 * belong to `bundleOwner` (this process's user unless given).
 */
export async function startHelper(
  layout: SystemLayout,
  bundleFile: string,
  install?: (bundle: BundleFile, layout: SystemLayout, options: ApplyOptions) => Promise<ApplyResult>,
  bundleOwner: number = process.getuid?.() ?? 0,
): Promise<StartedHelper> {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-updater-'));
  const socketPath = path.join(dir, 'updater.sock');
  let reboots = 0;
  const server = createUpdateHelper({
    layout,
    bundleFile,
    bundleOwner,
    reboot: async () => {
      reboots++;
    },
    ...(install ? { install } : {}),
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    socketPath,
    reboots: () => reboots,
    close: () =>
      new Promise((resolve) =>
        server.close(() => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        }),
      ),
  };
}
