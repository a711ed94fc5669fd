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
 * It installs only the file at `bundleFile` (the runtime's download folder), and it never trusts that
 * path twice: the file is opened once, without following a link and without blocking (a FIFO cannot hang
 * root), and refused unless that descriptor is a regular file with one name, owned by the runtime's user
 * and writable by no one else (openDownloadedBundle). Everything after (signature, checks, install) reads
 * that descriptor, so a runtime that swaps the path meanwhile changes nothing, and one that rewrites the
 * file in place is caught: every byte written to the slot and the ESP is hashed against the signed
 * manifest before the slot gets a boot entry.
 */
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import net from 'node:net';
import { ClawboxError, toClawboxError } from '../runtime/errors.js';
import { assertValid } from '../runtime/operations/validator.js';
import { type ApplyOptions, type ApplyResult, applyUpdate, preflight } from './apply.js';
import { type BundleFile, checkPayloads, loadTrustedKeys, openBundle } from './bundle.js';
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
  /** The runtime's user id: the bundle must be its file (on the box the owner of /var/lib/clawbox). */
  readonly bundleOwner: number;
  /** Restarts the machine (systemctl reboot on the box). */
  reboot(): Promise<void>;
  /** The installer; tests wrap the real one. */
  readonly install?: (bundle: BundleFile, layout: SystemLayout, options: ApplyOptions) => Promise<ApplyResult>;
}

/** A few runtimes asking for the status at once is plenty; more is a runaway client. */
const MAX_CONNECTIONS = 8;
const FIRST_LINE_MS = 10_000;

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

const refused = (file: string, why: string) => new ClawboxError('UPDATE_BUNDLE_INVALID', `${file} ${why}; the update helper installs only the runtime's own download`);

/**
 * Opens the runtime's download once, for everything the helper does with it. Each refusal names why; none
 * reads a byte of the file.
 */
export async function openDownloadedBundle(file: string, owner: number): Promise<BundleFile> {
  let handle: FileHandle;
  try {
    handle = await open(file, OPEN_FLAGS);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ClawboxError('NOT_FOUND', 'no bundle has been downloaded');
    if (code === 'ELOOP') throw refused(file, 'is a symbolic link');
    throw new ClawboxError('UPDATE_BUNDLE_INVALID', `cannot open ${file}: ${(error as Error).message}`);
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw refused(file, 'is not a regular file');
    // A second name is a hard link: the runtime could have linked a file it does not own.
    if (info.nlink !== 1) throw refused(file, `has ${info.nlink} names (a hard link)`);
    if (info.uid !== owner) throw refused(file, `belongs to user ${info.uid}, not to the runtime's user ${owner}`);
    if ((info.mode & 0o022) !== 0) throw refused(file, `is writable by others (mode ${(info.mode & 0o777).toString(8)})`);
    return { handle, name: file, size: info.size };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

async function withDownloadedBundle<T>(options: UpdateHelperOptions, work: (file: BundleFile) => Promise<T>): Promise<T> {
  const file = await openDownloadedBundle(options.bundleFile, options.bundleOwner);
  try {
    return await work(file);
  } finally {
    await file.handle.close();
  }
}

/** Every refusal of `clawbox update`, nothing written: the signed manifest, the box's state, the payloads' hashes. */
export async function checkBundle(file: BundleFile, layout: SystemLayout, allowDowngrade: boolean, signal: AbortSignal): Promise<BundleCheck> {
  const running = await runningSystem(layout);
  const bundle = await openBundle(file, await loadTrustedKeys(layout.keysDir));
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
        return withDownloadedBundle(options, (file) => checkBundle(file, layout, request.allow_downgrade ?? false, signal));
      case 'apply': {
        let reported = -1;
        return withDownloadedBundle(options, (file) => install(file, layout, {
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
        }));
      }
      case 'reboot':
        // Answered first: the caller learns it was accepted before the machine goes down.
        setImmediate(() => void options.reboot().catch(() => {}));
        return { rebooting: true };
    }
  }
  return server;
}
