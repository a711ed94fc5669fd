/**
 * System → Update: the two system slots (version, boot state, which runs and which boots next), the last
 * update results, and a bundle URL to check or install, with progress (downloaded, then written to the
 * inactive slot), cancel, and a restart button once an update waits in the other slot. Errors show their
 * code. The box's own `system.update.*` operations do the work (admin only, except reading).
 */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api } from '../api.js';
import { bytes, dateTime, isRecord, num, str } from '../format.js';
import { section, useLive } from '../live.js';

function describe(e: unknown): string {
  return e instanceof ApiError ? `${e.code}: ${e.message}` : String(e);
}

const RUNNING = new Set(['downloading', 'verifying', 'writing']);
const PHASE_LABEL: Record<string, string> = {
  downloading: 'Downloading',
  verifying: 'Checking',
  writing: 'Writing the inactive slot',
  checked: 'Checked',
  installed: 'Installed',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

function Slots(props: { status: Record<string, unknown> }) {
  const slots = Array.isArray(props.status.slots) ? props.status.slots.filter(isRecord) : [];
  const last = isRecord(props.status.last) ? props.status.last : null;
  return (
    <div class="card" data-update-slots>
      <h2>Slots</h2>
      <p class="small muted">
        clawbox {str(props.status.version) ?? '?'} ({str(props.status.arch) ?? '?'}) runs from slot {str(props.status.booted) ?? '?'}. An update is written to the other slot, which then boots
        on trial and falls back to this one on its own if it does not come up healthy.
      </p>
      <ul class="cards">
        {slots.map((s) => {
          const state = str(s.state) ?? 'empty';
          const marks = [s.booted === true ? 'running' : '', s.next_boot === true ? 'boots next' : ''].filter(Boolean).join(' · ');
          return (
            <li class="card small" data-slot={str(s.slot) ?? ''} data-state={state}>
              <div class="card-head">
                <strong>Slot {str(s.slot) ?? '?'}</strong>
                <span class={`badge ${state === 'good' ? 'ok' : state === 'bad' ? 'bad' : 'muted'}`}>{state}</span>
              </div>
              <p>
                {str(s.version) ?? 'no system'}
                {marks ? <span class="muted"> · {marks}</span> : null}
                {state === 'trying' && num(s.tries_left) !== null ? <span class="muted"> · {String(num(s.tries_left))} tries left</span> : null}
              </p>
            </li>
          );
        })}
      </ul>
      <p class="small" data-last-result={last ? (str(last.result) ?? '') : 'none'}>
        Last update: {last ? `${str(last.result) ?? '?'} — ${str(last.message) ?? ''} (${dateTime(str(last.at) ?? Date.now())})` : 'none yet'}
      </p>
    </div>
  );
}

function Job(props: { job: Record<string, unknown>; busy: boolean; onCancel(): void }) {
  const { job } = props;
  const phase = str(job.phase) ?? '…';
  const running = RUNNING.has(phase) && (job.finished_at === null || job.finished_at === undefined);
  const writing = phase === 'writing' || num(job.written_bytes);
  const done = num(writing ? job.written_bytes : job.downloaded_bytes) ?? 0;
  const total = num(writing ? job.write_total_bytes : job.download_total_bytes) ?? 0;
  const error = isRecord(job.error) ? `${String(job.error.code)}: ${String(job.error.message)}` : null;
  const bundle = isRecord(job.bundle) ? job.bundle : null;
  return (
    <div class="card" data-update-job={String(num(job.id) ?? '')} data-phase={phase}>
      <div class="card-head">
        <strong>{str(job.action) === 'apply' ? 'Install' : 'Check'}</strong>
        <span class={`badge ${phase === 'installed' || phase === 'checked' ? 'ok' : phase === 'failed' ? 'bad' : 'muted'}`}>{PHASE_LABEL[phase] ?? phase}</span>
      </div>
      <p class="small muted wrap-any">{str(job.url) ?? ''}</p>
      {running && total > 0 ? <progress max={total} value={done} aria-label={writing ? 'written to the inactive slot' : 'downloaded'} /> : null}
      {running || done > 0 ? (
        <p class="small muted" data-progress>
          {writing ? 'Written' : 'Downloaded'} {bytes(done)} of {total > 0 ? bytes(total) : '?'}
        </p>
      ) : null}
      {bundle ? (
        <p class="small" data-bundle-version={str(bundle.version) ?? ''}>
          Bundle: clawbox {str(bundle.version) ?? '?'} for {str(bundle.arch) ?? '?'}, signed by a trusted key; it goes into slot {str(bundle.slot) ?? '?'}.
        </p>
      ) : null}
      {str(job.message) && !error ? <p class="small">{str(job.message)}</p> : null}
      {error ? (
        <p class="error small" data-job-error>
          {error}
        </p>
      ) : null}
      {running ? (
        <div class="actions">
          <button type="button" data-action="cancel-update" disabled={props.busy} onClick={props.onCancel}>
            Cancel
          </button>
        </div>
      ) : null}
    </div>
  );
}

export function UpdatePage() {
  const live = useLive();
  const liveJob = section(live.status, 'update');
  const job = liveJob && isRecord(liveJob.job) ? liveJob.job : null;
  const [status, setStatus] = useState<Record<string, unknown> | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [url, setUrl] = useState('');
  const [allowDowngrade, setAllowDowngrade] = useState(false);
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  const [busy, setBusy] = useState(false);
  // A restart interrupts everything the box does: one more tap to confirm it.
  const [confirmReboot, setConfirmReboot] = useState(false);
  const load = () =>
    api<Record<string, unknown>>('GET', '/api/system/update').then(
      (data) => {
        setStatus(data);
        setLoadError(null);
      },
      (e) => setLoadError(describe(e)),
    );
  // A job that moved on may have changed the slots: read them again.
  const jobState = job ? `${String(job.id)}:${String(job.phase)}` : '';
  useEffect(() => {
    void load();
  }, [jobState]);
  const shownJob = job ?? (status && isRecord(status.job) ? status.job : null);
  const running = shownJob !== null && RUNNING.has(str(shownJob.phase) ?? '') && (shownJob.finished_at === null || shownJob.finished_at === undefined);
  const act = async (path: string, body: unknown, done: string) => {
    setBusy(true);
    setMessage(null);
    try {
      await api('POST', path, body);
      setMessage({ text: done, error: false });
    } catch (e) {
      setMessage({ text: describe(e), error: true });
    } finally {
      setBusy(false);
    }
  };
  const start = (action: 'check' | 'apply') => (event?: Event) => {
    event?.preventDefault();
    void act(`/api/system/update/${action}`, { url: url.trim(), ...(allowDowngrade ? { allow_downgrade: true } : {}) }, action === 'check' ? 'Checking; progress shows below.' : 'Installing; progress shows below.');
  };
  const available = status?.available === true;
  const slots = available && Array.isArray(status.slots) ? status.slots.filter(isRecord) : [];
  const staged = slots.find((s) => s.booted !== true && s.next_boot === true);
  const reason = status && isRecord(status.reason) ? `${String(status.reason.code)}: ${String(status.reason.message)}` : null;
  return (
    <section aria-labelledby="update-title">
      <p class="small">
        <a href="#/system">System</a> › Update
      </p>
      <h1 id="update-title">Update</h1>
      {loadError ? (
        <p class="error" role="status">
          {loadError}
        </p>
      ) : null}
      {status === null && !loadError ? <p class="muted">Loading…</p> : null}
      {status && !available ? (
        <p class="card small" data-update-unavailable>
          Updates from here are not available on this box — <span class="error">{reason}</span>
        </p>
      ) : null}
      {available ? <Slots status={status} /> : null}
      {staged ? (
        <div class="card" data-staged={str(staged.version) ?? ''}>
          <p>
            clawbox {str(staged.version) ?? '?'} is installed in slot {str(staged.slot) ?? '?'} and starts on the next restart (on trial: if it does not come up healthy, the box goes back to{' '}
            {str(status?.version) ?? 'the running version'} on its own).
          </p>
          {confirmReboot ? (
            <div class="actions wrap" data-confirm-reboot>
              <span>Restart the box now? Devices and chats pause for a minute or two.</span>
              <button
                type="button"
                class="primary"
                data-action="confirm-reboot"
                disabled={busy || running}
                onClick={() => {
                  setConfirmReboot(false);
                  void act('/api/system/reboot', {}, 'Restarting: the box is back in a minute or two.');
                }}
              >
                Restart
              </button>
              <button type="button" data-action="keep-running" onClick={() => setConfirmReboot(false)}>
                Keep running
              </button>
            </div>
          ) : (
            <div class="actions">
              <button type="button" class="primary" data-action="reboot" disabled={busy || running} onClick={() => setConfirmReboot(true)}>
                Restart now
              </button>
            </div>
          )}
        </div>
      ) : null}
      <h2>Install an update</h2>
      <form class="inline-form" aria-label="Update from a URL" onSubmit={start('check')}>
        <label class="field">
          Bundle URL
          <input name="url" type="url" value={url} required placeholder="https://…/clawbox-1.2.3-amd64.bundle" spellcheck={false} onInput={(e) => setUrl((e.target as HTMLInputElement).value)} />
        </label>
        <label class="field checkbox">
          <input type="checkbox" name="allow_downgrade" checked={allowDowngrade} onChange={(e) => setAllowDowngrade((e.target as HTMLInputElement).checked)} /> Allow an older version
        </label>
        <div class="actions wrap">
          <button type="submit" data-action="check" disabled={busy || running || !url.trim()}>
            Check
          </button>
          <button type="button" class="primary" data-action="apply" disabled={busy || running || !url.trim()} onClick={start('apply')}>
            Apply
          </button>
        </div>
      </form>
      {message ? (
        <p class={`small${message.error ? ' error' : ''}`} role="status" data-update-message>
          {message.text}
        </p>
      ) : null}
      {shownJob ? (
        <>
          <h2>{RUNNING.has(str(shownJob.phase) ?? '') ? 'In progress' : 'Last check or install'}</h2>
          <Job job={shownJob} busy={busy} onCancel={() => void act('/api/system/update/cancel', {}, 'Cancelling…')} />
        </>
      ) : null}
      <p class="small muted">
        Check downloads the bundle and verifies its signature, architecture, version, the space it needs and every checksum without installing anything; Apply installs it into the inactive slot.
        The running system is never touched.
      </p>
    </section>
  );
}
