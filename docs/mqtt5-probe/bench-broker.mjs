// Broker process for the throughput bench: node probe/bench-broker.mjs <1|2> <memory|level>
import { startBroker } from './brokers.mjs'
const b = await startBroker({ version: Number(process.argv[2]), persistence: process.argv[3] ?? 'memory' })
process.stdout.write(`PORT ${b.port} ${b.aedes.version}\n`)
process.on('SIGTERM', async () => { await b.close(); process.exit(0) })
