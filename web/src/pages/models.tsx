/**
 * Models: what is configured and loaded, how fast it runs; check a model's file, make another one the
 * main model, pull a new one with progress (and cancel it). Each action answers with the box's coded error
 * when it cannot be done.
 */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api } from '../api.js';
import { bytes, duration, isRecord, ms, num, str, tokensPerSecond } from '../format.js';
import type { JSX } from 'preact';
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

function describe(e: unknown): string {
  return e instanceof ApiError ? `${e.code}: ${e.message}` : String(e);
}

/** The running or last pull (status `model.pull`), with a cancel button while it runs. */
function PullJob(props: { job: Record<string, unknown>; onCancel: () => void; busy: boolean }) {
  const { job } = props;
  const phase = str(job.phase) ?? '…';
  const done = num(job.downloaded_bytes) ?? 0;
  const total = num(job.total_bytes) ?? 0;
  const running = job.finished_at === null || job.finished_at === undefined;
  const error = isRecord(job.error) ? `${String(job.error.code)}: ${String(job.error.message)}` : null;
  return (
    <div class="card" data-pull-job={str(job.name) ?? ''} data-phase={phase}>
      <div class="card-head">
        <strong class="wrap-any">{str(job.name) ?? 'model'}</strong>
        <span class={`badge ${phase === 'done' ? 'ok' : phase === 'failed' ? 'bad' : 'muted'}`}>{phase}</span>
      </div>
      <p class="small muted wrap-any">{str(job.uri) ?? ''}</p>
      {total > 0 ? <progress max={total} value={done} aria-label={`downloaded of ${str(job.name) ?? 'model'}`} /> : null}
      <p class="small muted">
        {bytes(done)} of {total > 0 ? bytes(total) : '?'}
        {running && phase === 'downloading' ? ` · ${bytes(num(job.speed_bps))}/s · ${num(job.eta_s) === null ? 'time left unknown' : `${duration(num(job.eta_s))} left`}` : ''}
        {phase === 'done' ? ` · added as ${str(job.role) ?? ''}` : ''}
      </p>
      {error ? <p class="error small">{error}</p> : null}
      {running ? (
        <div class="actions">
          <button type="button" data-action="cancel-pull" disabled={props.busy} onClick={props.onCancel}>
            Cancel download
          </button>
        </div>
      ) : null}
    </div>
  );
}

/** One configured model: its role, and the check and make-main buttons. */
function ConfiguredModel(props: { model: Record<string, unknown>; working: Record<string, unknown> | null; mainFailed: boolean; onActivated: () => void }) {
  const { model } = props;
  const name = str(model.name) ?? '?';
  const role = str(model.role) ?? 'main';
  const [result, setResult] = useState<JSX.Element | null>(null);
  const [busy, setBusy] = useState(false);
  const work = props.working && props.working.name === name ? props.working : null;
  const run = async (action: 'verify' | 'activate') => {
    setBusy(true);
    setResult(null);
    try {
      if (action === 'verify') {
        const r = await api<Record<string, unknown>>('POST', `/api/models/${encodeURIComponent(name)}/verify`, {});
        const error = isRecord(r.error) ? `${String(r.error.code)}: ${String(r.error.message)}` : null;
        setResult(
          r.ok ? (
            <p class="small" role="status" data-verify="ok">
              File checked: {str(r.architecture) ?? '?'} {str(r.quantization) ?? ''}, {bytes(num(r.size_bytes))}
              {r.expected ? ', sha256 matches the config.' : `; no sha256 in the config to compare with (sha256 ${str(r.sha256)?.slice(0, 16) ?? '?'}…).`}
            </p>
          ) : (
            <p class="error small" role="status" data-verify="failed">
              {error}
            </p>
          ),
        );
      } else {
        const r = await api<Record<string, unknown>>('POST', `/api/models/${encodeURIComponent(name)}/activate`, {});
        setResult(
          <p class="small" role="status" data-activate="ok">
            {r.changed ? `${name} is now the main model${r.previous ? ` (was ${String(r.previous)})` : ''}.` : `${name} already is the main model.`}
          </p>,
        );
        props.onActivated();
      }
    } catch (e) {
      setResult(
        <p class="error small" role="status" data-error={action}>
          {describe(e)}
        </p>,
      );
    } finally {
      setBusy(false);
    }
  };
  const total = num(work?.total_bytes) ?? 0;
  return (
    <li class="card" data-model={name}>
      <div class="card-head">
        <strong class="wrap-any">{name}</strong>
        <span class={`badge ${role === 'main' ? 'ok' : 'muted'}`}>{role}</span>
      </div>
      <p class="small muted wrap-any">{str(model.path) ?? ''}</p>
      {str(model.source) ? <p class="small muted wrap-any">from {str(model.source)}</p> : null}
      {work ? (
        <p class="small">
          {work.phase === 'hashing' ? 'Checking the file' : 'Loading'}…{' '}
          {total > 0 ? <progress max={total} value={num(work.done_bytes) ?? 0} aria-label={`${String(work.phase)} ${name}`} /> : null}
        </p>
      ) : null}
      <div class="actions wrap">
        <button type="button" data-action="verify" disabled={busy} onClick={() => void run('verify')}>
          Check file
        </button>
        {role !== 'main' || props.mainFailed ? (
          <button type="button" class="primary" data-action="activate" disabled={busy} onClick={() => void run('activate')}>
            {role === 'main' ? 'Load again' : 'Make main model'}
          </button>
        ) : null}
      </div>
      {result}
    </li>
  );
}

