// Drives each MQTT 5 feature clawbox needs against aedes (default 2.0.0-beta.1, LevelDB persistence).
//   node probe/mqtt5-probe.mjs [--aedes 1|2] [--persistence level|memory] [--json out.json]
import { writeFileSync } from 'node:fs'
import { startBroker } from './brokers.mjs'
import { Raw, mq, sub, pub, end, sleep, waitFor, Results, j, props } from './lib.mjs'

const arg = (name, dflt) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : dflt }
const version = Number(arg('--aedes', '2'))
const persistence = arg('--persistence', 'level')
const jsonOut = arg('--json')

const authenticate = (client, username, password, cb) => {
  if (username === 'baduser') return cb(Object.assign(new Error('bad username or password'), { returnCode: 4 }), null)
  if (username === 'blocked') return cb(Object.assign(new Error('not authorized from here'), { returnCode: 5 }), null)
  cb(null, true)
}
const authorizePublish = (client, packet, cb) => {
  if (packet.topic.startsWith('denied/')) return cb(new Error('topic not allowed by the ACL'))
  if (packet.topic.startsWith('$SYS')) return cb(new Error('$SYS is reserved'))
  cb(null)
}
const authorizeSubscribe = (client, s, cb) => (s.topic.startsWith('nosub/') ? cb(null, null) : cb(null, s))

const b = await startBroker({
  version,
  persistence,
  opts: { topicAliasMaximum: 10, receiveMaximum: 3, maximumPacketSize: 8192, responseInformation: 'clawbox/resp/', authenticate, authorizePublish, authorizeSubscribe }
})
const port = b.port
const R = new Results()
console.log(`aedes ${b.aedes.version}, ${persistence} persistence, port ${port}\n`)

// ---------------------------------------------------------------- CONNECT / CONNACK
await R.run('CONNACK v5 success + capability properties', async () => {
  const r = new Raw(port, 5)
  const ca = await r.connect({ clientId: 'c-ok' })
  R.add('CONNACK v5 success + capability properties', ca?.reasonCode === 0 ? 'works' : 'broken',
    `raw v5 CONNECT -> CONNACK reasonCode=${ca?.reasonCode} properties=${props(ca)}`)
  r.end()
})

await R.run('CONNACK refusal for auth (v5 0x86/0x87, v3.1.1 rc 4/5, same listener)', async () => {
  const out = []
  for (const [v, user] of [[5, 'baduser'], [5, 'blocked'], [4, 'baduser'], [4, 'blocked']]) {
    const r = new Raw(port, v)
    const ca = await r.connect({ clientId: 'auth' + v + user, username: user, password: Buffer.from('x') })
    await r.closedPromise.then(() => {}, () => {})
    await waitFor(() => r.closed, 1000)
    out.push(`v${v === 5 ? 5 : '3.1.1'} ${user}: ${v === 5 ? 'reasonCode=0x' + ca?.reasonCode?.toString(16) : 'returnCode=' + ca?.returnCode} props=${props(ca)} closed=${r.closed}`)
  }
  const ok = out[0].includes('0x86') && out[1].includes('0x87') && out[2].includes('returnCode=4') && out[3].includes('returnCode=5')
  R.add('CONNACK refusal for auth (v5 0x86/0x87, v3.1.1 rc 4/5, same listener)', ok ? 'partly' : 'broken',
    out.join('; ') + ' — no Reason String in refusing CONNACK (the authenticate error message is not carried)',
    'clawbox: nothing for codes (authenticate returnCode 4/5 maps to 0x86/0x87); Reason String on CONNACK needs a small patch in doConnack (take err.message when client asked for problem info)')
})

// ---------------------------------------------------------------- ACK reason codes
await R.run('PUBACK/PUBREC/PUBCOMP reason codes + reason strings', async () => {
  const r = new Raw(port, 5)
  await r.connect({ clientId: 'acks' })
  r.send({ cmd: 'publish', topic: 'ok/q1', payload: 'x', qos: 1, messageId: 1 })
  const pa = await r.next('puback')
  r.send({ cmd: 'publish', topic: 'denied/q1', payload: 'x', qos: 1, messageId: 2 })
  const pd = await r.next('puback')
  r.send({ cmd: 'publish', topic: 'denied/q2', payload: 'x', qos: 2, messageId: 3 })
  const rd = await r.next('pubrec')
  r.send({ cmd: 'publish', topic: 'ok/q2', payload: 'x', qos: 2, messageId: 4 })
  const rec = await r.next('pubrec')
  r.send({ cmd: 'pubrel', messageId: 4 })
  const comp = await r.next('pubcomp')
  r.send({ cmd: 'pubrel', messageId: 999 })
  const compUnknown = await r.next('pubcomp')
  r.send({ cmd: 'publish', topic: 'denied/q0', payload: 'x', qos: 0 })
  await sleep(200)
  const stillUp = !r.closed
  R.add('PUBACK/PUBREC/PUBCOMP reason codes + reason strings', pd?.reasonCode === 0x87 ? 'partly' : 'missing',
    `PUBACK ok: rc=${pa?.reasonCode} props=${props(pa)} (0x10 "no matching subscribers" never sent); PUBACK denied: rc=0x${pd?.reasonCode?.toString(16)} props=${props(pd)}; PUBREC denied: rc=0x${rd?.reasonCode?.toString(16)} props=${props(rd)}; PUBREC ok rc=${rec?.reasonCode}; PUBCOMP ok rc=${comp?.reasonCode}; PUBREL unknown id -> PUBCOMP rc=${compUnknown ? compUnknown.reasonCode : 'none'} (spec: 0x92); denied QoS0: connection up=${stillUp}`,
    'clawbox: its authorizePublish must call back with an Error for v5 clients (today it acks+drops via policy.dropped, which would give v5 a success PUBACK); only 0x87 is produced — 0x97 quota / 0x99 payload-format / 0x95 via error.reasonCode needs an aedes patch (~0.5 d)')
  r.end()
})

