// What aedes 1.2.0 (clawbox today) answers to an MQTT 5 CONNECT.
import { startBroker } from './brokers.mjs'
import { Raw, waitFor } from './lib.mjs'
const b = await startBroker({ version: 1, persistence: 'level' })
for (const v of [5, 4]) {
  const r = new Raw(b.port, v)
  const ca = await r.connect({ clientId: 'base' + v })
  await waitFor(() => r.closed, 500)
  console.log(`aedes ${b.aedes.version} v${v} CONNECT -> ${JSON.stringify({ cmd: ca?.cmd, returnCode: ca?.returnCode, reasonCode: ca?.reasonCode, parseError: r.parseError })} closed=${r.closed}`)
  r.end()
}
await b.close(); process.exit(0)
