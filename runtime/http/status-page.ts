/**
 * The status page: one self-contained HTML document (inline CSS and JS, no CDN, nothing fetched but
 * /api/events). It renders the /api/status document and updates from the live stream without reloads.
 * Known sections (broker, system, model, scheduler with a live latency/shed chart kept client-side,
 * devices with a toggle for switches) get their own layout; any other section is rendered generically
 * from its keys. Every value reaches the DOM through
 * textContent, never innerHTML: device names and log messages are untrusted.
 *
 * The chat card talks to the agent over the WebSocket at api/chat/ws (channels/ws-chat.ts); it
 * appears once the status document's channels section lists the 'ws-chat' channel.
 *
 * The CSP names the exact inline script and style by their SHA-256, so nothing else can run.
 */
import { createHash } from 'node:crypto';

// biome-ignore lint/complexity/noUselessStringRaw: raw keeps any future backslash in the CSS literal
const STYLE = String.raw`
:root {
  --bg: #f6f7f9; --card: #ffffff; --fg: #1d2330; --muted: #667085; --line: #e4e7ec;
  --accent: #3b6fd8; --ok: #1f9d55; --warn: #c98a00; --bad: #d14343; --bar: #e9edf3;
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #111418; --card: #1a1e24; --fg: #e6e9ef; --muted: #98a2b3; --line: #2a3039;
    --accent: #7aa2f7; --ok: #4cc38a; --warn: #e0b341; --bad: #f07178; --bar: #2a3039;
  }
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Ubuntu, sans-serif;
}
header {
  display: flex; flex-wrap: wrap; align-items: center; gap: 8px 18px;
  padding: 14px 24px; border-bottom: 1px solid var(--line); background: var(--card);
}
header h1 { font-size: 18px; margin: 0; letter-spacing: .2px; }
header .meta { color: var(--muted); }
header .meta b { color: var(--fg); font-weight: 600; font-variant-numeric: tabular-nums; }
.badge {
  display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600;
  border: 1px solid var(--line); color: var(--muted);
}
.badge.serving { color: var(--ok); border-color: var(--ok); }
.badge.starting, .badge.stopping { color: var(--warn); border-color: var(--warn); }
.badge.stopped { color: var(--bad); border-color: var(--bad); }
.live { margin-left: auto; color: var(--muted); font-size: 12px; display: flex; align-items: center; gap: 6px; }
.dot { width: 8px; height: 8px; border-radius: 50%; background: var(--muted); }
.live.on .dot { background: var(--ok); }
.live.off .dot { background: var(--bad); }
main {
  display: grid; gap: 16px; padding: 20px 24px; max-width: 1280px; margin: 0 auto;
  grid-template-columns: repeat(auto-fit, minmax(300px, 1fr));
}
section.card {
  background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px;
  min-width: 0;
}
section.card.wide { grid-column: 1 / -1; }
.card h2 {
  font-size: 12px; text-transform: uppercase; letter-spacing: .8px; color: var(--muted);
  margin: 0 0 10px; font-weight: 600;
}
.big { display: flex; gap: 24px; flex-wrap: wrap; margin-bottom: 10px; }
.big div { display: flex; flex-direction: column; }
.big .n { font-size: 26px; font-weight: 600; font-variant-numeric: tabular-nums; }
.big .l { color: var(--muted); font-size: 12px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
dd dl { margin-top: 2px; }
.meter { margin: 8px 0; }
.meter .top { display: flex; justify-content: space-between; }
.meter .top span:last-child { font-variant-numeric: tabular-nums; }
.meter .track { height: 6px; border-radius: 3px; background: var(--bar); margin-top: 4px; overflow: hidden; }
.meter .fill { height: 100%; background: var(--accent); border-radius: 3px; transition: width .4s; }
.meter .fill.hot { background: var(--warn); }
.meter .fill.full { background: var(--bad); }
.meter .sub { color: var(--muted); font-size: 12px; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; }
.empty { color: var(--muted); font-style: italic; }
ol.warnings { list-style: none; padding: 0; margin: 0; max-height: 320px; overflow: auto; }
ol.warnings li { padding: 6px 0; border-bottom: 1px solid var(--line); display: flex; gap: 10px; }
ol.warnings time { color: var(--muted); font-variant-numeric: tabular-nums; white-space: nowrap; }
ol.warnings .lvl { font-weight: 600; text-transform: uppercase; font-size: 11px; padding-top: 2px; }
ol.warnings .lvl.warn { color: var(--warn); }
ol.warnings .lvl.error, ol.warnings .lvl.fatal { color: var(--bad); }
ol.warnings .comp { color: var(--accent); }
ol.warnings code { color: var(--muted); }
button.toggle {
  font: inherit; font-size: 12px; padding: 2px 10px; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--accent); background: transparent; color: var(--accent);
}
button.toggle:hover { background: var(--accent); color: var(--card); }
button.toggle:disabled { opacity: .5; cursor: wait; }
.err { color: var(--bad); font-size: 12px; margin-left: 8px; }
.chart { width: 100%; height: auto; max-height: 200px; display: block; margin: 4px 0 6px; }
.chart .grid { stroke: var(--line); stroke-width: 1; }
.chart text { fill: var(--muted); font-size: 12px; font-family: inherit; }
.chart path { fill: none; stroke-width: 2; stroke-linejoin: round; stroke-linecap: round; }
.chart .p50, .legend .p50 { stroke: var(--accent); background: var(--accent); }
.chart .p99, .legend .p99 { stroke: var(--warn); background: var(--warn); }
.chart .shed, .legend .shed { stroke: var(--bad); background: var(--bad); }
.chart path.shed { stroke-dasharray: 4 3; stroke-width: 1.5; }
.legend { display: flex; gap: 14px; color: var(--muted); font-size: 12px; margin-bottom: 8px; }
.legend i { display: inline-block; width: 10px; height: 3px; border-radius: 2px; margin-right: 5px; vertical-align: middle; }
.model { padding: 6px 0; border-bottom: 1px solid var(--line); }
.model:last-child { border-bottom: 0; }
.model-head { display: flex; align-items: center; gap: 8px; margin-bottom: 4px; }
.model-head .role { color: var(--muted); font-size: 12px; margin-left: auto; }
.chat-wrap { padding: 0 24px 20px; max-width: 1280px; margin: 0 auto; }
ol.chat-log { list-style: none; padding: 0; margin: 0 0 10px; max-height: 320px; overflow: auto; }
ol.chat-log li { padding: 4px 0; border-bottom: 1px solid var(--line); display: flex; gap: 10px; overflow-wrap: anywhere; }
ol.chat-log b { min-width: 64px; color: var(--muted); font-weight: 600; }
ol.chat-log .chat-reply b { color: var(--accent); }
ol.chat-log .chat-error { color: var(--bad); }
.chat-row { display: flex; gap: 8px; }
.chat-row input {
  flex: 1; font: inherit; padding: 5px 8px; border-radius: 6px; border: 1px solid var(--line);
  background: var(--bg); color: var(--fg);
}
footer { text-align: center; color: var(--muted); font-size: 12px; padding: 4px 0 20px; }
footer a { color: var(--muted); }
`;

