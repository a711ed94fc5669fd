/** Models: what is configured and loaded, how fast it runs, downloads in progress, and a pull form where the box offers one. */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api } from '../api.js';
import { bytes, duration, isRecord, ms, num, str, tokensPerSecond } from '../format.js';
import { section, useLive } from '../live.js';

function Slot(props: { title: string; slot: Record<string, unknown> }) {
  const { slot } = props;
  const rates = isRecord(slot.rates) ? slot.rates : {};
  const state = str(slot.state) ?? 'unknown';
  const progress = num(slot.progress);
  const error = isRecord(slot.error) ? `${String(slot.error.code ?? '')} ${String(slot.error.message ?? '')}` : str(slot.error);
  return (
    <div class="card" data-model-slot={props.title}>
      <div class="card-head">
        <strong>{props.title}</strong>
        <span class={`badge ${state === 'ready' || state === 'loaded' ? 'ok' : state === 'failed' ? 'bad' : 'muted'}`}>{state}</span>
      </div>
      <p>{str(slot.name) ?? 'No model configured: the agent answers on its fast path only.'}</p>
      {progress !== null ? <progress max={1} value={progress} aria-label="loading" /> : null}
      {error ? <p class="error small">{error}</p> : null}
      <dl class="facts">
        {slot.backend ? (
          <div>
            <dt>Backend</dt>
            <dd>{String(slot.backend)}</dd>
          </div>
        ) : null}
        {slot.quantization ? (
          <div>
            <dt>Quantization</dt>
            <dd>{String(slot.quantization)}</dd>
          </div>
        ) : null}
        {num(slot.context_size) !== null ? (
          <div>
            <dt>Context</dt>
            <dd>{String(slot.context_size)} tokens</dd>
          </div>
        ) : null}
        {num(rates.decode_ms_per_token) !== null ? (
          <div>
            <dt>Generation</dt>
            <dd>{tokensPerSecond(num(rates.decode_ms_per_token))}</dd>
          </div>
        ) : null}
        {num(rates.prefill_ms_per_token) !== null ? (
          <div>
            <dt>Prompt reading</dt>
            <dd>{tokensPerSecond(num(rates.prefill_ms_per_token))}</dd>
          </div>
        ) : null}
        {num(slot.load_ms) !== null ? (
          <div>
            <dt>Load time</dt>
            <dd>{ms(num(slot.load_ms))}</dd>
          </div>
        ) : null}
      </dl>
    </div>
  );
}

function Downloads(props: { downloads: unknown[] }) {
  return (
    <ul class="cards">
      {props.downloads.filter(isRecord).map((d) => {
        const done = num(d.downloaded_bytes) ?? 0;
        const total = num(d.total_bytes) ?? 0;
        const error = isRecord(d.error) ? `${String(d.error.code)}: ${String(d.error.message)}` : null;
        return (
          <li class="card" data-download={str(d.uri) ?? ''}>
            <div class="card-head">
              <span class="wrap-any">{str(d.file) ?? str(d.uri) ?? 'download'}</span>
              <span class="badge muted">{str(d.phase) ?? '…'}</span>
            </div>
            {total > 0 ? <progress max={total} value={done} aria-label="downloaded" /> : null}
            <p class="small muted">
              {bytes(done)} of {total > 0 ? bytes(total) : '?'} · {bytes(num(d.speed_bps))}/s · {num(d.eta_s) === null ? 'time left unknown' : `${duration(num(d.eta_s))} left`}
            </p>
            {error ? <p class="error small">{error}</p> : null}
          </li>
        );
      })}
    </ul>
  );
}

export function ModelsPage() {
  const live = useLive();
  const model = section(live.status, 'model');
  const [configured, setConfigured] = useState<unknown>(null);
  const [uri, setUri] = useState('');
  const [message, setMessage] = useState<string | null>(null);
  useEffect(() => {
    api<unknown>('GET', '/api/models').then(setConfigured, () => setConfigured(null));
  }, []);
  const list = isRecord(configured) && Array.isArray(configured.models) ? configured.models.filter(isRecord) : Array.isArray(configured) ? configured.filter(isRecord) : [];
  const pull = async (event: Event) => {
    event.preventDefault();
    setMessage(null);
    try {
      await api('POST', '/api/models/pull', { uri });
      setMessage('Download started; its progress shows above.');
    } catch (e) {
      if (e instanceof ApiError && (e.status === 404 || e.status === 405)) setMessage('This box offers no pull from the web app; use `clawbox models` on the box.');
      else setMessage(e instanceof ApiError ? `${e.code}: ${e.message}` : String(e));
    }
  };
  return (
    <section aria-labelledby="models-title">
      <h1 id="models-title">Models</h1>
      {model ? (
        <>
          <Slot title="Main model" slot={model} />
          {isRecord(model.small) ? <Slot title="Small model" slot={model.small} /> : null}
          {Array.isArray(model.downloads) && model.downloads.length ? (
            <>
              <h2>Downloads</h2>
              <Downloads downloads={model.downloads} />
            </>
          ) : null}
        </>
      ) : (
        <p class="muted">The model service is not running.</p>
      )}
      <h2>Configured</h2>
      {list.length === 0 ? (
        <p class="muted">None under models: in the config.</p>
      ) : (
        <ul class="cards">
          {list.map((m) => (
            <li class="card">
              <div class="card-head">
                <strong>{str(m.name) ?? '?'}</strong>
                {m.role ? <span class="badge muted">{String(m.role)}</span> : null}
              </div>
              <p class="small muted wrap-any">{str(m.path) ?? str(m.file) ?? ''}</p>
              {num(m.size_bytes) !== null ? <p class="small">{bytes(num(m.size_bytes))}</p> : null}
            </li>
          ))}
        </ul>
      )}
      <h2>Pull a model</h2>
      <form class="filters" onSubmit={(e) => void pull(e)}>
        <label class="inline grow">
          URL or hf: name
          <input name="uri" value={uri} required placeholder="hf:owner/repo/file.gguf" onInput={(e) => setUri((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit">Pull</button>
      </form>
      {message ? <p class="small" role="status">{message}</p> : null}
    </section>
  );
}
