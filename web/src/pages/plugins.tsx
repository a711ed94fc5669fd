/** Plugins and chat channels: state, failures and restarts (with a restart button), pairing approvals, and a WhatsApp pairing QR code when a channel offers one. */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api } from '../api.js';
import { ago, isRecord, num, str } from '../format.js';
import { section, sectionError, useLive } from '../live.js';

function Qr(props: { text: string; svg?: string | null; label: string }) {
  const [svg, setSvg] = useState<string | null>(props.svg ?? null);
  useEffect(() => {
    if (props.svg) return setSvg(props.svg);
    let gone = false;
    // Loaded only when a channel asks for pairing: most boxes never download it.
    void import('qrcode').then((module) => {
      // A CommonJS package: its functions sit on the default export of the bundled module.
      const qr = module.default ?? module;
      return qr.toString(props.text, { type: 'svg', margin: 1, errorCorrectionLevel: 'M' }).then((s) => {
        if (!gone) setSvg(s);
      });
    });
    return () => {
      gone = true;
    };
  }, [props.text, props.svg]);
  return svg ? <img class="qr" alt={props.label} src={`data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`} /> : <p class="muted">Making the QR code…</p>;
}

/** Restarts a plugin or a platform channel (admin only); says what happened or the coded error. */
function RestartButton(props: { kind: 'plugin' | 'channel'; name: string }) {
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  const restart = async () => {
    setBusy(true);
    setMessage(null);
    try {
      const figures = await api<Record<string, unknown>>('POST', `/api/${props.kind === 'plugin' ? 'plugins' : 'channels'}/${encodeURIComponent(props.name)}/restart`, {});
      setMessage({ text: `Restarted (${String(figures.state ?? 'starting')}, ${String(figures.restarts ?? '?')} restarts).`, error: false });
    } catch (e) {
      setMessage({ text: e instanceof ApiError ? `${e.code}: ${e.message}` : String(e), error: true });
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <div class="actions">
        <button type="button" data-action="restart" disabled={busy} aria-label={`Restart ${props.name}`} onClick={() => void restart()}>
          {busy ? 'Restarting…' : 'Restart'}
        </button>
      </div>
      {message ? (
        <p class={`small${message.error ? ' error' : ''}`} role="status" data-restart-message>
          {message.text}
        </p>
      ) : null}
    </>
  );
}

interface Pairing {
  code: string;
  channel?: string;
  sender?: unknown;
  requested_at?: number;
}

function Pairings() {
  const [pairings, setPairings] = useState<Pairing[] | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const load = () =>
    api<unknown>('GET', '/api/channels/pairings').then(
      (data) => {
        const list = Array.isArray(data) ? data : isRecord(data) && Array.isArray(data.requests) ? data.requests : isRecord(data) && Array.isArray(data.pairings) ? data.pairings : [];
        setPairings(list.filter(isRecord).map((p) => p as unknown as Pairing));
      },
      () => setPairings([]),
    );
  useEffect(() => {
    void load();
    const timer = window.setInterval(() => void load(), 5000);
    return () => window.clearInterval(timer);
  }, []);
  const approve = async (code: string) => {
    try {
      await api('POST', `/api/channels/pairings/${encodeURIComponent(code)}/approve`, {});
      setMessage(`Approved ${code}.`);
      await load();
    } catch (e) {
      setMessage(e instanceof ApiError ? `${e.code}: ${e.message}` : String(e));
    }
  };
  if (pairings === null) return <p class="muted">Loading…</p>;
  return (
    <>
      {pairings.length === 0 ? <p class="muted">Nobody is waiting for approval.</p> : null}
      <ul class="cards">
        {pairings.map((p) => (
          <li class="card">
            <div class="card-head">
              <strong>{p.code}</strong>
              <button type="button" class="primary" onClick={() => void approve(p.code)}>
                Approve
              </button>
            </div>
            <p class="small muted wrap-any">
              {p.channel ?? ''} {isRecord(p.sender) ? String(p.sender.display_name ?? p.sender.id ?? '') : String(p.sender ?? '')}
              {p.requested_at ? ` · ${ago(p.requested_at)}` : ''}
            </p>
          </li>
        ))}
      </ul>
      {message ? <p role="status">{message}</p> : null}
    </>
  );
}

export function PluginsPage() {
  const live = useLive();
  const plugins = section(live.status, 'plugins');
  const channels = section(live.status, 'channels');
  const pluginList = plugins && Array.isArray(plugins.plugins) ? plugins.plugins.filter(isRecord) : [];
  const platforms = channels && Array.isArray(channels.platforms) ? channels.platforms.filter(isRecord) : [];
  const names = channels && Array.isArray(channels.channels) ? channels.channels : [];
  // Every channel once: the gateway's names, plus platforms it reports that are not among them.
  const channelList = [...names, ...platforms.filter((p) => !names.some((n) => (isRecord(n) ? n.name : n) === p.name))];
  return (
    <section aria-labelledby="plugins-title">
      <h1 id="plugins-title">Plugins</h1>
      {sectionError(live.status, 'plugins') ? <p class="error">{sectionError(live.status, 'plugins')}</p> : null}
      <ul class="cards">
        {pluginList.map((p) => {
          const state = str(p.state) ?? '?';
          const error = isRecord(p.last_error) ? `${String(p.last_error.code ?? '')} ${String(p.last_error.message ?? '')}` : str(p.last_error);
          return (
            <li class="card" data-plugin={str(p.name) ?? ''}>
              <div class="card-head">
                <strong>{str(p.name)}</strong>
                <span class={`badge ${state === 'failed' || state === 'backoff' ? 'bad' : state === 'running' ? 'ok' : 'muted'}`}>{state === 'idle' ? 'idle (starts on first call)' : state}</span>
              </div>
              <p class="small muted">
                {Array.isArray(p.tools) ? p.tools.join(', ') : ''} · v{str(p.version) ?? '?'} · {str(p.origin) ?? ''}
              </p>
              <p class="small">
                {num(p.calls) ?? 0} calls · {num(p.failures) ?? 0} failed · {num(p.restarts) ?? 0} restarts
                {num(p.next_start_in_ms) !== null ? ` · next start in ${Math.ceil((num(p.next_start_in_ms) ?? 0) / 1000)} s` : ''}
              </p>
              {error ? <p class="error small">{error}</p> : null}
              <RestartButton kind="plugin" name={str(p.name) ?? ''} />
            </li>
          );
        })}
      </ul>
      {plugins && Array.isArray(plugins.problems) && plugins.problems.length ? (
        <div class="card error">
          <strong>Not loaded</strong>
          <ul>
            {plugins.problems.map((p) => (
              <li>{isRecord(p) ? `${String(p.plugin ?? p.dir ?? '')}: ${String(p.message ?? p.code ?? '')}` : String(p)}</li>
            ))}
          </ul>
        </div>
      ) : null}
      <h2>Chat channels</h2>
      {channels ? (
        <>
          <ul class="cards">
            {channelList.map((c) => {
              const channel = isRecord(c) ? c : { name: String(c) };
              const name = str(channel.name) ?? str(channel.id) ?? '?';
              // Platform channels (WhatsApp, Telegram, …) report their state; built-in ones just run.
              const platform = platforms.find((p) => p.name === name) ?? channel;
              const state = str(platform.state) ?? 'running';
              const qrValue = platform.qr;
              const qr = isRecord(qrValue) ? { text: str(qrValue.text), svg: str(qrValue.svg) } : { text: str(qrValue), svg: null };
              const process = isRecord(platform.process) ? platform.process : {};
              const restarts = num(platform.restarts) ?? num(process.restarts);
              return (
                <li class="card" data-channel={name}>
                  <div class="card-head">
                    <strong>{name}</strong>
                    <span class={`badge ${/fail|error|offline|logged_out/.test(state) ? 'bad' : /connect|run|online|ready/.test(state) ? 'ok' : 'muted'}`}>{state}</span>
                  </div>
                  {str(platform.plugin) ? <p class="small muted">plugin {str(platform.plugin)}</p> : null}
                  {str(platform.detail) ? <p class="small">{str(platform.detail)}</p> : null}
                  {restarts !== null ? <p class="small">{restarts} restarts</p> : null}
                  {str(platform.error) ? <p class="error small">{str(platform.error)}</p> : null}
                  {/* Only platform channels run on a plugin process; built-in ones have nothing to restart. */}
                  {str(platform.plugin) ? <RestartButton kind="channel" name={name} /> : null}
                  {qr.text ? (
                    <div class="qr-box">
                      <p>Scan with WhatsApp → Settings → Linked devices → Link a device:</p>
                      <Qr text={qr.text} svg={qr.svg} label={`Pairing QR code for ${name}`} />
                    </div>
                  ) : null}
                </li>
              );
            })}
          </ul>
          {Array.isArray(channels.platform_problems) && channels.platform_problems.length ? (
            <div class="card error">
              <strong>Channels not started</strong>
              <ul>
                {channels.platform_problems.map((p) => (
                  <li>{isRecord(p) ? `${String(p.name ?? p.plugin ?? '')}: ${String(p.message ?? p.code ?? '')}` : String(p)}</li>
                ))}
              </ul>
            </div>
          ) : null}
          <p class="small muted">
            {num(channels.sessions) ?? 0} sessions · {num(channels.pending_messages) ?? 0} messages waiting · {num(channels.paired_senders) ?? 0} paired senders
          </p>
          <h2>Waiting for approval</h2>
          <Pairings />
        </>
      ) : (
        <p class="muted">The chat gateway is not running.</p>
      )}
    </section>
  );
}
