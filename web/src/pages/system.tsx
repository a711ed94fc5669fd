/**
 * The box: version, uptime, broker, CPU/memory/disk, the agent's scheduler with plain-language labels,
 * the brain link, the cluster, people's data, recent warnings, and any other section the runtime reports
 * as key/value pairs.
 */
import type { ComponentChildren } from 'preact';
import { bytes, clock, duration, isRecord, ms, num, percent, perSecond, str, tokensPerSecond } from '../format.js';
import { section, sectionError, useLive } from '../live.js';

const KNOWN = new Set(['devices', 'broker', 'system', 'scheduler', 'model', 'plugins', 'channels', 'audit', 'brain', 'cluster', 'data', 'update']);

function Fact(props: { label: string; children: ComponentChildren; id?: string; hint?: string }) {
  return (
    <div>
      <dt>
        {props.label}
        {props.hint ? <small class="muted hint"> — {props.hint}</small> : null}
      </dt>
      <dd id={props.id}>{props.children}</dd>
    </div>
  );
}

/** Sum of an object of counters (e.g. shed: {busy: 2, deadline: 1}). */
function total(value: unknown): number {
  return isRecord(value) ? Object.values(value).reduce<number>((n, v) => n + (typeof v === 'number' ? v : 0), 0) : 0;
}

function Scheduler(props: { s: Record<string, unknown> }) {
  const { s } = props;
  const stats = isRecord(s.stats) ? s.stats : {};
  const recent = isRecord(stats.recent) ? stats.recent : {};
  const window = num(recent.window) ?? 0;
  const shedRate = num(recent.shed_rate);
  const missRate = num(recent.miss_rate);
  const lanes = isRecord(s.lanes) ? s.lanes : {};
  const latency = isRecord(recent.latency_ms) ? recent.latency_ms : {};
  // Red only for a real problem: requests were seen and a noticeable share of them was refused.
  const shedClass = window > 0 && shedRate !== null && shedRate >= 0.1 ? 'bad' : window > 0 && shedRate ? 'warn' : '';
  return (
    <div class="card" data-section="scheduler">
      <h2>Agent scheduler</h2>
      <p class="small muted">
        Each agent request has a deadline ({ms(num(s.default_deadline_ms))} unless the caller names one). Before work starts the scheduler admits it, <em>degrades</em> it (answers
        with the fast path, a shorter reply or the small model) or <em>sheds</em> it (refuses at once with BUSY and a retry time) so admitted requests keep their deadline.
      </p>
      <dl class="facts">
        <Fact label="Recent requests" hint="the last ones the scheduler remembers">
          {window === 0 ? 'none yet' : String(window)}
        </Fact>
        <Fact label="Shed" hint="refused with BUSY">
          <span class={shedClass} id="scheduler-shed">
            {window === 0 || shedRate === null ? 'none (idle)' : `${percent(shedRate * 100)} of recent`}
          </span>{' '}
          <span class="muted small">· {total(stats.shed)} since start</span>
        </Fact>
        <Fact label="Degraded" hint="answered a cheaper way">
          {total(stats.degraded)} since start
        </Fact>
        <Fact label="Missed deadline">
          {window === 0 || missRate === null ? 'none (idle)' : `${percent(missRate * 100)} of recent`} <span class="muted small">· {num(stats.deadline_misses) ?? 0} since start</span>
        </Fact>
        <Fact label="Queue">
          {num(s.queued) ?? 0} waiting · {num(s.running) ?? 0} running (of {num(s.concurrency) ?? '?'})
        </Fact>
        <Fact label="Completed">{num(stats.completed) ?? 0}</Fact>
        {Object.entries(latency)
          .filter(([, v]) => isRecord(v))
          .map(([path, v]) => (
            <Fact label={`Latency, ${path}`}>
              p50 {ms(num((v as Record<string, unknown>).p50))} · p99 {ms(num((v as Record<string, unknown>).p99))}
            </Fact>
          ))}
        {Object.entries(lanes)
          .filter(([, v]) => isRecord(v))
          .map(([name, lane]) => {
            const model = isRecord((lane as Record<string, unknown>).service_model) ? ((lane as Record<string, unknown>).service_model as Record<string, unknown>) : {};
            const decode = isRecord(model.decode_ms_per_token) ? Object.values(model.decode_ms_per_token).filter((v): v is number => typeof v === 'number') : [];
            const available = (lane as Record<string, unknown>).available === true;
            return (
              <Fact label={`Model lane "${name}"`}>
                {available ? 'available' : 'no model'}
                {decode.length ? ` · generates ${tokensPerSecond(Math.min(...decode))}` : ''}
                {num(model.prefill_ms_per_token) !== null ? ` · reads ${tokensPerSecond(num(model.prefill_ms_per_token))}` : ''}
              </Fact>
            );
          })}
      </dl>
    </div>
  );
}

