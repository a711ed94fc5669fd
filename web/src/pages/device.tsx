/** One device: its controls with history, its configuration, last error, recent audit entries, and the rename / edit / remove actions. */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, idPath } from '../api.js';
import { DeviceControls } from '../controls.js';
import { refreshDevices, useDevices } from '../devices-store.js';
import { ago, dateTime } from '../format.js';
import type { AuditRecord } from '../types.js';
import { AuditList } from './audit.js';
import { editable } from './device-form.js';
import { AvailabilityBadge } from './devices.js';

export function DevicePage(props: { id: string }) {
  const { devices, loaded } = useDevices();
  const device = devices.find((d) => d.id === props.id);
  const [audit, setAudit] = useState<AuditRecord[] | null>(null);
  const [renaming, setRenaming] = useState(false);
  const [newName, setNewName] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api<{ records: AuditRecord[] }>('GET', `/api/audit?device=${encodeURIComponent(props.id)}&limit=20`)
      .then((r) => setAudit(r.records))
      .catch(() => setAudit([]));
  }, [props.id, device?.updated_at]);

  if (!device) return loaded ? <p class="error">No device "{props.id}". <a href="#/">Back to devices</a></p> : <p class="muted">Loading…</p>;

  const rename = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api('POST', `/api/devices/${idPath(device.id)}/rename`, { name: newName });
      await refreshDevices();
      setRenaming(false);
    } catch (e) {
      setError(e instanceof ApiError ? `${e.code}: ${e.message}` : String(e));
    } finally {
      setBusy(false);
    }
  };
  const remove = async () => {
    if (!window.confirm(`Remove ${device.name}? Its retained topics are cleared.`)) return;
    setBusy(true);
    setError(null);
    try {
      await api('DELETE', `/api/devices/${idPath(device.id)}`);
      await refreshDevices();
      location.hash = '#/';
    } catch (e) {
      setError(e instanceof ApiError ? `${e.code}: ${e.message}` : String(e));
      setBusy(false);
    }
  };

  const facts: Array<[string, string]> = [
    ['Id', device.id],
    ['Driver', device.driver],
    ['Origin', device.origin ?? '—'],
    ['Area', device.area ?? '—'],
    ['Aliases', device.aliases?.join(', ') || '—'],
    ['Agent may', device.agent_policy ?? 'allow'],
    ['Updated', ago(device.updated_at)],
  ];
  return (
    <section aria-labelledby="device-title" data-device-page={device.id}>
      <p>
        <a href="#/">← Devices</a>
      </p>
      <div class="page-head">
        <h1 id="device-title">{device.name}</h1>
        <AvailabilityBadge device={device} />
      </div>
      <div class="card">
        <DeviceControls device={device} chart />
      </div>
      <div class="actions wrap">
        <button type="button" onClick={() => { setNewName(device.name); setRenaming(!renaming); }}>
          Rename
        </button>
        {editable(device) ? (
          <a class="button" href={`#/devices/${encodeURIComponent(device.id)}/edit`}>
            Edit
          </a>
        ) : null}
        <button type="button" class="danger" disabled={busy} onClick={() => void remove()}>
          Remove
        </button>
      </div>
      {editable(device) ? null : (
        <p class="muted small">
          {device.origin === 'runtime'
            ? 'Its driver settings are not shown here, so it is edited in its config entry; rename works here.'
            : 'Declared in the config file: edit it there (clawbox config check); rename works here.'}
        </p>
      )}
      {renaming ? (
        <form class="card inline-form" onSubmit={(e) => void rename(e)}>
          <label class="field">
            New name
            <input name="name" value={newName} maxLength={120} required onInput={(e) => setNewName((e.target as HTMLInputElement).value)} />
          </label>
          <button type="submit" class="primary" disabled={busy}>
            Save name
          </button>
        </form>
      ) : null}
      {error ? <p class="error" role="alert">{error}</p> : null}
      <h2>Configuration</h2>
      <dl class="facts card">
        {facts.map(([k, v]) => (
          <div>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
        <div>
          <dt>Capabilities</dt>
          <dd>
            <code class="wrap-any">{JSON.stringify(device.capabilities)}</code>
          </dd>
        </div>
      </dl>
      <h2>Last error</h2>
      {device.last_error ? (
        <p class="error card">
          <strong>{device.last_error.code}</strong> {device.last_error.message}
          {device.last_error.time ? <span class="muted small"> · {dateTime(device.last_error.time)}</span> : null}
        </p>
      ) : (
        <p class="muted">None since the runtime started.</p>
      )}
      <h2>Recent audit entries</h2>
      {audit === null ? <p class="muted">Loading…</p> : <AuditList records={audit} empty="No audited operations for this device yet." />}
    </section>
  );
}
