import mqtt from 'mqtt'
import { startBroker } from './brokers.mjs'
const b = await startBroker({ version: 2, persistence: 'level' })
for (const pv of [4, 5]) {
  const c = mqtt.connect(`mqtt://127.0.0.1:${b.port}`, { protocolVersion: pv, clientId: 'smoke' + pv, reconnectPeriod: 0 })
  const connack = await new Promise((res, rej) => { c.once('connect', res); c.once('error', rej) })
  console.log(pv, JSON.stringify(connack))
  c.end()
}
await b.close()