await R.run('SUBACK / UNSUBACK reason codes', async () => {
  const r = new Raw(port, 5)
  await r.connect({ clientId: 'subacks' })
  r.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a/#', qos: 2 }, { topic: 'nosub/x', qos: 1 }, { topic: '$share/g/a', qos: 1 }, { topic: 'b', qos: 0 }] })
  const sa = await r.next('suback')
  r.send({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: ['a/#', 'never/subscribed'] })
  const ua = await r.next('unsuback')
  const good = sa && j(sa.granted) === '[2,135,158,0]' && ua && j(ua.granted) === '[0,17]'
  R.add('SUBACK / UNSUBACK reason codes', good ? 'works' : 'partly',
    `SUBACK granted=${j(sa?.granted)} props=${props(sa)}; UNSUBACK reasonCodes=${j(ua?.granted)} props=${props(ua)} (no Reason String on denied SUBACK)`,
    'nothing (Reason String on SUBACK would need a patch in storeSubscriptions, optional)')
  r.end()
})

// ---------------------------------------------------------------- Session expiry
await R.run('Session expiry interval', async () => {
  const pubber = await mq(port, { clientId: 'sess-pub' })
  let c = await mq(port, { clientId: 'sess', clean: true, properties: { sessionExpiryInterval: 2 } })
  await sub(c, 'sess/t', { qos: 1 })
  await end(c)
  await pub(pubber, 'sess/t', 'queued-1', { qos: 1 })
  c = await mq(port, { clientId: 'sess', clean: false, properties: { sessionExpiryInterval: 2 } })
  const got = await waitFor(() => c.msgs.find((m) => m.payload === 'queued-1'), 1500)
  const sp1 = c.connack.sessionPresent
  await end(c)
  await sleep(3000)
  c = await mq(port, { clientId: 'sess', clean: false, properties: { sessionExpiryInterval: 2 } })
  const sp2 = c.connack.sessionPresent
  await end(c)
  // expiry 0 + clean start false: session ends with the connection
  c = await mq(port, { clientId: 'sess0', clean: true, properties: { sessionExpiryInterval: 0 } })
  await sub(c, 'sess0/t', { qos: 1 })
  await end(c)
  c = await mq(port, { clientId: 'sess0', clean: false })
  const sp3 = c.connack.sessionPresent
  await end(c)
  // DISCONNECT raising session expiry from 0 is refused ([MQTT-3.14.2-2])
  await end(pubber)
  R.add('Session expiry interval', sp1 && got && !sp2 && !sp3 ? 'works' : 'broken',
    `expiry 2 s: reconnect after 0 s sessionPresent=${sp1}, queued QoS1 delivered=${!!got}; reconnect after 3 s sessionPresent=${sp2}; expiry 0: reconnect sessionPresent=${sp3}`,
    'clawbox: timers live in memory only (aedes.expiringSessions); after a clawbox restart a v5 session with a finite expiry never expires — persist the deadline (session-present registry already exists) and sweep at start (~1 d)')
})

