// Starts aedes 1.2.0 or aedes 2.0.0-beta.1 on a loopback port, memory or LevelDB persistence.
import { createServer } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { Level } from 'level'
import levelPersistence from 'aedes-persistence-level'

const require = createRequire(import.meta.url)

export async function startBroker ({ version = 2, persistence = 'level', port = 0, opts = {} } = {}) {
  const { Aedes } = await import(version === 2 ? 'aedes2' : 'aedes1')
  let db, dir, store
  if (persistence === 'level') {
    dir = mkdtempSync(path.join(tmpdir(), 'aedes-eval-'))
    db = new Level(dir)
    await db.open()
    store = levelPersistence(db)
  }
  const aedes = await Aedes.createBroker({ ...(store ? { persistence: store } : {}), ...opts })
  aedes.on('error', (e) => console.error('[broker error]', e.message))
  const server = createServer(aedes.handle)
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve))
  return {
    aedes,
    server,
    port: server.address().port,
    async close () {
      await new Promise((resolve) => aedes.close(resolve))
      await new Promise((resolve) => server.close(() => resolve()))
      if (store) await store.destroy()
      if (dir) rmSync(dir, { recursive: true, force: true })
    }
  }
}

// mqtt-packet as aedes 2 resolves it (9.x), for raw-socket clients
export const mqttPacket = createRequire(require.resolve('aedes2'))('mqtt-packet')
