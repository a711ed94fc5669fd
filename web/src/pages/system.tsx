/**
 * The box: version, uptime, broker, CPU/memory/disk, the agent's scheduler with plain-language labels,
 * recent warnings, and any other section the runtime reports (cluster, brain link, …) as key/value pairs.
 */
import type { ComponentChildren } from 'preact';
import { bytes, clock, duration, isRecord, ms, num, percent, perSecond, str, tokensPerSecond } from '../format.js';
import { section, sectionError, useLive } from '../live.js';

const KNOWN = new Set(['devices', 'broker', 'system', 'scheduler', 'model', 'plugins', 'channels', 'audit']);

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