// ---------------------------------------------------------------- Message expiry
await R.run('Message expiry interval (offline queue + retained)', async () => {
  const pubber = await mq(port, { clientId: 'mexp-pub' })
  let c = await mq(port, { clientId: 'mexp', clean: true, properties: { sessionExpiryInterval: 60 } })
  await sub(c, 'mexp/t', { qos: 1 })
  await end(c)
  await pub(pubber, 'mexp/t', 'short', { qos: 1, properties: { messageExpiryInterval: 1, userProperties: { k: 'v' }, contentType: 'text/plain' } })
  await pub(pubber, 'mexp/t', 'long', { qos: 1, properties: { messageExpiryInterval: 60, userProperties: { k: 'v' }, contentType: 'text/plain' } })
  await pub(pubber, 'mexp/r', 'retained-short', { qos: 1, retain: true, properties: { messageExpiryInterval: 1 } })
  await sleep(2200)
  c = await mq(port, { clientId: 'mexp', clean: false, properties: { sessionExpiryInterval: 60 } })
  await waitFor(() => c.msgs.length >= 2, 1200)
  const short = c.msgs.find((m) => m.payload === 'short')
  const long = c.msgs.find((m) => m.payload === 'long')
  await end(c)
  const s = await mq(port, { clientId: 'mexp-new' })
  await sub(s, 'mexp/r', { qos: 1 })
  await sleep(400)
  const ret = s.msgs.find((m) => m.payload === 'retained-short')
  await end(s)
  await end(pubber)
  const ok = !short && long && long.packet.properties?.messageExpiryInterval < 60 && !ret
  R.add('Message expiry interval (offline queue + retained)', ok ? 'works' : 'broken',
    `offline queue after 2.2 s: expired msg delivered=${!!short}${short ? ' props=' + props(short.packet) : ''}; 60 s msg delivered=${!!long} props=${long ? props(long.packet) : '-'}; expired retained delivered to new subscriber=${!!ret}`,
    persistence === 'level'
      ? 'clawbox: aedes-persistence-level 9.2.0 outgoingEnqueue() re-wraps with aedes-packet 3.0.0, which drops `properties` and `messageExpiry`: fix upstream (bump aedes-packet to 4.x in the level persistence, 1-line + test) or wrap outgoingEnqueue/outgoingEnqueueCombi in persistence.ts to store the original packet (~0.5 d)'
      : '')
})

// ---------------------------------------------------------------- Will delay
await R.run('Will delay interval', async () => {
  const s = await mq(port, { clientId: 'will-sub' })
  await sub(s, 'will/+', { qos: 1 })
  const w = await mq(port, { clientId: 'willer', properties: { sessionExpiryInterval: 10 }, will: { topic: 'will/a', payload: 'gone', qos: 1, properties: { willDelayInterval: 2, contentType: 'text/plain' } } })
  const t0 = Date.now()
  w.stream.destroy()
  const got = await waitFor(() => s.msgs.find((m) => m.topic === 'will/a'), 4000)
  const after = got ? Date.now() - t0 : null
  // reconnect within the delay cancels the will
  const w2 = await mq(port, { clientId: 'willer2', properties: { sessionExpiryInterval: 10 }, will: { topic: 'will/b', payload: 'gone', properties: { willDelayInterval: 2 } } })
  w2.stream.destroy()
  await sleep(300)
  const w2b = await mq(port, { clientId: 'willer2', clean: false, properties: { sessionExpiryInterval: 10 } })
  await sleep(2500)
  const cancelled = !s.msgs.find((m) => m.topic === 'will/b')
  await end(w2b); await end(s)
  const leak = got?.packet.properties?.willDelayInterval !== undefined
  R.add('Will delay interval', got && after > 1800 && cancelled ? (leak ? 'partly' : 'works') : 'broken',
    `will published ${after} ms after the drop (delay 2 s); delivered props=${got ? props(got.packet) : '-'}; reconnect within delay cancelled it=${cancelled}${leak ? ' — willDelayInterval leaks into the delivered PUBLISH (moscajs/aedes#1098; strict clients such as Paho reject the packet)' : ''}`,
    'clawbox: strip properties.willDelayInterval from the will in preConnect (it already vets packet.will) after copying it to the delay; delayed-will timers are in memory only: a restart publishes them via the heartbeat sweep without the delay (~0.5 d)')
})

// ---------------------------------------------------------------- Topic aliases
await R.run('Topic alias client->broker', async () => {
  const s = await mq(port, { clientId: 'alias-sub' })
  await sub(s, 'alias/#')
  const r = new Raw(port, 5)
  const ca = await r.connect({ clientId: 'alias-pub' })
  r.send({ cmd: 'publish', topic: 'alias/t', payload: 'one', qos: 0, properties: { topicAlias: 1 } })
  r.send({ cmd: 'publish', topic: '', payload: 'two', qos: 0, properties: { topicAlias: 1 } })
  await waitFor(() => s.msgs.length >= 2, 1000)
  r.send({ cmd: 'publish', topic: 'alias/t', payload: 'three', qos: 0, properties: { topicAlias: 11 } })
  const d = await r.next('disconnect')
  const got = s.msgs.map((m) => `${m.topic}:${m.payload}:${props(m.packet)}`).join(', ')
  await end(s)
  R.add('Topic alias client->broker', s.msgs.length === 2 && d?.reasonCode === 0x94 ? 'works' : 'broken',
    `CONNACK topicAliasMaximum=${ca?.properties?.topicAliasMaximum}; subscriber got [${got}]; alias 11 > max -> DISCONNECT rc=0x${d?.reasonCode?.toString(16)}`,
    'nothing (set topicAliasMaximum; default 0 = off)')
})