/** The hybrid brain link: what the edge is connected to and how (the "status page shows the link"). */
function BrainLink(props: { b: Record<string, unknown> }) {
  const link = isRecord(props.b.link) ? props.b.link : null;
  const server = isRecord(props.b.server) ? props.b.server : null;
  const cert = link && isRecord(link.certificate) ? link.certificate : server && isRecord(server.certificate) ? server.certificate : null;
  const state = str(link?.state);
  return (
    <div class="card" data-section="brain">
      <h2>Brain link</h2>
      <dl class="facts">
        <Fact label="Role">{str(props.b.role) ?? 'edge'}</Fact>
        {link ? (
          <>
            <Fact label="Brain" id="brain-target">
              {str(link.target) ?? '?'} <span class="muted small">({str(link.kind) ?? '?'})</span>
            </Fact>
            <Fact label="State">
              <span class={state === 'up' ? '' : 'warn'} id="brain-state">
                {state ?? '?'}
              </span>
            </Fact>
            <Fact label="Encryption" hint="negotiated">
              {str(link.protocol) ?? '?'} · {str(link.cipher) ?? '?'}
              {link.mutual_tls === true ? ' · mutual TLS' : ''}
              {link.fips === true ? ' · FIPS' : ''}
            </Fact>
          </>
        ) : server ? (
          <Fact label="Serving">
            {str(server.protocol) ?? '?'} · {str(server.cipher) ?? '?'} · {String(num(server.in_flight) ?? 0)} in flight
          </Fact>
        ) : (
          <Fact label="Link">{str(props.b.error) ?? 'none configured (brain.endpoint)'}</Fact>
        )}
        {cert ? <Fact label="Certificate expires">{str(cert.expires_at) ?? '?'}</Fact> : null}
      </dl>
    </div>
  );
}

/** Cluster mode: the replicas, their load, and which replica drives which device. */
function Cluster(props: { c: Record<string, unknown> }) {
  const replicas = Array.isArray(props.c.replicas) ? props.c.replicas.filter(isRecord) : [];
  const devices = isRecord(props.c.devices) ? Object.entries(props.c.devices) : [];
  const redis = isRecord(props.c.redis) ? props.c.redis : {};
  return (
    <div class="card" data-section="cluster">
      <h2>Cluster</h2>
      <p class="small muted">
        This box is replica <strong>{str(props.c.replica_id) ?? '?'}</strong>; Redis {str(redis.url) ?? '?'} is{' '}
        <span class={redis.connected === true ? '' : 'bad'}>{redis.connected === true ? 'connected' : 'unreachable'}</span>.
      </p>
      <ul class="cards" id="cluster-replicas">
        {replicas.map((r) => {
          const load = isRecord(r.load) ? r.load : {};
          return (
            <li class="card small">
              <strong>{str(r.id) ?? '?'}</strong>
              {r.self === true ? <span class="muted"> (this box)</span> : null} · agent {String(num(load.agent_running) ?? 0)} running, {String(num(load.agent_queued) ?? 0)} queued ·{' '}
              {String(num(load.mqtt_clients) ?? 0)} MQTT clients · {String(num(load.devices_owned) ?? 0)} devices
            </li>
          );
        })}
      </ul>
      {devices.length > 0 ? (
        <dl class="facts">
          {devices.slice(0, 64).map(([device, owner]) => (
            <Fact label={device}>{typeof owner === 'string' ? owner : JSON.stringify(owner)}</Fact>
          ))}
        </dl>
      ) : null}
    </div>
  );
}

/** People's data: region and retention, and what the last sweep removed. */
function Data(props: { d: Record<string, unknown> }) {
  const days = isRecord(props.d.retention_days) ? props.d.retention_days : {};
  const sweep = isRecord(props.d.last_sweep) ? props.d.last_sweep : null;
  const removed = sweep && isRecord(sweep.removed) ? Object.values(sweep.removed).reduce<number>((n, v) => n + (typeof v === 'number' ? v : 0), 0) : 0;
  return (
    <div class="card" data-section="data">
      <h2>Your data</h2>
      <dl class="facts">
        <Fact label="Data region" hint="personal data goes out only to processors in it">
          {str(props.d.region) ?? 'not set: nothing leaves the box'}
        </Fact>
        <Fact label="Kept for">
          chat {String(num(days.chat) ?? '?')} d · audit {String(num(days.audit) ?? '?')} d · logs {String(num(days.logs) ?? '?')} d
        </Fact>
        <Fact label="Last retention sweep">{sweep ? `${clock(str(sweep.at) ?? Date.now())} · ${removed} removed` : 'not yet'}</Fact>
      </dl>
    </div>
  );
}

