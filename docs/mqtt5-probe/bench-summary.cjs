const rows = require('fs').readFileSync(require('path').join(__dirname, '..', 'bench-results.jsonl'), 'utf8').trim().split('\n').flatMap((l) => { try { return [JSON.parse(l)] } catch { console.log('skipped failed run:', l); return [] } })
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1] }
const groups = {}
for (const r of rows) { const k = `${r.persistence} QoS${r.result.qos}`; groups[k] ??= { 1: [], 2: [] }; groups[k][r.aedes].push(r.result.rate) }
for (const [k, g] of Object.entries(groups)) console.log(`${k}: aedes 1.2.0 median ${med(g[1])} msg/s [${g[1]}] | aedes 2.0.0-beta.1 median ${med(g[2])} msg/s [${g[2]}] | change ${((med(g[2]) / med(g[1]) - 1) * 100).toFixed(0)}%`)
