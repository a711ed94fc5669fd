/**
 * The runtime's side of the update helper's socket (helper.ts): one request per connection, progress
 * lines as they come, the result or the helper's coded error. Aborting the signal closes the connection,
 * which makes the helper stop.
 */
import net from 'node:net';
import { ClawboxError } from '../runtime/errors.js';
import { type HelperLine, type HelperProgress, type HelperRequest, isErrorCode, lineReader, MAX_ANSWER_LINE } from './helper-protocol.js';

/** Where systemd listens for the helper on the OS image (clawbox-updater.socket). */
export const HELPER_SOCKET = '/run/clawbox-updater.sock';

export function askHelper<T>(socketPath: string, request: HelperRequest, options: { signal: AbortSignal; onProgress?: (progress: HelperProgress) => void }): Promise<T> {
  const { signal } = options;
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    let settled = false;
    const settle = (error: unknown, value?: T) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      if (error) reject(error);
      else resolve(value as T);
    };
    const onAbort = () => settle(signal.reason);
    const socket = net.createConnection(socketPath);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      const missing = ['ENOENT', 'ECONNREFUSED', 'EACCES', 'ENOTSOCK'].includes(error.code ?? '');
      settle(
        missing
          ? new ClawboxError('UPDATE_UNAVAILABLE', `the update helper does not answer at ${socketPath} (${error.code}): updates from the web app need the clawbox OS image`)
          : new ClawboxError('UPDATE_UNAVAILABLE', `the update helper failed: ${error.message}`),
      );
    });
    socket.on('close', () => settle(new ClawboxError('UPDATE_UNAVAILABLE', 'the update helper closed the connection without an answer')));
    socket.on(
      'data',
      lineReader(
        MAX_ANSWER_LINE,
        (text) => {
          let line: HelperLine;
          try {
            line = JSON.parse(text) as HelperLine;
          } catch {
            settle(new ClawboxError('INTERNAL', 'the update helper answered something that is not JSON'));
            return;
          }
          if (line.type === 'progress') options.onProgress?.(line);
          else if (line.type === 'result') settle(null, line.data as T);
          else if (line.type === 'error') settle(new ClawboxError(isErrorCode(line.code) ? line.code : 'INTERNAL', String(line.message).slice(0, 1000)));
        },
        () => settle(new ClawboxError('INTERNAL', 'the update helper answered a line that is too long')),
      ),
    );
  });
}