await R.run('Topic alias broker->client', async () => {
  const r = new Raw(port, 5)
  await r.connect({ clientId: 'alias-recv', properties: { topicAliasMaximum: 10 } })
  r.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'oa/t', qos: 0 }] })
  await r.next('suback')
  const p = await mq(port, { clientId: 'oa-pub' })
  for (let i = 0; i < 3; i++) await pub(p, 'oa/t', 'm' + i)
  await sleep(300)
  const pubs = r.packets.filter((x) => x.cmd === 'publish')
  const aliased = pubs.filter((x) => x.properties?.topicAlias !== undefined)
  await end(p); r.end()
  R.add('Topic alias broker->client', aliased.length ? 'works' : 'missing',
    `client advertised topicAliasMaximum=10; received ${pubs.length} PUBLISHes on one topic, ${aliased.length} carried a topicAlias (topics: ${pubs.map((x) => JSON.stringify(x.topic)).join(',')})`,
    'Spec MAY (optional): outbound aliasing is open upstream as moscajs/aedes#1117. clawbox could wrap write(): per-connection LRU map, shallow-clone the PUBLISH before serialize (never mutate: persistence holds it) (~1 d incl. tests); or skip — HA does not need it')
})

// ---------------------------------------------------------------- Flow control
await R.run('Receive Maximum, client->broker (0x93 on exceed)', async () => {
  const r = new Raw(port, 5)
  const ca = await r.connect({ clientId: 'rm-in' })
  // QoS 2 without PUBREL keeps each message in flight (PUBREC sent, PUBCOMP not)
  for (let i = 1; i <= 6; i++) r.send({ cmd: 'publish', topic: 'rm/in', payload: 'x', qos: 2, messageId: i })
  await sleep(600)
  const recs = r.packets.filter((x) => x.cmd === 'pubrec').length
  const d = r.packets.find((x) => x.cmd === 'disconnect')
  r.end()
  R.add('Receive Maximum, client->broker (0x93 on exceed)', d?.reasonCode === 0x93 ? 'works' : 'missing',
    `CONNACK receiveMaximum=${ca?.properties?.receiveMaximum}; sent 6 QoS2 PUBLISH without PUBREL -> ${recs} PUBRECs, DISCONNECT=${d ? '0x' + d.reasonCode.toString(16) : 'none'} (advertised only; aedes 2 beta has no inbound in-flight counter, and it dropped aedes 1.2\'s maxInflightInbound QoS 2 cap)`,
    'clawbox: count per-client inbound QoS1/2 in flight (QoS1 until PUBACK written — clawbox holds PUBACKs already in durable-acks.ts; QoS2 until PUBCOMP) in the publish wrapper/handle hook and send DISCONNECT 0x93 via client.disconnect({reasonCode:0x93}) (~1 d)')
})

await R.run('Receive Maximum, broker->client (flow control)', async () => {
  const r = new Raw(port, 5)
  await r.connect({ clientId: 'rm-out', properties: { receiveMaximum: 2 } })
  r.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'rm/out', qos: 1 }] })
  await r.next('suback')
  const p = await mq(port, { clientId: 'rm-pub' })
  for (let i = 0; i < 6; i++) await pub(p, 'rm/out', 'm' + i, { qos: 1 })
  await sleep(500)
  const n = r.packets.filter((x) => x.cmd === 'publish').length
  await end(p); r.end()
  R.add('Receive Maximum, broker->client (flow control)', n <= 2 ? 'works' : 'missing',
    `client CONNECT receiveMaximum=2, never PUBACKs; broker sent ${n} unacknowledged QoS1 PUBLISHes (limit 2) — stored as client.receiveMaximum, not enforced (moscajs/aedes#829)`,
    'clawbox: per-client outbound window in front of deliverQoS (clawbox already wraps deliver0/deliverQoS): queue QoS>0 packets beyond the window, release on PUBACK/PUBCOMP (hook handlePuback via the persistence outgoingClearMessageId wrapper it already has); queued messages must stay ordered and survive disconnect (they are already in the outgoing store) (~2-3 d incl. tests)')
})