// biome-ignore lint/complexity/noUselessStringRaw: raw keeps backslashes (regexes, '\n') in the script literal
const SCRIPT = String.raw`
'use strict';
var doc = null, receivedAt = 0, warnings = [], lastEvent = 0;
var KNOWN = ['broker', 'system', 'devices', 'scheduler', 'model', 'models', 'audit'];
// Client-side rolling window of scheduler samples (one per status event) for the latency chart.
var HISTORY = 120, schedHistory = [];
// Per device: a toggle in flight, or the error of the last one (kept across re-renders).
var togglePending = {}, toggleErrors = {};
var SVG_NS = 'http://www.w3.org/2000/svg';
var $ = function (id) { return document.getElementById(id); };

function el(tag, cls, text) {
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function isObj(v) { return v !== null && typeof v === 'object' && !Array.isArray(v); }
function label(key) { return String(key).replace(/_/g, ' '); }
function num(n, digits) {
  if (typeof n !== 'number' || !isFinite(n)) return '—';
  return n.toLocaleString(undefined, { maximumFractionDigits: digits === undefined ? 2 : digits });
}
function bytes(n) {
  if (typeof n !== 'number' || !isFinite(n)) return '—';
  var units = ['B', 'KB', 'MB', 'GB', 'TB'], i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return num(n, i === 0 ? 0 : 1) + ' ' + units[i];
}
function duration(s) {
  if (typeof s !== 'number' || !isFinite(s)) return '—';
  s = Math.max(0, Math.floor(s));
  var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), r = s % 60;
  if (d) return d + 'd ' + h + 'h ' + m + 'm';
  if (h) return h + 'h ' + m + 'm ' + r + 's';
  if (m) return m + 'm ' + r + 's';
  return r + 's';
}
// Formats a value by the unit its key names (snake_case suffixes used across clawbox).
function fmt(key, v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'number') {
    // Epoch milliseconds (updated_at and the like).
    if (/_at$/.test(key) && v > 1e12) return new Date(v).toLocaleString();
    if (/_bytes$/.test(key)) return bytes(v);
    if (/_percent$/.test(key)) return num(v, 1) + ' %';
    if (/_per_s$/.test(key)) return num(v, 1) + ' /s';
    if (/_ms$/.test(key)) return num(v, 1) + ' ms';
    if (/(^|_)s$/.test(key)) return duration(v);
    if (/_c$/.test(key)) return num(v, 1) + ' °C';
    // Ports and ids read wrong with thousands separators.
    if (/(^|_)(port|tcp|tls|pid|id)$/.test(key)) return String(v);
    return num(v);
  }
  if (typeof v === 'string' && /_at$/.test(key) && !isNaN(Date.parse(v))) return new Date(v).toLocaleString();
  if (Array.isArray(v) && v.every(function (x) { return !isObj(x) && !Array.isArray(x); })) {
    return v.length ? v.map(function (x) { return fmt(key, x); }).join(', ') : '—';
  }
  return String(v);
}
// A key/value list; nested objects nest (three levels), arrays of objects become tables.
function kv(obj, depth) {
  var dl = el('dl');
  Object.keys(obj).forEach(function (k) {
    var v = obj[k];
    dl.appendChild(el('dt', null, label(k)));
    var dd = el('dd');
    if (isObj(v) && depth < 3) dd.appendChild(kv(v, depth + 1));
    else if (Array.isArray(v) && v.length && v.every(isObj)) dd.appendChild(table(v));
    else if (isObj(v) || Array.isArray(v)) dd.textContent = JSON.stringify(v);
    else dd.textContent = fmt(k, v);
    dl.appendChild(dd);
  });
  return dl;
}
// A small object inside a table cell: "power ON · brightness 180".
function inline(obj) {
  return Object.keys(obj).map(function (k) {
    var v = obj[k];
    return label(k) + ' ' + (isObj(v) || Array.isArray(v) ? JSON.stringify(v) : fmt(k, v));
  }).join(' · ');
}
function table(rows, idKey, action) {
  var cols = [];
  if (idKey) cols.push(idKey);
  rows.forEach(function (r) { Object.keys(r).forEach(function (k) { if (cols.indexOf(k) < 0 && cols.length < 9) cols.push(k); }); });
  var t = el('table'), head = el('tr');
  cols.forEach(function (c) { head.appendChild(el('th', null, label(c))); });
  if (action) head.appendChild(el('th'));
  t.appendChild(el('thead')).appendChild(head);
  var body = t.appendChild(el('tbody'));
  rows.forEach(function (r) {
    var tr = el('tr');
    cols.forEach(function (c) {
      var v = r[c];
      tr.appendChild(el('td', null, isObj(v) ? inline(v) : Array.isArray(v) && v.some(isObj) ? JSON.stringify(v) : fmt(c, v)));
    });
    if (idKey && r[idKey] !== undefined) tr.dataset.id = String(r[idKey]);
    if (action) tr.appendChild(el('td', 'action')).appendChild(action(r));
    body.appendChild(tr);
  });
  return t;
}
function card(name, title, wide) {
  var s = el('section', 'card' + (wide ? ' wide' : ''));
  s.dataset.section = name;
  s.appendChild(el('h2', null, title));
  return s;
}
function big(items) {
  var box = el('div', 'big');
  items.forEach(function (it) {
    var d = el('div');
    var n = d.appendChild(el('span', 'n', it[1]));
    if (it[2]) n.id = it[2];
    d.appendChild(el('span', 'l', it[0]));
    box.appendChild(d);
  });
  return box;
}
function meter(title, percent, sub) {
  var m = el('div', 'meter'), top = m.appendChild(el('div', 'top'));
  top.appendChild(el('span', null, title));
  top.appendChild(el('span', null, typeof percent === 'number' ? num(percent, 1) + ' %' : '—'));
  var fill = m.appendChild(el('div', 'track')).appendChild(el('div', 'fill'));
  var p = typeof percent === 'number' && isFinite(percent) ? Math.max(0, Math.min(100, percent)) : 0;
  fill.style.width = p + '%';
  if (p >= 90) fill.classList.add('full'); else if (p >= 75) fill.classList.add('hot');
  if (sub) m.appendChild(el('div', 'sub', sub));
  return m;
}
function rest(obj, skip) {
  var out = {};
  Object.keys(obj).forEach(function (k) { if (skip.indexOf(k) < 0) out[k] = obj[k]; });
  return out;
}

function brokerCard(b) {
  var c = card('broker', 'Broker');
  if (!isObj(b)) { c.appendChild(el('p', 'empty', String(b))); return c; }
  var msgs = isObj(b.messages) ? b.messages : {}, rates = isObj(b.rates) ? b.rates : {};
  c.appendChild(big([
    ['clients', num(b.clients, 0), 'broker-clients'],
    ['in / s', num(rates.in_per_s, 1), 'broker-rate-in'],
    ['out / s', num(rates.out_per_s, 1), 'broker-rate-out'],
  ]));
  var more = rest(b, ['clients', 'rates', 'messages']);
  if (msgs.received !== undefined) more['messages received'] = msgs.received;
  if (msgs.sent !== undefined) more['messages sent'] = msgs.sent;
  Object.keys(rest(msgs, ['received', 'sent'])).forEach(function (k) { more['messages ' + k] = msgs[k]; });
  if (Object.keys(more).length) c.appendChild(kv(more, 1));
  return c;
}
function auditCard(a) {
  var c = card('audit', 'Audit log');
  if (!isObj(a)) { c.appendChild(el('p', 'empty', String(a))); return c; }
  var v = isObj(a.verification) ? a.verification : {};
  c.appendChild(big([
    ['records / min', num(a.records_last_minute, 0), 'audit-rate'],
    ['last record', typeof a.seq === 'number' ? '#' + a.seq : '—', 'audit-seq'],
  ]));
  var more = { chain: String(v.state || 'not_run').replace('_', ' ') + (v.at ? ' (' + v.at + ')' : '') };
  var problem = isObj(v.result) && isObj(v.result.problem) ? v.result.problem : null;
  if (problem) more['first bad record'] = problem.file + ':' + problem.line + ' — ' + problem.reason;
  if (a.enabled === false) more.enabled = 'off';
  var list = kv(more, 1);
  list.id = 'audit-chain';
  c.appendChild(list);
  return c;
}
function systemCard(s) {
  var c = card('system', 'System');
  if (!isObj(s)) { c.appendChild(el('p', 'empty', String(s))); return c; }
  var cpu = isObj(s.cpu) ? s.cpu : {}, mem = isObj(s.memory) ? s.memory : null, disk = isObj(s.disk) ? s.disk : null;
  var loads = Array.isArray(cpu.load_avg) ? 'load average ' + cpu.load_avg.map(function (x) { return num(x); }).join(' · ') : '';
  var cores = typeof cpu.cores === 'number' ? cpu.cores + (cpu.cores === 1 ? ' core' : ' cores') : '';
  c.appendChild(meter('CPU', cpu.load_percent, [cores, loads].filter(Boolean).join(' — ')));
  var temp = el('dl');
  temp.appendChild(el('dt', null, 'CPU temperature'));
  var t = temp.appendChild(el('dd', null, typeof cpu.temperature_c === 'number' ? num(cpu.temperature_c, 1) + ' °C' : 'not reported'));
  t.id = 'cpu-temperature';
  if (mem) c.appendChild(meter('Memory', mem.used_percent, bytes(mem.used_bytes) + ' of ' + bytes(mem.total_bytes) + ' used'));
  if (disk) c.appendChild(meter('Disk ' + (disk.mount || ''), disk.used_percent, bytes(disk.available_bytes) + ' free of ' + bytes(disk.total_bytes)));
  if (isObj(s.process)) {
    temp.appendChild(el('dt', null, 'clawbox memory'));
    temp.appendChild(el('dd', null, bytes(s.process.rss_bytes)));
  }
  c.appendChild(temp);
  return c;
}
// Devices come as an array, as {devices: [...]}, or as a map id -> device.
function deviceRows(d) {
  if (Array.isArray(d)) return { rows: d.filter(isObj) };
  if (!isObj(d)) return { rows: [] };
  if (Array.isArray(d.devices)) return { rows: d.devices.filter(isObj), extra: rest(d, ['devices']) };
  if (Array.isArray(d.items)) return { rows: d.items.filter(isObj), extra: rest(d, ['items']) };
  var keys = Object.keys(d);
  if (keys.length && keys.every(function (k) { return isObj(d[k]); })) {
    return { rows: keys.map(function (k) { var r = { id: k }; Object.keys(d[k]).forEach(function (f) { r[f] = d[k][f]; }); return r; }) };
  }
  return { rows: [], extra: d };
}
function devicesCard(d) {
  var c = card('devices', 'Devices', true);
  var body = c.appendChild(el('div'));
  body.id = 'devices';
  var got = d === undefined ? { rows: [] } : deviceRows(d);
  if (got.extra && Object.keys(got.extra).length) body.appendChild(kv(got.extra, 1));
  var hasSwitch = got.rows.some(isSwitch);
  if (got.rows.length) body.appendChild(table(got.rows, got.rows.some(function (r) { return 'id' in r; }) ? 'id' : null, hasSwitch ? toggleCell : null));
  else body.appendChild(el('p', 'empty', 'no devices yet'));
  return c;
}
function isSwitch(r) {
  return typeof r.id === 'string' && Array.isArray(r.capabilities) && r.capabilities.indexOf('switch') >= 0;
}
function toggleCell(r) {
  var box = el('span');
  if (!isSwitch(r)) return box;
  var b = box.appendChild(el('button', 'toggle', 'toggle'));
  b.type = 'button';
  b.disabled = !!togglePending[r.id];
  b.setAttribute('aria-label', 'toggle ' + r.id);
  b.addEventListener('click', function () { toggle(r.id); });
  if (toggleErrors[r.id]) box.appendChild(el('span', 'err', toggleErrors[r.id]));
  return box;
}
function redrawDevices() {
  var old = document.querySelector('section[data-section="devices"]');
  if (old && doc) old.replaceWith(devicesCard(isObj(doc.sections) ? doc.sections.devices : undefined));
}
// Same-origin POST (the server refuses cross-origin writes); the new state arrives through the live feed.
function toggle(id) {
  togglePending[id] = true;
  delete toggleErrors[id];
  redrawDevices();
  fetch('api/devices/' + encodeURIComponent(id) + '/set', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ state: 'TOGGLE' }),
  }).then(function (res) {
    return res.json().catch(function () { return null; }).then(function (body) {
      if (!res.ok || !body || body.status !== 'ok') {
        var e = body && isObj(body.error) ? body.error : {};
        throw new Error((e.code ? e.code + ': ' : '') + (e.message || 'HTTP ' + res.status));
      }
    });
  }).catch(function (error) {
    toggleErrors[id] = error && error.message ? error.message : String(error);
  }).then(function () {
    delete togglePending[id];
    redrawDevices();
  });
}

// The busiest path's latency in the scheduler's recent window, and its shed rate (0..1).
function schedSample(s) {
  var st = isObj(s.stats) ? s.stats : {}, recent = isObj(st.recent) ? st.recent : {};
  var lat = isObj(recent.latency_ms) ? recent.latency_ms : {}, best = null;
  Object.keys(lat).forEach(function (path) {
    var l = lat[path];
    if (isObj(l) && (best === null || (l.count || 0) > (lat[best].count || 0))) best = path;
  });
  var l = best ? lat[best] : {};
  return {
    path: best,
    p50: typeof l.p50 === 'number' ? l.p50 : null,
    p99: typeof l.p99 === 'number' ? l.p99 : null,
    shed: typeof recent.shed_rate === 'number' ? recent.shed_rate : null,
  };
}
function svg(tag, attrs, text) {
  var e = document.createElementNS(SVG_NS, tag);
  Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
  if (text !== undefined) e.textContent = text;
  return e;
}
function niceMax(v) {
  if (!(v > 0)) return 10;
  var p = Math.pow(10, Math.floor(Math.log10(v))), steps = [1, 2, 5, 10];
  for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v) return steps[i] * p;
  return 10 * p;
}
function chart(samples) {
  var W = 1100, H = 170, L = 52, R = 44, T = 8, B = 20;
  var box = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, 'class': 'chart', role: 'img', 'aria-label': 'scheduler latency and shed rate' });
  var max = niceMax(samples.reduce(function (m, x) { return Math.max(m, x.p99 || 0, x.p50 || 0); }, 0));
  var y = function (v, top) { return T + (H - T - B) * (1 - v / top); };
  var x = function (i) { return L + (W - L - R) * (i + HISTORY - samples.length) / (HISTORY - 1); };
  [0, 0.5, 1].forEach(function (f) {
    var yy = y(f, 1);
    box.appendChild(svg('line', { 'class': 'grid', x1: L, x2: W - R, y1: yy, y2: yy }));
    box.appendChild(svg('text', { x: L - 6, y: yy + 3, 'text-anchor': 'end' }, num(max * f, max * f < 10 && f ? 1 : 0) + ' ms'));
    box.appendChild(svg('text', { x: W - R + 6, y: yy + 3 }, Math.round(f * 100) + ' %'));
  });
  box.appendChild(svg('text', { x: L, y: H - 4 }, 'last ' + samples.length + ' updates →'));
  [['p50', max], ['p99', max], ['shed', 1]].forEach(function (line) {
    var d = '', pen = 'M';
    samples.forEach(function (s, i) {
      var v = s[line[0]];
      if (typeof v !== 'number') { pen = 'M'; return; }
      d += pen + x(i).toFixed(1) + ' ' + y(Math.min(v, line[1]), line[1]).toFixed(1) + ' ';
      pen = 'L';
    });
    if (d) box.appendChild(svg('path', { 'class': line[0], d: d }));
  });
  return box;
}
function schedulerCard(s) {
  var c = card('scheduler', 'Scheduler', true);
  if (!isObj(s)) { c.appendChild(el('p', 'empty', String(s))); return c; }
  var last = schedHistory.length ? schedHistory[schedHistory.length - 1] : schedSample(s);
  c.appendChild(big([
    ['p50' + (last.path ? ' (' + last.path + ')' : ''), last.p50 === null ? '—' : num(last.p50, 1) + ' ms', 'sched-p50'],
    ['p99', last.p99 === null ? '—' : num(last.p99, 1) + ' ms', 'sched-p99'],
    ['shed', last.shed === null ? '—' : num(last.shed * 100, 1) + ' %', 'sched-shed'],
  ]));
  var legend = c.appendChild(el('div', 'legend'));
  [['p50', 'p50 latency'], ['p99', 'p99 latency'], ['shed', 'shed rate']].forEach(function (l) {
    var item = legend.appendChild(el('span'));
    item.appendChild(el('i', l[0]));
    item.appendChild(document.createTextNode(l[1]));
  });
  c.appendChild(chart(schedHistory));
  var more = rest(s, ['stats', 'lanes']);
  if (isObj(s.stats)) {
    ['completed', 'deadline_misses', 'failed', 'cancelled'].forEach(function (k) { if (k in s.stats) more[k] = s.stats[k]; });
    if (isObj(s.stats.shed) && Object.keys(s.stats.shed).length) more.shed = s.stats.shed;
  }
  if (Object.keys(more).length) c.appendChild(kv(more, 1));
  return c;
}

var MODEL_BADGE = { ready: 'serving', loading: 'starting', verifying: 'starting', error: 'stopped' };
// The model section: the main slot at the top level, the small one under 'small'; a 'models' map works too.
function modelSlots(m) {
  if ('state' in m || 'name' in m) {
    var slots = [['main', m]];
    if (isObj(m.small)) slots.push(['small', m.small]);
    return slots;
  }
  return Object.keys(m).filter(function (k) { return isObj(m[k]); }).map(function (k) { return [k, m[k]]; });
}
function modelCard(name, m) {
  var c = card(name, name === 'models' ? 'Models' : 'Model');
  if (!isObj(m)) { c.appendChild(el('p', 'empty', String(m))); return c; }
  var slots = modelSlots(m);
  if (!slots.length) { c.appendChild(el('p', 'empty', 'no model')); return c; }
  slots.forEach(function (sl) {
    var x = sl[1], box = c.appendChild(el('div', 'model'));
    box.dataset.slot = sl[0];
    var head = box.appendChild(el('div', 'model-head'));
    head.appendChild(el('b', null, x.name || x.model || 'no model'));
    head.appendChild(el('span', 'badge ' + (MODEL_BADGE[x.state] || ''), x.state === undefined ? '—' : String(x.state)));
    if (slots.length > 1) head.appendChild(el('span', 'role', sl[0]));
    if (typeof x.progress === 'number' && x.state !== 'ready') box.appendChild(meter('loading', x.progress * 100));
    if (x.error) box.appendChild(el('p', 'err', isObj(x.error) ? x.error.message || JSON.stringify(x.error) : String(x.error)));
    var facts = {};
    ['backend', 'fallback', 'threads', 'batch_threads', 'gpu_layers', 'context_size', 'sequences', 'quantization', 'parameters', 'architecture', 'load_ms', 'rates']
      .forEach(function (k) { if (x[k] !== undefined && x[k] !== null && x[k] !== false) facts[k] = x[k]; });
    if (Object.keys(facts).length) box.appendChild(kv(facts, 1));
  });
  return c;
}
function genericCard(name, v) {
  // A list of records (plugins, say) needs the full width to stay readable.
  var wide = (Array.isArray(v) && v.some(isObj)) || (isObj(v) && Object.keys(v).some(function (k) { return Array.isArray(v[k]) && v[k].some(isObj); }));
  var c = card(name, label(name), wide);
  if (isObj(v)) c.appendChild(Object.keys(v).length ? kv(v, 1) : el('p', 'empty', 'nothing to report'));
  else if (Array.isArray(v) && v.every(isObj)) c.appendChild(v.length ? table(v) : el('p', 'empty', 'none'));
  else c.appendChild(el('p', null, fmt(name, v)));
  return c;
}
function warningsCard() {
  var c = card('warnings', 'Recent warnings', true);
  var list = el('ol', 'warnings');
  list.id = 'warnings';
  if (!warnings.length) {
    var none = el('li', 'empty', 'no warnings');
    list.appendChild(none);
  }
  warnings.slice().reverse().forEach(function (w) {
    var li = el('li');
    li.appendChild(el('time', null, new Date(w.time).toLocaleTimeString()));
    li.appendChild(el('span', 'lvl ' + w.level, w.level));
    var text = li.appendChild(el('span'));
    if (w.component) text.appendChild(el('span', 'comp', w.component + ' '));
    text.appendChild(document.createTextNode(w.msg || ''));
    if (w.code) { text.appendChild(document.createTextNode(' ')); text.appendChild(el('code', null, w.code)); }
    list.appendChild(li);
  });
  c.appendChild(list);
  return c;
}

function render() {
  if (!doc) return;
  $('version').textContent = doc.version;
  $('mode').textContent = doc.mode;
  var st = $('state');
  st.textContent = doc.state;
  st.className = 'badge ' + doc.state;
  tick();
  var sections = isObj(doc.sections) ? doc.sections : {};
  var cards = [];
  if ('broker' in sections) cards.push(brokerCard(sections.broker));
  if ('system' in sections) cards.push(systemCard(sections.system));
  ['model', 'models'].forEach(function (k) { if (k in sections) cards.push(modelCard(k, sections[k])); });
  Object.keys(sections).forEach(function (k) { if (KNOWN.indexOf(k) < 0) cards.push(genericCard(k, sections[k])); });
  if ('scheduler' in sections) cards.push(schedulerCard(sections.scheduler));
  if ('audit' in sections) cards.push(auditCard(sections.audit));
  cards.push(devicesCard(sections.devices));
  cards.push(warningsCard());
  $('cards').replaceChildren.apply($('cards'), cards);
}
function tick() {
  if (!doc) return;
  var ahead = doc.state === 'serving' && Date.now() - lastEvent < 5000 ? (Date.now() - receivedAt) / 1000 : 0;
  $('uptime').textContent = duration(doc.uptime_s + ahead);
  var live = $('live'), fresh = Date.now() - lastEvent < 5000;
  live.className = 'live ' + (fresh ? 'on' : 'off');
  $('live-text').textContent = fresh ? 'live' : 'reconnecting…';
}

function connect() {
  var es = new EventSource('api/events');
  es.addEventListener('status', function (e) {
    doc = JSON.parse(e.data);
    receivedAt = lastEvent = Date.now();
    warnings = Array.isArray(doc.warnings) ? doc.warnings.slice(-50) : [];
    if (isObj(doc.sections) && isObj(doc.sections.scheduler)) {
      schedHistory.push(schedSample(doc.sections.scheduler));
      if (schedHistory.length > HISTORY) schedHistory.shift();
    }
    render();
    chatMaybeStart();
  });
  es.addEventListener('warning', function (e) {
    lastEvent = Date.now();
    warnings.push(JSON.parse(e.data));
    if (warnings.length > 50) warnings.shift();
    var old = document.querySelector('section[data-section="warnings"]');
    if (old) old.replaceWith(warningsCard());
  });
  es.onerror = function () { tick(); };
}

// The chat: one session per tab (kept across reconnects), messages queued while the socket is down.
var chat = { ws: null, queue: [], started: false, session: 'tab-' + Math.random().toString(36).slice(2, 14) };
function chatLine(who, text, cls) {
  var log = $('chat-log'), li = el('li', 'chat-' + cls);
  li.appendChild(el('b', null, who));
  li.appendChild(el('span', 'chat-text', text));
  log.appendChild(li);
  while (log.children.length > 100) log.removeChild(log.firstChild);
  log.scrollTop = log.scrollHeight;
}
function chatConnect() {
  var url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + location.pathname.replace(/[^/]*$/, '') + 'api/chat/ws';
  var ws = new WebSocket(url);
  chat.ws = ws;
  ws.onopen = function () {
    $('chat-state').textContent = '';
    while (chat.queue.length) ws.send(chat.queue.shift());
  };
  ws.onmessage = function (e) {
    var m;
    try { m = JSON.parse(e.data); } catch (x) { return; }
    if (m && m.type === 'reply') chatLine('clawbox', m.text, 'reply');
    else if (m && m.type === 'error' && isObj(m.error)) chatLine('error', m.error.message + ' (' + m.error.code + ')', 'error');
  };
  ws.onclose = function () {
    chat.ws = null;
    $('chat-state').textContent = 'chat disconnected, reconnecting…';
    setTimeout(chatConnect, 2000);
  };
}
function chatSend() {
  var input = $('chat-input'), text = input.value.trim();
  if (!text) return;
  input.value = '';
  chatLine('you', text, 'me');
  var frame = JSON.stringify({ text: text, session: chat.session });
  if (chat.ws && chat.ws.readyState === 1) chat.ws.send(frame);
  else chat.queue.push(frame);
}
function chatMaybeStart() {
  var ch = doc && isObj(doc.sections) ? doc.sections.channels : null;
  if (chat.started || !isObj(ch) || !Array.isArray(ch.channels) || ch.channels.indexOf('ws-chat') < 0) return;
  chat.started = true;
  $('chat').hidden = false;
  chatConnect();
}
$('chat-send').addEventListener('click', chatSend);
$('chat-input').addEventListener('keydown', function (e) { if (e.key === 'Enter') chatSend(); });
setInterval(function () { tick(); chatMaybeStart(); }, 1000);
connect();
`;

const hash = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${hash(SCRIPT)}`,
  `style-src ${hash(STYLE)}`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>clawbox status</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>clawbox</h1>
  <span class="meta">version <b id="version">…</b></span>
  <span class="meta">mode <b id="mode">…</b></span>
  <span class="badge" id="state">connecting</span>
  <span class="meta">up <b id="uptime">…</b></span>
  <span class="live" id="live"><span class="dot"></span><span id="live-text">connecting…</span></span>
</header>
<main id="cards"></main>
<div class="chat-wrap"><section class="card" id="chat" hidden>
  <h2>Chat</h2>
  <ol class="chat-log" id="chat-log"></ol>
  <div class="chat-row"><input id="chat-input" type="text" maxlength="1000" placeholder="Ask the box, e.g. turn on the lamp" aria-label="Message"><button class="toggle" id="chat-send" type="button">Send</button></div>
  <span class="err" id="chat-state"></span>
</section></div>
<footer>JSON at <a href="api/status">/api/status</a> · Prometheus at <a href="metrics">/metrics</a></footer>
<script>${SCRIPT}</script>
</body>
</html>
`;
