/**
 * `clawbox update FILE|URL`, `clawbox update status`, and `clawbox update health` (the boot health
 * check that clawbox-health.service runs). Installing needs root: it writes the inactive slot's partition
 * and the EFI partition. `--root DIR` runs against another root (tests, an image mounted elsewhere).
 */
import { spawnSync } from 'node:child_process';
import { rm, stat } from 'node:fs/promises';
import type { Socket } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { ConfigLoader } from '../runtime/config/load.js';
import { ClawboxError } from '../runtime/errors.js';
import { applyUpdate } from './apply.js';
import { downloadBundle } from './download.js';
import { checkHealth, healthTarget } from './health.js';
import { createUpdateHelper } from './helper.js';
import { formatStatus, recordBootVerdict, updateStatus } from './status.js';
import { type SystemLayout, systemLayout } from './system.js';

const HELP = `Usage:
  clawbox update FILE|URL [--allow-downgrade] [--reboot]
                                               install a signed bundle into the inactive slot (as root);
                                               it boots next, with 3 tries, and falls back on its own
  clawbox update status [--json]               slots, versions, which runs and which boots next, last results
  clawbox update health [--boot] [--timeout S] check the local runtime (ready, status page, broker, a
                                               device command); --boot marks a trial boot good or bad
  clawbox update serve [--socket PATH] [--bundle FILE]
                                               the update helper for the web app (as root; systemd starts
                                               it from clawbox-updater.socket)
Options: --root DIR (another root file system instead of /), --config FILE (health).
`;

function permissionError(error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') {
    return new ClawboxError('FORBIDDEN', `installing an update needs root (${(error as Error).message})`, {}, { cause: error });
  }
  return error;
}

export async function runUpdateCommand(argv: readonly string[], configs: Pick<ConfigLoader, 'loadConfig'>): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      root: { type: 'string' },
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean' },
      boot: { type: 'boolean' },
      timeout: { type: 'string' },
      'allow-downgrade': { type: 'boolean' },
      reboot: { type: 'boolean' },
      socket: { type: 'string' },
      bundle: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [first, ...rest] = positionals;
  if (values.help || first === undefined) {
    process.stdout.write(HELP);
    return values.help ? 0 : 64;
  }
  if (rest.length > 0) throw new ClawboxError('USAGE', `update: unexpected argument "${rest[0]}"`);
  if (values.root === '') throw new ClawboxError('USAGE', '--root needs a folder');
  const layout = systemLayout(values.root ?? '/');
  const controller = new AbortController();
  const stop = () => controller.abort(new ClawboxError('DEADLINE_EXCEEDED', 'interrupted'));
  process.once('SIGINT', stop).once('SIGTERM', stop);
  try {
    if (first === 'status') {
      const status = await updateStatus(layout);
      process.stdout.write(values.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
      return 0;
    }
    if (first === 'health') return await runHealth(layout, configs, values, controller.signal);
    if (first === 'serve') return await serveHelper(layout, values, controller.signal);
    let bundle: string = first;
    let downloaded: string | undefined;
    if (/^https?:\/\//i.test(first)) {
      process.stdout.write(`downloading ${first}\n`);
      const file: string = await downloadBundle(new URL(first), path.join(layout.stateDir, 'download', 'bundle.tar'), controller.signal).catch((e) =>
        Promise.reject(permissionError(e)),
      );
      downloaded = file;
      bundle = file;
    } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(first)) {
      throw new ClawboxError('USAGE', `update: only files and http(s) URLs (got "${first.slice(0, 80)}")`);
    }
    try {
      const result = await applyUpdate(bundle, layout, {
        allowDowngrade: values['allow-downgrade'] ?? false,
        signal: controller.signal,
        progress: (message) => process.stdout.write(`${message}\n`),
      }).catch((e) => Promise.reject(permissionError(e)));
      if (!values.reboot) {
        process.stdout.write(`done: reboot to start clawbox ${result.version} from slot ${result.slot} (systemctl reboot)\n`);
        return 0;
      }
      process.stdout.write(`done: rebooting into clawbox ${result.version} (slot ${result.slot})\n`);
      const reboot = spawnSync('systemctl', ['reboot'], { stdio: 'inherit' });
      if (reboot.status !== 0) throw new ClawboxError('INTERNAL', 'installed, but systemctl reboot failed: reboot by hand');
      return 0;
    } finally {
      if (downloaded) await rm(downloaded, { force: true });
    }
  } finally {
    process.off('SIGINT', stop).off('SIGTERM', stop);
  }
}

