// Checks, for aedes 1.2.0 and 2.0.0-beta.1, every aedes hook and internal clawbox's runtime/broker touches.
import net from 'node:net'
import { createRequire } from 'node:module'
import { startBroker } from './brokers.mjs'
import { mq, sub, pub, end, sleep } from './lib.mjs'

const require = createRequire(import.meta.url)
const out = {}
for (const v of [1, 2]) {
  const calls = {}
  const note = (name, args) => { calls[name] = args.map((a) => (a === null ? 'null' : typeof a === 'function' ? 'fn' : Buffer.isBuffer(a) ? 'Buffer' : typeof a)).join(',') }
  const opts = {
    preConnect: (...a) => { note('preConnect', a); a[2](null, true) },
    authenticate: (...a) => { note('authenticate', a); a[3](null, true) },
    authorizePublish: (...a) => { note('authorizePublish', a); a[2](null) },
    authorizeSubscribe: (...a) => { note('authorizeSubscribe', a); a[2](null, a[1]) },
    authorizeForward: (...a) => { note('authorizeForward', a); return a[1] },
    published: (...a) => { if (a[1]) note('published', a); a[2](null) },
    drainTimeout: 10000,
    connectTimeout: 10000
  }
  const b = await startBroker({ version: v, persistence: 'level', opts })
  const { aedes } = b
  // publish override as broker.ts does
  let viaOverride = 0
  const publish = aedes.publish.bind(aedes)
  aedes.publish = (packet, client, done) => { if (typeof client === 'function') { done = client; client = null } if (client) viaOverride++; publish(packet, client, done) }
  // writeToStream interception as durable-acks.ts does (mqtt-packet as resolved from aedes)
  const mp = createRequire(require.resolve(v === 2 ? 'aedes2' : 'aedes1'))('mqtt-packet')
  const realWrite = mp.writeToStream
  let pubacksSeen = 0
  mp.writeToStream = (p, s, o) => { if (p.cmd === 'puback') pubacksSeen++; return realWrite(p, s, o) }
  // handle() on our own server, to inspect the returned client
  let client
  const server = net.createServer((s) => { client = aedes.handle(s, undefined) })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const port = server.address().port
  const c = await mq(port, { protocolVersion: 4, clientId: 'hooks' })
  await sub(c, 'h/#', { qos: 1 })
  await pub(c, 'h/t', 'x', { qos: 1 })
  await sleep(200)
  // mqemitter-level subscribe as internal-client.ts does
  let internalGot = 0
  const deliver = (packet, done) => { internalGot++; done() }
  await new Promise((r) => aedes.subscribe('h/#', deliver, r))
  await pub(c, 'h/t', 'y', { qos: 0, retain: true })
  await sleep(200)
  await new Promise((r) => aedes.unsubscribe('h/#', deliver, r))
  const st = aedes.persistence
  let retained = 0
  for await (const p of st.createRetainedStream('h/#')) retained++
  const parser = client._parser
  out[v] = {
    version: aedes.version,
    hookArgs: calls,
    'publish override sees client publishes': viaOverride,
    'writeToStream wrapper saw PUBACKs': pubacksSeen,
    'handle() returns client, client.conn is the stream': !!client && !!client.conn && typeof client.conn.write === 'function',
    'client.deliver0/deliverQoS': typeof client.deliver0 + '/' + typeof client.deliverQoS,
    'client.duplicates object': typeof client.duplicates,
    'client.broker.id': typeof client.broker?.id,
    'client.subscriptions[filter].qos': client.subscriptions['h/#']?.qos,
    'client.subscriptions keys (1st)': Object.keys(client.subscriptions['h/#'] ?? {}).join(','),
    'client._parser._parseLength/_emitError': typeof parser?._parseLength + '/' + typeof parser?._emitError,
    'client.connecting/connected/clean': [client.connecting, client.connected, client.clean].join('/'),
    'aedes.clients prototype null (GHSA-52qw)': Object.getPrototypeOf(aedes.clients) === null,
    'client.subscriptions prototype null': Object.getPrototypeOf(client.subscriptions) === null,
    'aedes.connectedClients': aedes.connectedClients,
    'aedes.subscribe(filter, deliver, cb) delivered': internalGot,
    'persistence.createRetainedStream async-iterable, n': retained,
    'persistence fns': ['createRetainedStreamCombi', 'outgoingClearMessageId', 'outgoingStream', 'subscriptionsByClient', 'cleanSubscriptions', 'cleanIncoming'].map((n) => `${n}:${typeof st[n]}`).join(' '),
    'maxInflightInbound option': aedes.maxInflightInbound
  }
  mp.writeToStream = realWrite
  await end(c)
  server.close()
  await b.close()
}
for (const k of Object.keys(out[1])) console.log(`${k}\n   1.2.0: ${JSON.stringify(out[1][k])}\n   2.0.0-beta.1: ${JSON.stringify(out[2][k])}`)
process.exit(0)
