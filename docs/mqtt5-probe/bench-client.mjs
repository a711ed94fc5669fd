// Client process: one MQTT 3.1.1 publisher -> broker -> one MQTT 3.1.1 subscriber, N messages of 64 B.
// node probe/bench-client.mjs <port> <qos> <n>  -> prints msgs/s (first publish to last delivery)
import mqtt from 'mqtt'
const [port, qos, n] = process.argv.slice(2).map(Number)
const opts = { protocolVersion: 4, reconnectPeriod: 0 }
const connect = (id) => new Promise((res, rej) => { const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { ...opts, clientId: id }); c.once('connect', () => res(c)); c.once('error', rej) })
const s = await connect('bench-sub'); const p = await connect('bench-pub')
await new Promise((res) => s.subscribe('bench/t', { qos }, res))
const payload = Buffer.alloc(64, 120)
let got = 0; let t0
const done = new Promise((res) => s.on('message', () => { if (++got === n) res() }))
t0 = performance.now()
// publish in chunks, yielding so the socket can drain (mqtt.js would otherwise buffer everything)
for (let i = 0; i < n; i++) {
  p.publish('bench/t', payload, { qos })
  if (i % 500 === 499) await new Promise((r) => setImmediate(r))
}
await Promise.race([done, new Promise((r) => setTimeout(r, 60000))])
const ms = performance.now() - t0
console.log(JSON.stringify({ qos, n, got, ms: Math.round(ms), rate: Math.round(got / ms * 1000) }))
s.end(true); p.end(true); process.exit(0)