// ---------------------------------------------------------------- Maximum packet size
await R.run('Maximum packet size', async () => {
  const r = new Raw(port, 5)
  const ca = await r.connect({ clientId: 'mps-in' })
  r.send({ cmd: 'publish', topic: 'mps/in', payload: Buffer.alloc(10000, 97), qos: 0 })
  const d = await r.next('disconnect')
  r.end()
  const r3 = new Raw(port, 4)
  await r3.connect({ clientId: 'mps-in3' })
  r3.send({ cmd: 'publish', topic: 'mps/in', payload: Buffer.alloc(10000, 97), qos: 0 })
  await waitFor(() => r3.closed, 1000)
  // outbound: client says it accepts at most 200 bytes
  const o = new Raw(port, 5)
  await o.connect({ clientId: 'mps-out', properties: { maximumPacketSize: 200 } })
  o.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'mps/out', qos: 0 }] })
  await o.next('suback')
  const p = await mq(port, { clientId: 'mps-pub' })
  await pub(p, 'mps/out', Buffer.alloc(1000, 98))
  await sleep(300)
  const big = o.packets.find((x) => x.cmd === 'publish')
  await end(p); o.end()
  R.add('Maximum packet size', d?.reasonCode === 0x95 && !big ? 'works' : 'partly',
    `CONNACK maximumPacketSize=${ca?.properties?.maximumPacketSize}; 10 kB PUBLISH from v5 -> DISCONNECT 0x${d?.reasonCode?.toString(16)}; from v3.1.1 -> connection closed=${r3.closed}; client max 200 B, broker forwarded a ${big ? big.length + 2 + '-byte' : 'no'} PUBLISH to it (must be dropped [MQTT-3.1.2-25])`,
    'clawbox: map broker.max_payload_bytes onto maximumPacketSize (frame-limit.ts then only for v3.1.1, or keep both); outbound check in the deliver wrappers: compute the encoded length (mqtt-packet generate/byteLength) and drop + ack-as-done packets larger than client.maximumPacketSize (~0.5 d)')
})

// ---------------------------------------------------------------- Property pass-through (mqtt.js)
await R.run('User properties / payload format / content type / response topic / correlation data (mqtt.js)', async () => {
  const s5 = await mq(port, { clientId: 'pp-sub5' })
  const s4 = await mq(port, { clientId: 'pp-sub4', protocolVersion: 4 })
  await sub(s5, 'pp/#', { qos: 1 }); await sub(s4, 'pp/#', { qos: 1 })
  const p = await mq(port, { clientId: 'pp-pub' })
  const properties = { payloadFormatIndicator: true, contentType: 'application/json', responseTopic: 'pp/reply/1', correlationData: Buffer.from('corr-42'), userProperties: { a: '1', b: ['x', 'y'] } }
  await pub(p, 'pp/t', '{"v":1}', { qos: 1, properties })
  await waitFor(() => s5.msgs.length && s4.msgs.length, 1000)
  const got5 = s5.msgs[0]?.packet.properties
  const got4 = s4.msgs[0]?.packet
  // request/response round trip: responder answers on responseTopic with the correlation data
  const responder = await mq(port, { clientId: 'pp-resp' })
  await sub(responder, 'pp/req')
  responder.on('message', (t, pl, pk) => { if (t === 'pp/req') responder.publish(pk.properties.responseTopic, 'answer', { properties: { correlationData: pk.properties.correlationData } }) })
  await sub(p, 'pp/reply/#')
  await pub(p, 'pp/req', 'question', { properties: { responseTopic: 'pp/reply/2', correlationData: Buffer.from('c2') } })
  const answer = await waitFor(() => p.msgs.find((m) => m.topic === 'pp/reply/2'), 1000)
  await end(s5); await end(s4); await end(p); await end(responder)
  const ok = got5 && got5.contentType === 'application/json' && got5.payloadFormatIndicator === true && got5.responseTopic === 'pp/reply/1' && got5.correlationData?.toString() === 'corr-42' && j(got5.userProperties) === j({ a: '1', b: ['x', 'y'] })
  R.add('User properties / payload format / content type / response topic / correlation data (mqtt.js)', ok && answer ? 'works' : 'broken',
    `v5 subscriber got properties=${j(got5)}; v3.1.1 subscriber on the same listener got a plain 3.1.1 PUBLISH (properties=${got4 ? j(got4.properties) : '-'}); request/response round trip correlationData=${answer?.packet.properties?.correlationData}`,
    'nothing; but payloadFormatIndicator=1 with non-UTF-8 payload is not checked (spec: MAY send 0x99) — optional')
})