function PullForm(props: { running: boolean }) {
  const [uri, setUri] = useState('');
  const [name, setName] = useState('');
  const [sha256, setSha256] = useState('');
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  const [busy, setBusy] = useState(false);
  const pull = async (event: Event) => {
    event.preventDefault();
    setMessage(null);
    setBusy(true);
    try {
      await api('POST', '/api/models/pull', { uri: uri.trim(), ...(name.trim() ? { name: name.trim() } : {}), ...(sha256.trim() ? { sha256: sha256.trim() } : {}) });
      setMessage({ text: 'Download started; its progress shows above.', error: false });
    } catch (e) {
      setMessage({ text: describe(e), error: true });
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <form class="inline-form" onSubmit={(e) => void pull(e)} aria-label="Pull a model">
        <label class="field">
          URL or hf: name
          <input name="uri" value={uri} required placeholder="hf:owner/repo/file.gguf" onInput={(e) => setUri((e.target as HTMLInputElement).value)} />
        </label>
        <label class="field">
          Name (optional)
          <input name="name" value={name} placeholder="from the file name" onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </label>
        <label class="field">
          sha256 (optional)
          <input name="sha256" value={sha256} spellcheck={false} onInput={(e) => setSha256((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit" class="primary" disabled={busy || props.running}>
          Pull
        </button>
      </form>
      {message ? (
        <p class={`small${message.error ? ' error' : ''}`} role="status" data-pull-message>
          {message.text}
        </p>
      ) : null}
    </>
  );
}

export function ModelsPage() {
  const live = useLive();
  const model = section(live.status, 'model');
  const [configured, setConfigured] = useState<Record<string, unknown>[] | null>(null);
  const [cancelBusy, setCancelBusy] = useState(false);
  const [cancelError, setCancelError] = useState<string | null>(null);
  const load = () =>
    api<unknown>('GET', '/api/models').then(
      (data) => setConfigured(isRecord(data) && Array.isArray(data.configured) ? data.configured.filter(isRecord) : []),
      () => setConfigured([]),
    );
  const pull = model && isRecord(model.pull) ? model.pull : null;
  const work = model && isRecord(model.work) ? model.work : null;
  const pullRunning = pull !== null && (pull.finished_at === null || pull.finished_at === undefined);
  // A finished pull may have added a model: list them again.
  const pullState = pull ? `${String(pull.id)}:${String(pull.phase)}` : '';
  useEffect(() => {
    void load();
  }, [pullState]);
  const cancel = async () => {
    setCancelBusy(true);
    setCancelError(null);
    try {
      await api('POST', '/api/models/pull/cancel', {});
    } catch (e) {
      setCancelError(describe(e));
    } finally {
      setCancelBusy(false);
    }
  };
  const list = configured ?? [];
  return (
    <section aria-labelledby="models-title">
      <h1 id="models-title">Models</h1>
      {model ? (
        <>
          <Slot title="Main model" slot={model} />
          {isRecord(model.small) ? <Slot title="Small model" slot={model.small} /> : null}
          {Array.isArray(model.downloads) && model.downloads.length ? (
            <>
              <h2>Downloads from the command line</h2>
              <Downloads downloads={model.downloads} />
            </>
          ) : null}
        </>
      ) : (
        <p class="muted">The model service is not running.</p>
      )}
      <h2>Configured</h2>
      {configured === null ? (
        <p class="muted">Loading…</p>
      ) : list.length === 0 ? (
        <p class="muted">None yet: pull one below, or add one on the box with clawbox models add FILE.</p>
      ) : (
        <ul class="cards">
          {list.map((m) => (
            <ConfiguredModel model={m} working={work} mainFailed={model !== null && model.state === 'error' && model.name === m.name} onActivated={() => void load()} />
          ))}
        </ul>
      )}
      <h2>Pull a model</h2>
      {pull ? <PullJob job={pull} busy={cancelBusy} onCancel={() => void cancel()} /> : null}
      {cancelError ? (
        <p class="error small" role="status">
          {cancelError}
        </p>
      ) : null}
      <PullForm running={pullRunning} />
      <p class="small muted">
        The file goes to the box's models folder; a partial download is kept, so pulling the same URI again resumes it. The first model becomes the main one; later ones are kept on standby until you make one
        main.
      </p>
    </section>
  );
}
