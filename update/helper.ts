/**
 * The update helper: the root side of the runtime's `system.update.*` operations. The runtime runs as an
 * unprivileged user and may not write the inactive slot, the EFI partition or /data/update; on the
 * appliance systemd starts this helper as root when the runtime connects to its socket
 * (clawbox-updater.socket, group clawbox, mode 0660) and it does exactly four things there:
 *
 *   status   updateStatus(), as `clawbox update status --json` prints it
 *   check    verify the bundle the runtime downloaded (signature, architecture, version, space, every sha256)
 *   apply    install that bundle into the inactive slot (applyUpdate, the same code as `clawbox update FILE`)
 *   reboot   systemctl reboot
 *
 * It installs only the file at `bundleFile` (the runtime's download folder) and only when it is a plain
 * file; every check of `clawbox update` runs again here as root, and the slot's content is hashed as it
 * is written, so a runtime that changes the file meanwhile gets a refusal, not a different system.
 */
import { lstat } from 'node:fs/promises';
import net from 'node:net';
import { ClawboxError, toClawboxError } from '../runtime/errors.js';
import { assertValid } from '../runtime/operations/validator.js';
import { type ApplyOptions, type ApplyResult, applyUpdate, preflight } from './apply.js';
import { checkPayloads, loadTrustedKeys, openBundle } from './bundle.js';
import { HELPER_REQUEST_SCHEMA, type HelperLine, type HelperRequest, lineReader, MAX_REQUEST_LINE } from './helper-protocol.js';
import { updateStatus } from './status.js';
import { runningSystem, type SystemLayout } from './system.js';

export interface BundleCheck {
  readonly version: string;
  readonly arch: string;
  readonly kernel_version: string;
  readonly from: string;
  readonly slot: string;
  readonly size_bytes: number;
}

export interface UpdateHelperOptions {
  readonly layout: SystemLayout;
  /** The one bundle this helper installs: where the runtime downloads to. */
  readonly bundleFile: string;
  /** Restarts the machine (systemctl reboot on the box). */
  reboot(): Promise<void>;
  /** The installer; tests wrap the real one. */
  readonly install?: (bundle: string, layout: SystemLayout, options: ApplyOptions) => Promise<ApplyResult>;
}

/** A few runtimes asking for the status at once is plenty; more is a runaway client. */
const MAX_CONNECTIONS = 8;
const FIRST_LINE_MS = 10_000;

async function bundleFileOf(file: string): Promise<string> {
  const info = await lstat(file).catch(() => undefined);
  if (!info) throw new ClawboxError('NOT_FOUND', 'no bundle has been downloaded');
  if (!info.isFile()) throw new ClawboxError('UPDATE_BUNDLE_INVALID', `${file} is not a plain file`);
  return file;
}

/** Every refusal of `clawbox update`, nothing written: the signed manifest, the box's state, the payloads' hashes. */
export async function checkBundle(file: string, layout: SystemLayout, allowDowngrade: boolean, signal: AbortSignal): Promise<BundleCheck> {
  const running = await runningSystem(layout);
  const bundle = await openBundle(await bundleFileOf(file), await loadTrustedKeys(layout.keysDir));
  const slot = await preflight(bundle, layout, running, allowDowngrade);
  await checkPayloads(bundle, signal);
  const { manifest } = bundle;
  return { version: manifest.version, arch: manifest.arch, kernel_version: manifest.kernel_version, from: running.version, slot, size_bytes: bundle.size };
}

export function createUpdateHelper(options: UpdateHelperOptions): net.Server {
  const install = options.install ?? applyUpdate;
  const server = net.createServer((socket) => {
    const abort = new AbortController();
    const send = (line: HelperLine) => {
      if (!socket.destroyed) socket.write(`${JSON.stringify(line)}\n`);
    };
    const fail = (error: unknown) => {
      const typed = toClawboxError(error);
      send({ type: 'error', code: typed.code, message: typed.message });
      socket.end();
    };
    // The caller went away: whatever it started stops (an install removes the half-written slot's entry).
    socket.on('close', () => abort.abort(new ClawboxError('DEADLINE_EXCEEDED', 'the caller closed the connection')));
    socket.on('error', () => {});
    socket.setTimeout(FIRST_LINE_MS, () => fail(new ClawboxError('PAYLOAD_INVALID', 'no request line in time')));
    let started = false;
    socket.on(
      'data',
      lineReader(
        MAX_REQUEST_LINE,
        (line) => {
          if (started) return;
          started = true;
          socket.setTimeout(0);
          run(line, abort.signal, send).then(
            (data) => {
              send({ type: 'result', data });
              socket.end();
            },
            fail,
          );
        },
        () => fail(new ClawboxError('PAYLOAD_TOO_LARGE', 'the request line is too long')),
      ),
    );
  });
  server.maxConnections = MAX_CONNECTIONS;

  async function run(line: string, signal: AbortSignal, send: (line: HelperLine) => void): Promise<unknown> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new ClawboxError('PAYLOAD_INVALID', 'the request is not JSON');
    }
    const request = assertValid<HelperRequest>(HELPER_REQUEST_SCHEMA, parsed);
    const { layout } = options;
    switch (request.op) {
      case 'status':
        return updateStatus(layout);
      case 'check':
        send({ type: 'progress', phase: 'verifying', message: 'checking the signature, the architecture, the version, the space and every payload' });
        return checkBundle(options.bundleFile, layout, request.allow_downgrade ?? false, signal);
      case 'apply': {
        let reported = -1;
        return install(await bundleFileOf(options.bundleFile), layout, {
          allowDowngrade: request.allow_downgrade ?? false,
          signal,
          // applyUpdate's messages: the bundle and payload checks first, then writing, installing, installed.
          progress: (message) => send({ type: 'progress', phase: /^(writing|installing|installed)/.test(message) ? 'writing' : 'verifying', message }),
          onWritten: (written, total) => {
            // One line per percent is smooth enough for a progress bar and bounded for any size.
            const percent = Math.floor((written / Math.max(1, total)) * 100);
            if (percent === reported) return;
            reported = percent;
            send({ type: 'progress', phase: 'writing', written_bytes: written, total_bytes: total });
          },
        });
      }
      case 'reboot':
        // Answered first: the caller learns it was accepted before the machine goes down.
        setImmediate(() => void options.reboot().catch(() => {}));
        return { rebooting: true };
    }
  }
  return server;
}
