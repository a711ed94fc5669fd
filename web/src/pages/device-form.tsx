/** Add or edit a device with a form generated from the config's own JSON Schema for a `devices:` entry. */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, idPath } from '../api.js';
import { refreshDevices, useDevices } from '../devices-store.js';
import { isRecord } from '../format.js';
import { SchemaForm } from '../schema-form.js';
import type { Device, JsonSchema } from '../types.js';

/**
 * Whether the form can edit a device without losing anything: one added at run time (a config-file device
 * would come back from the file) whose driver has no settings beyond what a snapshot shows.
 */
export function editable(device: Device): boolean {
  return device.origin === 'runtime' && device.driver === 'simulated';
}

/** The config entry a device snapshot implies (what the form starts from when editing). */
function entryOf(device: Device): Record<string, unknown> {
  return {
    id: device.id,
    name: device.name,
    driver: device.driver,
    capabilities: device.capabilities,
    ...(device.area ? { area: device.area } : {}),
    ...(device.aliases?.length ? { aliases: device.aliases } : {}),
  };
}

interface Problem {
  path?: string;
  message: string;
}

function problemsOf(error: ApiError): Problem[] {
  const issues = error.details.issues;
  if (Array.isArray(issues)) return issues.filter(isRecord).map((i) => ({ path: typeof i.path === 'string' ? i.path : '', message: String(i.message ?? '') }));
  return [];
}

export function DeviceFormPage(props: { id?: string }) {
  const [schema, setSchema] = useState<JsonSchema | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const { devices, loaded } = useDevices();
  const editing = props.id ? devices.find((d) => d.id === props.id) : undefined;

  useEffect(() => {
    api<JsonSchema>('GET', '/api/schema/device-entry').then(setSchema, (e: ApiError) => setError(e));
  }, []);

  if (props.id && !editing) return loaded ? <p class="error">No device "{props.id}".</p> : <p class="muted">Loading…</p>;
  if (editing && !editable(editing)) return <p class="error">{editing.name} is edited in its config entry, not here.</p>;
  if (!schema) return error ? <p class="error">{error.message}</p> : <p class="muted">Loading the device schema…</p>;

  const submit = async (value: Record<string, unknown>) => {
    setBusy(true);
    setError(null);
    try {
      if (editing) {
        // The device layer has no in-place edit: the entry is replaced (same id, so the same topics).
        await api('DELETE', `/api/devices/${idPath(editing.id)}`);
        try {
          await api('POST', '/api/devices', value);
        } catch (addError) {
          await api('POST', '/api/devices', entryOf(editing)).catch(() => undefined);
          throw addError;
        }
      } else {
        await api('POST', '/api/devices', value);
      }
      await refreshDevices();
      location.hash = `#/devices/${encodeURIComponent(String(value.id ?? ''))}`;
    } catch (e) {
      setError(e instanceof ApiError ? e : new ApiError(0, 'ERROR', String(e)));
    } finally {
      setBusy(false);
    }
  };

  const initial = editing ? entryOf(editing) : { driver: 'simulated', capabilities: ['switch'] };
  const problems = error ? problemsOf(error) : [];
  return (
    <section aria-labelledby="form-title">
      <p>
        <a href={editing ? `#/devices/${encodeURIComponent(editing.id)}` : '#/'}>← Back</a>
      </p>
      <h1 id="form-title">{editing ? `Edit ${editing.name}` : 'Add a device'}</h1>
      <p class="muted small">The same schema as a <code>devices:</code> entry in the config file; the box checks it again before anything changes.</p>
      {error ? (
        <div class="error card" role="alert" data-form-error={error.code}>
          <strong>{error.code}</strong>: {error.message}
          {problems.length ? (
            <ul>
              {problems.map((p) => (
                <li>
                  {p.path ? <code>{p.path}</code> : null} {p.message}
                </li>
              ))}
            </ul>
          ) : null}
        </div>
      ) : null}
      <div class="card">
        <SchemaForm schema={schema} initial={initial} readOnly={editing ? ['id'] : []} hidden={['demo']} submitLabel={editing ? 'Save device' : 'Add device'} busy={busy} onSubmit={(v) => void submit(v)} />
      </div>
    </section>
  );
}