// ---------------------------------------------------------------- Subscription options
await R.run('Subscription options: no local, retain as published, retain handling 0/1/2', async () => {
  const c = await mq(port, { clientId: 'so' })
  const o = await mq(port, { clientId: 'so-other' })
  await sub(c, 'nl/t', { qos: 0, nl: true })
  await pub(c, 'nl/t', 'own'); await pub(o, 'nl/t', 'other')
  await sleep(300)
  const nl = c.msgs.filter((m) => m.topic === 'nl/t').map((m) => m.payload)
  // retain as published: live retained publish keeps retain=1 only with rap
  const rapOn = await mq(port, { clientId: 'so-rap1' }); const rapOff = await mq(port, { clientId: 'so-rap0' })
  await sub(rapOn, 'rap/t', { rap: true }); await sub(rapOff, 'rap/t', { rap: false })
  await pub(o, 'rap/t', 'live-retained', { retain: true })
  await waitFor(() => rapOn.msgs.length && rapOff.msgs.length, 1000)
  const rapRes = `rap=1 retain flag=${rapOn.msgs[0]?.packet.retain}, rap=0 retain flag=${rapOff.msgs[0]?.packet.retain}`
  // retain handling
  await pub(o, 'rh/t', 'kept', { retain: true, qos: 1 })
  const count = async (client, opts) => { const before = client.msgs.length; await sub(client, 'rh/t', opts); await sleep(250); return client.msgs.length - before }
  const h = await mq(port, { clientId: 'so-rh' })
  const rh0a = await count(h, { rh: 0 }); const rh0b = await count(h, { rh: 0 })
  const h1 = await mq(port, { clientId: 'so-rh1' })
  const rh1a = await count(h1, { rh: 1 }); const rh1b = await count(h1, { rh: 1 })
  const h2 = await mq(port, { clientId: 'so-rh2' })
  const rh2 = await count(h2, { rh: 2 })
  for (const x of [c, o, rapOn, rapOff, h, h1, h2]) await end(x)
  const ok = j(nl) === '["other"]' && rapOn.msgs[0]?.packet.retain === true && rapOff.msgs[0]?.packet.retain === false && rh0a === 1 && rh0b === 1 && rh1a === 1 && rh1b === 0 && rh2 === 0
  R.add('Subscription options: no local, retain as published, retain handling 0/1/2', ok ? 'works' : 'broken',
    `no local: got ${j(nl)}; ${rapRes}; retained on subscribe: rh0 new=${rh0a} re-sub=${rh0b}, rh1 new=${rh1a} re-sub=${rh1b}, rh2=${rh2}`,
    'clawbox: keepDeliveryOrder drops an overlapping-subscription copy by (brokerId,counter) before aedes applies nl/rap/SI per subscription, so the surviving copy may carry the wrong options; rework it to pick per subscription (~0.5 d)')
})

// ---------------------------------------------------------------- Subscription identifiers
await R.run('Subscription identifiers', async () => {
  const r = new Raw(port, 5)
  await r.connect({ clientId: 'si' })
  r.send({ cmd: 'subscribe', messageId: 1, properties: { subscriptionIdentifier: 5 }, subscriptions: [{ topic: 'si/+', qos: 0 }] })
  await r.next('suback')
  r.send({ cmd: 'subscribe', messageId: 2, properties: { subscriptionIdentifier: 7 }, subscriptions: [{ topic: 'si/a', qos: 0 }] })
  await r.next('suback')
  r.send({ cmd: 'subscribe', messageId: 3, properties: { subscriptionIdentifier: 9 }, subscriptions: [{ topic: 'si/b', qos: 0 }] })
  await r.next('suback')
  const p = await mq(port, { clientId: 'si-pub' })
  await pub(p, 'si/a', 'overlap'); await pub(p, 'si/b', 'single'); await pub(p, 'si/c', 'wild')
  await sleep(400)
  const pubs = r.packets.filter((x) => x.cmd === 'publish').map((x) => `${x.topic}:SI=${j(x.properties?.subscriptionIdentifier)}`)
  await end(p); r.end()
  const single = pubs.some((x) => x.startsWith('si/c:SI=5'))
  const overlapAll = pubs.filter((x) => x.startsWith('si/a')).map((x) => x.split('SI=')[1]).join('|')
  R.add('Subscription identifiers', single ? (overlapAll.includes('5') && overlapAll.includes('7') ? 'works' : 'partly') : 'broken',
    `received ${j(pubs)} — a message matching si/+ (SI 5) and si/a (SI 7) arrives once with only one identifier (spec [MQTT-3.3.4-3/4]: all matching identifiers; moscajs/aedes#828/#1090)`,
    'clawbox: in keepDeliveryOrder (which already sees every overlapping copy) merge the SIs of the copies into one array before the write (~0.5 d); identifiers persist with the subscription in level (stored whole)')
})

