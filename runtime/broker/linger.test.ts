/**
 * lingerOnClose on real loopback sockets: what the peer still sends is drained, the peer reads the last
 * thing written (the DISCONNECT) and gets a FIN; a peer that never closes is cut off after the linger time.
 * (The reset itself, which H6's Paho run met once under load, did not reproduce between two Node sockets on
 * loopback here, so no test shows it.)
 */
import net from 'node:net';
import t from 'tap';
import { lingerOnClose } from './linger.js';

/** A connected pair; the server side reads nothing on its own. */
async function pair(t: { teardown(fn: () => void): void }, clientOptions: net.NetConnectOpts = { port: 0 }): Promise<{ server: net.Socket; client: net.Socket }> {
  const listener = net.createServer({ pauseOnConnect: true });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  t.teardown(() => listener.close());
  const accepted = new Promise<net.Socket>((resolve) => listener.once('connection', resolve));
  const client = net.connect({ ...clientOptions, port: (listener.address() as net.AddressInfo).port, host: '127.0.0.1' });
  await new Promise<void>((resolve) => client.once('connect', resolve));
  const server = await accepted;
  t.teardown(() => {
    client.destroy();
    server.destroy();
  });
  return { server, client };
}

/** How the client's side ended: 'end' (a FIN, with everything written before it read) or the error code. */
function outcome(client: net.Socket): Promise<{ how: string; got: string }> {
  let got = '';
  client.on('data', (chunk: Buffer) => {
    got += chunk.toString();
  });
  return new Promise((resolve) => {
    client.once('end', () => resolve({ how: 'end', got }));
    client.once('error', (error: NodeJS.ErrnoException) => resolve({ how: error.code ?? error.message, got }));
  });
}

/** The client sends far more than the server reads; the server writes its last words and closes. */
async function closeWithUnreadData(server: net.Socket, client: net.Socket): Promise<{ how: string; got: string }> {
  const ended = outcome(client);
  client.write(Buffer.alloc(4 << 20, 1)); // more than any socket buffer: most of it stays unread
  await new Promise((resolve) => setTimeout(resolve, 200)); // let it reach the server's receive buffer
  lingerOnClose(server, 5000);
  server.write('DISCONNECT');
  server.destroy();
  return ended;
}

t.test('with it: the unread data is drained, the peer reads the last words and gets a FIN', async (t) => {
  const { server, client } = await pair(t);
  const { how, got } = await closeWithUnreadData(server, client);
  t.equal(how, 'end');
  t.equal(got, 'DISCONNECT');
});

t.test('a peer that never closes its side is cut off after the linger time; an error destroys at once', async (t) => {
  const { server, client } = await pair(t, { port: 0, allowHalfOpen: true });
  client.on('data', () => {});
  lingerOnClose(server, 300);
  const closed = new Promise<void>((resolve) => server.once('close', () => resolve()));
  server.destroy();
  t.notOk(server.destroyed, 'not destroyed at once');
  await closed;
  t.pass('destroyed after the linger time');

  const second = await pair(t);
  lingerOnClose(second.server, 60_000);
  second.client.on('error', () => {});
  second.server.on('error', () => {});
  second.server.destroy(new Error('broken'));
  t.ok(second.server.destroyed, 'with an error: at once');
});
