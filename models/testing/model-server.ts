/**
 * A local HTTP file server for download tests: serves one file under any path with HTTP range requests,
 * and speaks the two Hugging Face endpoints node-llama-cpp uses for `hf:` URIs (the manifest that maps
 * `owner/repo:quant` to a file, and `/owner/repo/resolve/<branch>/<file>`). It can cut the connection
 * of the first range responses after some bytes, or stall at an offset (to interrupt a download mid-way).
 */
import { createReadStream, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ModelServerOptions {
  /** The file served. */
  file: string;
  /** File name the manifest answers for `hf:owner/repo:<quant>`. */
  manifestFile?: string;
  /** Cut the connection of this many range responses after `cutAfterBytes`. */
  cuts?: number;
  cutAfterBytes?: number;
  /** Send no byte at or past this offset of the file: the response stops there, the connection stays open. */
  stallAtOffset?: number;
}

export interface ServedRequest {
  method: string;
  url: string;
  range: string | null;
}

export interface ModelServer {
  url: string;
  requests: ServedRequest[];
  /** Bytes written to responses so far (body only). */
  bytesSent(): number;
  /** Changes the behaviour for the next requests (e.g. stop stalling). */
  set(options: Partial<ModelServerOptions>): void;
  close(): Promise<void>;
}

export async function startModelServer(initial: ModelServerOptions): Promise<ModelServer> {
  const options = { ...initial };
  const requests: ServedRequest[] = [];
  let sent = 0;
  let cutsLeft = options.cuts ?? 0;
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    requests.push({ method: req.method ?? 'GET', url, range: req.headers.range ?? null });
    const manifest = /^\/v2\/([^/]+)\/([^/]+)\/manifests\/([^/?]+)/.exec(url);
    if (manifest) {
      if (!options.manifestFile) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ggufFile: { rfilename: options.manifestFile } }));
      return;
    }
    if (url.startsWith('/missing')) {
      res.writeHead(404).end('not found');
      return;
    }
    const size = statSync(options.file).size;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    const end = range?.[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
    const headers: Record<string, string | number> = { 'accept-ranges': 'bytes', 'content-length': end - start + 1, 'content-type': 'application/octet-stream' };
    if (range) headers['content-range'] = `bytes ${start}-${end}/${size}`;
    res.writeHead(range ? 206 : 200, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    // Only range responses carry the transfer; the first plain GET is node-llama-cpp asking for the size.
    let limit = end;
    let after: 'end' | 'cut' | 'stall' = 'end';
    if (range && cutsLeft > 0 && options.cutAfterBytes !== undefined && end - start + 1 > options.cutAfterBytes) {
      cutsLeft--;
      limit = start + options.cutAfterBytes - 1;
      after = 'cut';
    } else if (range && options.stallAtOffset !== undefined && end >= options.stallAtOffset) {
      limit = options.stallAtOffset - 1;
      after = 'stall';
    }
    if (limit < start) return; // stalled before the first byte
    const stream = createReadStream(options.file, { start, end: limit });
    stream.on('data', (chunk) => {
      sent += chunk.length;
    });
    stream.on('end', () => {
      if (after === 'cut') req.socket.destroy();
      else if (after === 'end') res.end();
    });
    stream.pipe(res, { end: false });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    bytesSent: () => sent,
    set: (change) => {
      Object.assign(options, change);
      if (change.cuts !== undefined) cutsLeft = change.cuts;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