function Generic(props: { name: string; value: unknown }) {
  const entries = isRecord(props.value) ? Object.entries(props.value) : [];
  return (
    <div class="card" data-section={props.name}>
      <h2>{props.name.replace(/_/g, ' ')}</h2>
      <dl class="facts">
        {entries.slice(0, 24).map(([k, v]) => (
          <Fact label={k.replace(/_/g, ' ')}>
            <span class="wrap-any">{typeof v === 'object' && v !== null ? JSON.stringify(v).slice(0, 200) : String(v)}</span>
          </Fact>
        ))}
      </dl>
    </div>
  );
}

export function SystemPage() {
  const live = useLive();
  const doc = live.status;
  if (!doc) return <p class="muted">Connecting…</p>;
  const broker = section(doc, 'broker');
  const system = section(doc, 'system');
  const scheduler = section(doc, 'scheduler');
  const audit = section(doc, 'audit');
  const cpu = system && isRecord(system.cpu) ? system.cpu : null;
  const memory = system && isRecord(system.memory) ? system.memory : null;
  const disk = system && isRecord(system.disk) ? system.disk : null;
  const rates = broker && isRecord(broker.rates) ? broker.rates : {};
  const verification = audit && isRecord(audit.verification) ? audit.verification : null;
  return (
    <section aria-labelledby="system-title">
      <h1 id="system-title">System</h1>
      <div class="grid">
        <div class="card">
          <h2>Box</h2>
          <dl class="facts">
            <Fact label="Version">{doc.version}</Fact>
            <Fact label="Mode">{doc.mode}</Fact>
            <Fact label="State">{doc.state}</Fact>
            <Fact label="Up for" id="uptime">
              {duration(doc.uptime_s)}
            </Fact>
          </dl>
          <p class="small">
            <a href="#/system/update" data-link="update">
              Update…
            </a>{' '}
            <span class="muted">slots, versions, install a new version</span>
          </p>
        </div>
        {broker ? (
          <div class="card">
            <h2>MQTT broker</h2>
            <dl class="facts">
              <Fact label="Clients" id="broker-clients">
                {String(num(broker.clients) ?? 0)}
              </Fact>
              <Fact label="Messages in">{perSecond(num(rates.in_per_s), 'msg/s')}</Fact>
              <Fact label="Messages out">{perSecond(num(rates.out_per_s), 'msg/s')}</Fact>
              <Fact label="Subscriptions">{String(num(broker.subscriptions) ?? 0)}</Fact>
            </dl>
          </div>
        ) : null}
        {system ? (
          <div class="card">
            <h2>Hardware</h2>
            <dl class="facts">
              <Fact label="CPU">
                {percent(num(cpu?.load_percent))} of {String(num(cpu?.cores) ?? '?')} cores
                {num(cpu?.temperature_c) !== null ? ` · ${num(cpu?.temperature_c)} °C` : ''}
              </Fact>
              <Fact label="Memory">
                {bytes(num(memory?.used_bytes))} of {bytes(num(memory?.total_bytes))} ({percent(num(memory?.used_percent))})
              </Fact>
              <Fact label="Disk">
                {bytes(num(disk?.available_bytes))} free of {bytes(num(disk?.total_bytes))}
              </Fact>
            </dl>
          </div>
        ) : null}
        {audit ? (
          <div class="card">
            <h2>Audit log</h2>
            <dl class="facts">
              <Fact label="Records last minute">{String(num(audit.records_last_minute) ?? 0)}</Fact>
              <Fact label="Chain check">{verification ? `${str(verification.state) ?? '?'}` : '—'}</Fact>
            </dl>
          </div>
        ) : null}
      </div>
      {scheduler ? <Scheduler s={scheduler} /> : null}
      <div class="grid">
        {section(doc, 'brain') ? <BrainLink b={section(doc, 'brain') as Record<string, unknown>} /> : null}
        {section(doc, 'cluster') ? <Cluster c={section(doc, 'cluster') as Record<string, unknown>} /> : null}
        {section(doc, 'data') ? <Data d={section(doc, 'data') as Record<string, unknown>} /> : null}
      </div>
      {sectionError(doc, 'scheduler') ? <p class="error">Scheduler: {sectionError(doc, 'scheduler')}</p> : null}
      {Object.entries(doc.sections)
        .filter(([name]) => !KNOWN.has(name))
        .map(([name, value]) => (
          <Generic name={name} value={value} />
        ))}
      <h2>Recent warnings</h2>
      {doc.warnings.length === 0 ? (
        <p class="muted">None.</p>
      ) : (
        <ul class="cards" id="warnings">
          {[...doc.warnings].reverse().slice(0, 20).map((w) => (
            <li class="card small">
              <span class={`badge level-${w.level}`}>{w.level}</span> <span class="muted">{clock(w.time)}</span> {w.component ? <span class="muted">{w.component}</span> : null} {w.msg}
              {w.code ? <code> {w.code}</code> : null}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