// ---------------------------------------------------------------- Shared subscriptions
await R.run('Shared subscriptions $share/group/topic', async () => {
  const a = await mq(port, { clientId: 'sh-a' })
  const { granted } = await sub(a, '$share/g/sh/t', { qos: 1 }).catch((e) => ({ granted: e.message }))
  const v3 = await mq(port, { clientId: 'sh-v3', protocolVersion: 4 })
  const g3 = await sub(v3, '$share/g/sh/t', { qos: 1 })
  const p = await mq(port, { clientId: 'sh-pub' })
  await pub(p, 'sh/t', 'to-group')
  await sleep(300)
  await end(a); await end(v3); await end(p)
  R.add('Shared subscriptions $share/group/topic', 'missing',
    `CONNACK sharedSubscriptionAvailable=${a.connack.properties?.sharedSubscriptionAvailable}; v5 SUBSCRIBE $share/g/sh/t -> ${j(granted)} (0x9E not supported); v3.1.1 SUBSCRIBE -> granted ${j(g3.granted.map((x) => x.qos))} but as a literal topic: message to sh/t reached it=${v3.msgs.length > 0}`,
    'clawbox: implement in the broker layer: intercept $share/ filters in authorizeSubscribe/handle, keep group -> members map, subscribe one mqemitter listener per group on the bare filter that round-robins to a live member\'s deliver function; persistent members need the offline-queue path (subscriptionsByTopic returns per-client subs, so enqueue once per group) and sharedSubscriptionAvailable must be flipped in CONNACK (patch) (~3-4 d incl. persistence and tests)')
})

// ---------------------------------------------------------------- Assigned client id, request/response info
await R.run('Assigned client identifier + Response Information', async () => {
  const r = new Raw(port, 5)
  const ca = await r.connect({ clientId: '', properties: { requestResponseInformation: true } })
  r.end()
  R.add('Assigned client identifier + Response Information', ca?.properties?.assignedClientIdentifier && ca?.properties?.responseInformation ? 'works' : 'broken',
    `CONNECT clientId="" requestResponseInformation=1 -> CONNACK rc=${ca?.reasonCode} props=${props(ca)}`,
    'clawbox: its preConnect rejects "" without clean session only for v3.1.1 — keep it version-gated; ACL patterns with %c see the generated id')
})

// ---------------------------------------------------------------- AUTH
await R.run('AUTH / enhanced authentication refused cleanly', async () => {
  const r = new Raw(port, 5)
  const ca = await r.connect({ clientId: 'auth-m', properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: Buffer.from('x') } })
  await waitFor(() => r.closed, 800)
  const c1 = r.closed
  const r2 = new Raw(port, 5)
  await r2.connect({ clientId: 'auth-pkt' })
  r2.send({ cmd: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'SCRAM-SHA-256' } })
  const d = await r2.next('disconnect', 800)
  await waitFor(() => r2.closed, 800)
  R.add('AUTH / enhanced authentication refused cleanly', ca?.reasonCode === 0x8c && d ? 'works' : 'partly',
    `CONNECT with authenticationMethod -> CONNACK 0x${ca?.reasonCode?.toString(16)}, closed=${c1}; unsolicited AUTH after CONNECT -> DISCONNECT=${d ? '0x' + d.reasonCode.toString(16) : 'none'}, socket closed=${r2.closed} (spec: DISCONNECT 0x82 Protocol Error)`,
    'tiny patch/wrapper: send DISCONNECT 0x82 for cmd auth (handle() default branch just destroys the socket) (~1 h)')
})

// ---------------------------------------------------------------- Server DISCONNECT
await R.run('Server-side DISCONNECT with reason', async () => {
  const r = new Raw(port, 5)
  await r.connect({ clientId: 'take' })
  const r2 = new Raw(port, 5)
  await r2.connect({ clientId: 'take' })
  const d1 = await r.next('disconnect')
  const r3 = new Raw(port, 5)
  await r3.connect({ clientId: 'kick' })
  await sleep(100)
  b.aedes.clients.kick.disconnect({ reasonCode: 0x98, properties: { reasonString: 'administrative action' } })
  const d2 = await r3.next('disconnect')
  r2.end()
  R.add('Server-side DISCONNECT with reason', d1?.reasonCode === 0x8e && d2?.reasonCode === 0x98 ? 'works' : 'broken',
    `session takeover -> old connection DISCONNECT 0x${d1?.reasonCode?.toString(16)}; client.disconnect({reasonCode:0x98, reasonString}) -> DISCONNECT 0x${d2?.reasonCode?.toString(16)} props=${props(d2)}; broker.close() sends 0x8B (checked at shutdown below); keepalive timeout / protocol errors just close the socket`,
    'clawbox: use client.disconnect() for its own kicks (ACL reload, stop) instead of conn.destroy(); 0x8D keep-alive timeout not sent (small patch, optional)')
})

