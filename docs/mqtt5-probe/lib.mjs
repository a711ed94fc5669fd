// Shared helpers for the probes: a raw MQTT client (mqtt-packet over net, exact packets in and out),
// mqtt.js wrappers, and a result recorder.
import net from 'node:net'
import mqtt from 'mqtt'
import { mqttPacket } from './brokers.mjs'

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A raw client: every packet the broker sends is kept in `packets`; `next()` waits for one. */
export class Raw {
  constructor (port, version = 5) {
    this.version = version
    this.packets = []
    this.waiters = []
    this.consumed = new WeakSet()
    this.closed = false
    this.parser = mqttPacket.parser({ protocolVersion: version })
    this.parser.on('packet', (p) => {
      this.packets.push(p)
      for (const w of [...this.waiters]) {
        if (!this.consumed.has(p) && w.match(p)) {
          this.waiters.splice(this.waiters.indexOf(w), 1)
          this.consumed.add(p)
          w.resolve(p)
        }
      }
    })
    this.parser.on('error', (e) => { this.parseError = e.message })
    this.socket = net.connect(port, '127.0.0.1')
    this.socket.on('data', (d) => this.parser.parse(d))
    this.socket.on('error', () => {})
    this.closedPromise = new Promise((resolve) => this.socket.on('close', () => { this.closed = true; resolve() }))
    this.ready = new Promise((resolve) => this.socket.once('connect', resolve))
  }

  send (packet) {
    this.socket.write(mqttPacket.generate(packet, { protocolVersion: this.version }))
  }

  /** Next packet (already received or future) matching cmd/predicate; null on timeout or close. */
  next (match, timeoutMs = 1500, from = 0) {
    const fn = typeof match === 'string' ? (p) => p.cmd === match : match
    const seen = this.packets.slice(from).find((p) => !this.consumed.has(p) && fn(p))
    if (seen) { this.consumed.add(seen); return Promise.resolve(seen) }
    return new Promise((resolve) => {
      const w = { match: fn, resolve }
      this.waiters.push(w)
      const t = setTimeout(() => { this.waiters.splice(this.waiters.indexOf(w), 1); resolve(null) }, timeoutMs)
      this.closedPromise.then(() => setTimeout(() => { clearTimeout(t); const i = this.waiters.indexOf(w); if (i >= 0) { this.waiters.splice(i, 1); resolve(null) } }, 50))
    })
  }

  async connect (fields = {}) {
    await this.ready
    this.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: this.version, clean: true, clientId: 'raw' + Math.random().toString(16).slice(2, 8), keepalive: 60, ...fields })
    return this.next('connack')
  }

  end () { this.socket.destroy() }
}

/** mqtt.js client, resolved once connected; rejects on error. `connack` holds the CONNACK. */
export function mq (port, opts = {}) {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 3000, ...opts })
    const msgs = []
    c.msgs = msgs
    c.on('message', (topic, payload, packet) => msgs.push({ topic, payload: payload.toString(), packet }))
    c.once('connect', (connack) => { c.connack = connack; resolve(c) })
    c.once('error', (e) => { c.end(true); reject(e) })
    c.once('close', () => reject(new Error('closed before CONNACK')))
  })
}

export const sub = (c, topic, opts = {}) => new Promise((resolve, reject) => c.subscribe(topic, opts, (e, granted, packet) => e ? reject(e) : resolve({ granted, packet })))
export const pub = (c, topic, payload, opts = {}) => new Promise((resolve, reject) => c.publish(topic, payload, opts, (e, packet) => e ? reject(e) : resolve(packet)))
export const end = (c, force = false, opts) => new Promise((resolve) => c.end(force, opts, () => resolve()))

export async function waitFor (pred, ms = 2000, step = 20) {
  const until = Date.now() + ms
  while (Date.now() < until) {
    const v = pred()
    if (v) return v
    await sleep(step)
  }
  return pred()
}

/** Result table. status: works | partly | missing | broken | n/a */
export class Results {
  constructor () { this.rows = [] }
  add (feature, status, evidence, build = '') {
    this.rows.push({ feature, status, evidence, build })
    console.log(`${status.padEnd(8)} ${feature}\n         ${evidence}`)
  }

  async run (feature, fn) {
    try {
      await fn()
    } catch (e) {
      this.add(feature, 'error', `probe threw: ${e.stack?.split('\n').slice(0, 2).join(' | ')}`)
    }
  }
}

export const j = (o) => JSON.stringify(o, (k, v) => (v && v.type === 'Buffer' ? Buffer.from(v.data).toString() : v))
export function props (p) { return p ? j(p.properties ?? {}) : 'none' }