/** The runtime's download folder on the box (clawbox.service's StateDirectory); the helper installs only from there. */
const RUNTIME_BUNDLE = '/var/lib/clawbox/update/bundle.tar';
/** A socket-activated helper leaves after this long without a connection; systemd starts it again on the next. */
const HELPER_IDLE_MS = 60_000;

/**
 * `clawbox update serve`: the update helper (helper.ts) on the socket systemd passes (LISTEN_FDS, fd 3),
 * or on --socket PATH. Exits when idle (socket activation) or on SIGTERM.
 */
async function serveHelper(layout: SystemLayout, values: { socket?: string | undefined; bundle?: string | undefined }, signal: AbortSignal): Promise<number> {
  const activated = process.env.LISTEN_FDS === '1' && process.env.LISTEN_PID === String(process.pid);
  if (!activated && !values.socket) throw new ClawboxError('USAGE', 'update serve: --socket PATH (or start it from clawbox-updater.socket)');
  const bundleFile = values.bundle ?? RUNTIME_BUNDLE;
  // The runtime's user owns its state folder, the folder above the download folder; that folder's own parent
  // (/var/lib) is root's, so the runtime cannot swap it. Without it, no uid matches (-1) and nothing installs.
  const bundleOwner = (await stat(path.dirname(path.dirname(bundleFile))).catch(() => undefined))?.uid ?? -1;
  const server = createUpdateHelper({
    layout,
    bundleFile,
    bundleOwner,
    reboot: async () => {
      const reboot = spawnSync('systemctl', ['reboot'], { stdio: 'inherit' });
      if (reboot.status !== 0) throw new ClawboxError('INTERNAL', 'systemctl reboot failed');
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (activated) server.listen({ fd: 3 }, resolve);
    else server.listen(values.socket, resolve);
  });
  process.stdout.write(`clawbox update helper: listening on ${activated ? 'the socket from systemd' : values.socket}\n`);
  let idle: NodeJS.Timeout | undefined;
  const armIdle = () => {
    if (!activated) return;
    clearTimeout(idle);
    idle = setTimeout(() => server.getConnections((_e, count) => (count === 0 ? server.close() : armIdle())), HELPER_IDLE_MS);
  };
  const connections = new Set<Socket>();
  server.on('connection', (socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
    armIdle();
  });
  armIdle();
  // Stopped (SIGTERM): an install still running is aborted the way a caller hanging up aborts it.
  signal.addEventListener(
    'abort',
    () => {
      server.close();
      for (const socket of connections) socket.destroy();
    },
    { once: true },
  );
  await new Promise((resolve) => server.once('close', resolve));
  clearTimeout(idle);
  return 0;
}

/** Whether systemd gave up on clawbox.service; asked at most every 30 s (each ask starts systemctl). */
function gaveUp(): () => boolean {
  let askedAt = 0;
  return () => {
    if (Date.now() - askedAt < 30_000) return false;
    askedAt = Date.now();
    return spawnSync('systemctl', ['is-failed', '--quiet', 'clawbox.service']).status === 0;
  };
}

async function runHealth(
  layout: SystemLayout,
  configs: Pick<ConfigLoader, 'loadConfig'>,
  values: { config?: string | undefined; timeout?: string | undefined; boot?: boolean | undefined },
  signal: AbortSignal,
): Promise<number> {
  const seconds = Number(values.timeout ?? 600);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) throw new ClawboxError('USAGE', '--timeout takes seconds (1-3600)');
  const { config } = configs.loadConfig({ ...(values.config ? { file: values.config } : {}), mode: 'appliance' });
  const steps = await checkHealth(healthTarget(config), {
    timeoutMs: seconds * 1000,
    signal,
    onStep: (step) => process.stdout.write(`clawbox-health: ${step.ok ? 'ok' : 'FAILED'}: ${step.name}: ${step.detail}\n`),
    // On the box, a clawbox.service that systemd gave up on will not answer however long we wait.
    ...(values.boot ? { hopeless: gaveUp() } : {}),
  });
  const failed = steps.find((s) => !s.ok);
  if (!values.boot) return failed ? 1 : 0;
  const verdict = await recordBootVerdict(layout, !failed, failed ? `${failed.name}: ${failed.detail}` : '');
  process.stdout.write(`clawbox-health: ${verdict}\n`);
  if (!(failed && verdict.includes('marked bad'))) return 0;
  // A trial boot that failed: restart now, so systemd-boot starts the other slot.
  process.stdout.write('clawbox-health: rebooting into the other slot\n');
  spawnSync('systemctl', ['reboot'], { stdio: 'inherit' });
  return 1;
}