// ---------------------------------------------------------------- Server keep alive (separate broker: keepaliveLimit breaks v3.1.1)
await R.run('Server keep alive', async () => {
  const b2 = await startBroker({ version, persistence: 'memory', opts: { keepaliveLimit: 30 } })
  const r = new Raw(b2.port, 5)
  const ca = await r.connect({ clientId: 'ka5', keepalive: 120 })
  r.end()
  const r4 = new Raw(b2.port, 4)
  const ca4 = await r4.connect({ clientId: 'ka4', keepalive: 120 })
  const r4b = new Raw(b2.port, 4)
  const ca4b = await r4b.connect({ clientId: 'ka4b', keepalive: 0 })
  r4.end(); r4b.end()
  await b2.close()
  R.add('Server keep alive', ca?.properties?.serverKeepAlive === 30 ? 'partly' : 'missing',
    `keepaliveLimit 30: v5 keepalive 120 -> CONNACK serverKeepAlive=${ca?.properties?.serverKeepAlive}; same listener v3.1.1 keepalive 120 -> CONNACK returnCode=${ca4?.returnCode}, keepalive 0 -> returnCode=${ca4b?.returnCode} (6 is not a valid 3.1.1 code: the option refuses 3.1.1 clients instead of tolerating them)`,
    'clawbox: keep keepaliveLimit unset and impose Server Keep Alive itself in preConnect for v5 only (set client._serverKeepAlive / packet.keepalive) — or patch init() to skip the v3 reject (~2 h)')
})

// ---------------------------------------------------------------- mosquitto + paho clients
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
const run = promisify(execFile)

await R.run('mosquitto_pub/sub -V 5 with -D properties', async () => {
  const subP = run('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-V', '5', '-t', 'mosq/#', '-C', '1', '-W', '5', '-i', 'mosq-sub', '-F', 'topic=%t payload=%p qos=%q retain=%r ct=%C rt=%R cd=%D pfi=%F exp=%E up=%P si=%S', '-D', 'subscribe', 'subscription-identifier', '42'])
  await sleep(500)
  await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-V', '5', '-t', 'mosq/t', '-m', 'hello', '-q', '1', '-i', 'mosq-pub',
    '-D', 'publish', 'user-property', 'room', 'kitchen', '-D', 'publish', 'content-type', 'text/plain', '-D', 'publish', 'response-topic', 'mosq/reply',
    '-D', 'publish', 'correlation-data', 'abc', '-D', 'publish', 'payload-format-indicator', '1', '-D', 'publish', 'message-expiry-interval', '30',
    '-D', 'connect', 'session-expiry-interval', '0', '-D', 'connect', 'receive-maximum', '10'])
  const { stdout } = await subP
  // denied publish with QoS 1 -> mosquitto_pub reports the reason code
  const denied = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-V', '5', '-t', 'denied/x', '-m', 'no', '-q', '1', '-d']).then((x) => x.stdout + x.stderr, (e) => (e.stdout || '') + (e.stderr || ''))
  const bad = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-V', '5', '-t', 'x', '-m', 'no', '-u', 'baduser', '-P', 'x']).then((x) => x.stderr, (e) => e.stderr)
  const bad311 = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv311', '-t', 'x', '-m', 'no', '-u', 'baduser', '-P', 'x']).then((x) => x.stderr, (e) => e.stderr)
  const deniedLine = denied.split('\n').filter((l) => /PUBACK|rc|reason/i.test(l)).join(' / ')
  R.add('mosquitto_pub/sub -V 5 with -D properties', stdout.includes('room') && stdout.includes('si=42') ? 'works' : 'partly',
    `mosquitto_sub printed: ${stdout.trim()}; denied QoS1: ${deniedLine}; bad password v5: ${bad.trim()}; bad password v3.1.1: ${bad311.trim()}`)
})

await R.run('paho-mqtt MQTTv5 (python3-paho-mqtt 1.6.1)', async () => {
  const { stdout, stderr } = await run('/usr/bin/python3', [new URL('./paho_probe.py', import.meta.url).pathname, String(port)], { timeout: 20000 }).catch((e) => e)
  const out = (stdout || '').trim()
  R.add('paho-mqtt MQTTv5 (python3-paho-mqtt 1.6.1)', /ALL_OK/.test(out) ? 'works' : 'partly', out.replace(/\n/g, ' | ') + (stderr ? ' STDERR ' + stderr.slice(0, 300) : ''))
})

// ---------------------------------------------------------------- broker shutdown -> 0x8B
await R.run('broker.close() DISCONNECT 0x8B', async () => {
  const r = new Raw(port, 5)
  await r.connect({ clientId: 'shutdown' })
  await sleep(200)
  const connected = Object.keys(b.aedes.clients)
  await b.close()
  await waitFor(() => r.closed, 1000)
  const d = r.packets.find((x) => x.cmd === 'disconnect')
  R.add('broker.close() DISCONNECT 0x8B', d?.reasonCode === 0x8b ? 'works' : 'broken', `v5 client got DISCONNECT 0x${d?.reasonCode?.toString(16)} on broker.close(); packets seen: ${r.packets.map((x) => x.cmd).join(',')}; clients still registered at close: ${connected.length}`)
})

if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ aedes: version, persistence, rows: R.rows }, null, 2))
console.log('\nsummary:', R.rows.reduce((m, r) => ({ ...m, [r.status]: (m[r.status] ?? 0) + 1 }), {}))
process.exit(0)
