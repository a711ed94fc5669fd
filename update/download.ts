/**
 * Downloads a bundle over http(s) to a file: redirects followed (5 at most), a bound on the size (the
 * announced length against the free space, and the bytes actually received), progress in bytes, and an
 * AbortSignal that stops it. Shared by `clawbox update URL` and the runtime's `system.update.*` operations.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, statfs } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ClawboxError } from '../runtime/errors.js';
import { httpsModule } from '../runtime/system/tls-on-demand.js';

/** Bundles are a few hundred MiB; the bound stops a hostile server from filling the data partition. */
export const MAX_DOWNLOAD_BYTES = 4 * 1024 ** 3;

/** Bytes received so far and the announced length (0 when the server named none). */
export type DownloadProgress = (received: number, total: number) => void;

/** Only http(s) URLs of a sane length; anything else is a usage error before any connection. */
export function bundleUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ClawboxError('PAYLOAD_INVALID', `not a URL: "${text.slice(0, 80)}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ClawboxError('PAYLOAD_INVALID', `only http(s) URLs (got "${url.protocol}")`);
  }
  return url;
}

/** The URL without credentials, query or fragment (they may carry a token), for messages and logs. */
export function displayUrl(url: URL): string {
  const shown = new URL(url.href);
  const hidden = shown.search || shown.hash ? '?…' : '';
  shown.username = '';
  shown.password = '';
  shown.search = '';
  shown.hash = '';
  return `${shown.toString()}${hidden}`;
}

/**
 * GET with redirects through node:http(s). Not fetch: on a slow disk its body stream is paused under
 * backpressure, and undici's parser then failed an internal assertion when the server ended the response
 * (the process died mid-download inside the image).
 */
function get(url: URL, signal: AbortSignal, redirectsLeft = 5): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const failed = (why: string) => new ClawboxError('NOT_FOUND', `cannot download ${displayUrl(url)}: ${why}`);
    const request = (url.protocol === 'https:' ? httpsModule() : http).get(url, { signal }, (response) => {
      const status = response.statusCode ?? 0;
      const location = response.headers.location;
      if (status >= 300 && status < 400 && location) {
        response.resume();
        if (redirectsLeft === 0) reject(failed('too many redirects'));
        else resolve(get(new URL(location, url), signal, redirectsLeft - 1));
        return;
      }
      if (status !== 200) {
        response.resume();
        reject(failed(`HTTP ${status}`));
        return;
      }
      resolve(response);
    });
    request.on('error', (error) => reject(signal.aborted ? signal.reason : failed(error.message)));
  });
}

/** Downloads `url` to `file` (its folder is made); the file is left for the caller to remove. */
export async function downloadBundle(url: URL, file: string, signal: AbortSignal, onProgress?: DownloadProgress): Promise<string> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o750 });
  const response = await get(url, signal);
  const length = Number(response.headers['content-length'] ?? Number.NaN);
  const fs = await statfs(dir);
  if (Number.isFinite(length) && length > Math.min(MAX_DOWNLOAD_BYTES, fs.bavail * fs.bsize)) {
    response.destroy();
    throw new ClawboxError('NO_SPACE', `the bundle is ${length} bytes; the data partition has ${fs.bavail * fs.bsize} free`);
  }
  const total = Number.isFinite(length) ? length : 0;
  let received = 0;
  onProgress?.(0, total);
  const bounded = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      received += chunk.length;
      if (received > MAX_DOWNLOAD_BYTES) {
        callback(new ClawboxError('PAYLOAD_TOO_LARGE', 'the download is larger than any bundle can be'));
        return;
      }
      onProgress?.(received, total);
      callback(null, chunk);
    },
  });
  await pipeline(response, bounded, createWriteStream(file, { mode: 0o600 }), { signal });
  return file;
}
