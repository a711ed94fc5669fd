/**
 * One control per capability, each sending a command through POST /api/devices/<id>/set (the same
 * validation as every other source) and showing the answer's error in place. The value shown is always
 * the device's reported state from the live feed; a control only shows "sending…" while its command runs.
 */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, idPath } from './api.js';
import { Sparkline } from './chart.js';
import { num, str } from './format.js';
import type { Capability, CapabilityObject, Device } from './types.js';

export function capabilityOf(cap: Capability): CapabilityObject {
  return typeof cap === 'string' ? { type: cap } : cap;
}

export function hasCapability(device: Device, type: CapabilityObject['type']): CapabilityObject | undefined {
  return device.capabilities.map(capabilityOf).find((c) => c.type === type);
}

/** Runs a command for a device; the returned state arrives through the live feed. */
function useCommand(device: Device): { busy: boolean; error: string | null; send(command: Record<string, unknown>): Promise<void> } {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  return {
    busy,
    error,
    async send(command) {
      setBusy(true);
      setError(null);
      try {
        await api('POST', `/api/devices/${idPath(device.id)}/set`, command);
      } catch (e) {
        setError(e instanceof ApiError ? `${e.code}: ${e.message}` : String(e));
      } finally {
        setBusy(false);
      }
    },
  };
}

function ErrorLine(props: { error: string | null }) {
  return props.error ? (
    <p class="error small" role="alert">
      {props.error}
    </p>
  ) : null;
}

const offline = (device: Device) => device.availability === 'offline';

export function SwitchControl(props: { device: Device }) {
  const { device } = props;
  const command = useCommand(device);
  const on = device.state.state === 'ON';
  return (
    <div class="control">
      <button
        type="button"
        class={`switch ${on ? 'on' : ''}`}
        role="switch"
        aria-checked={on}
        aria-label={`${device.name} power`}
        data-control="switch"
        disabled={command.busy || offline(device)}
        onClick={() => void command.send({ state: on ? 'OFF' : 'ON' })}
      >
        <span class="knob" aria-hidden="true" />
        <span class="switch-label">{on ? 'On' : 'Off'}</span>
      </button>
      <ErrorLine error={command.error} />
    </div>
  );
}

/** A slider that follows the device while the user is not dragging it, and sends once on release. */
function RangeControl(props: {
  device: Device;
  label: string;
  property: string;
  min: number;
  max: number;
  step: number;
  unit: string;
  control: string;
}) {
  const { device } = props;
  const reported = num(device.state[props.property]);
  const [draft, setDraft] = useState<number | null>(null);
  const command = useCommand(device);
  useEffect(() => {
    if (!command.busy) setDraft(null);
  }, [reported, command.busy]);
  const value = draft ?? reported ?? props.min;
  const id = `${device.id}-${props.property}`;
  return (
    <div class="control range">
      <label for={id}>
        {props.label} <output>{reported === null ? '—' : `${reported}${props.unit}`}</output>
      </label>
      <input
        id={id}
        type="range"
        data-control={props.control}
        min={props.min}
        max={props.max}
        step={props.step}
        value={value}
        disabled={offline(device)}
        onInput={(e) => setDraft(Number((e.target as HTMLInputElement).value))}
        onChange={(e) => void command.send({ [props.property]: Number((e.target as HTMLInputElement).value) })}
      />
      <ErrorLine error={command.error} />
    </div>
  );
}

export function DimmerControl(props: { device: Device }) {
  return <RangeControl device={props.device} label="Brightness" property="brightness" min={0} max={100} step={1} unit=" %" control="brightness" />;
}

export function ThermostatControl(props: { device: Device; cap: CapabilityObject }) {
  const { device, cap } = props;
  const min = cap.min ?? 5;
  const max = cap.max ?? 30;
  const step = cap.step ?? 0.5;
  const modes = cap.modes ?? ['off', 'heat'];
  const command = useCommand(device);
  const target = num(device.state.target_temperature);
  const current = num(device.state.current_temperature);
  const mode = str(device.state.mode);
  const nudge = (delta: number) => {
    const base = target ?? min;
    const next = Math.min(max, Math.max(min, Math.round((base + delta) / step) * step));
    void command.send({ target_temperature: next });
  };
  return (
    <div class="control thermostat">
      <div class="setpoint">
        <button type="button" class="round" aria-label="Lower the setpoint" data-control="setpoint-down" disabled={command.busy || offline(device)} onClick={() => nudge(-step)}>
          −
        </button>
        <div class="setpoint-value">
          <span class="big" data-value="target_temperature">{target === null ? '—' : `${target} °C`}</span>
          <span class="muted small">set · now {current === null ? '—' : `${current} °C`}</span>
        </div>
        <button type="button" class="round" aria-label="Raise the setpoint" data-control="setpoint-up" disabled={command.busy || offline(device)} onClick={() => nudge(step)}>
          +
        </button>
      </div>
      <label class="inline">
        Mode
        <select
          data-control="mode"
          value={mode ?? ''}
          disabled={command.busy || offline(device)}
          onChange={(e) => void command.send({ mode: (e.target as HTMLSelectElement).value })}
        >
          {mode === null ? <option value="">—</option> : null}
          {modes.map((m) => (
            <option value={m}>{m.replace('_', ' ')}</option>
          ))}
        </select>
      </label>
      <ErrorLine error={command.error} />
    </div>
  );
}

export function CoverControl(props: { device: Device }) {
  const { device } = props;
  const command = useCommand(device);
  const disabled = command.busy || offline(device);
  return (
    <div class="control cover">
      <fieldset class="buttons">
        <legend class="sr-only">{device.name} movement</legend>
        <button type="button" data-control="cover-open" disabled={disabled} onClick={() => void command.send({ state: 'OPEN' })}>
          Open
        </button>
        <button type="button" data-control="cover-stop" disabled={disabled} onClick={() => void command.send({ state: 'STOP' })}>
          Stop
        </button>
        <button type="button" data-control="cover-close" disabled={disabled} onClick={() => void command.send({ state: 'CLOSE' })}>
          Close
        </button>
      </fieldset>
      <ErrorLine error={command.error} />
      <RangeControl device={device} label="Position" property="position" min={0} max={100} step={1} unit=" %" control="position" />
    </div>
  );
}

export function SensorValues(props: { device: Device; cap: CapabilityObject; chart: boolean }) {
  const { device, cap } = props;
  return (
    <div class="control sensor">
      {(cap.readings ?? []).map((r) => {
        const value = device.state[r.property];
        return (
          <div class="reading">
            <span class="muted">{r.property.replace(/_/g, ' ')}</span>{' '}
            <span class="big" data-value={r.property}>
              {value === undefined || value === null ? '—' : `${String(value)}${r.unit ? ` ${r.unit}` : ''}`}
            </span>
            {props.chart ? <Sparkline deviceId={device.id} property={r.property} unit={r.unit} label={r.property} /> : null}
          </div>
        );
      })}
    </div>
  );
}

/** Every control the device's capabilities call for, in a stable order. */
export function DeviceControls(props: { device: Device; chart?: boolean }) {
  const { device } = props;
  const caps = device.capabilities.map(capabilityOf);
  return (
    <div class="controls">
      {caps.map((cap) => {
        switch (cap.type) {
          case 'switch':
            return <SwitchControl device={device} />;
          case 'dimmer':
            return <DimmerControl device={device} />;
          case 'thermostat':
            return <ThermostatControl device={device} cap={cap} />;
          case 'cover':
            return <CoverControl device={device} />;
          case 'sensor':
            return <SensorValues device={device} cap={cap} chart={props.chart ?? false} />;
          default:
            return null;
        }
      })}
    </div>
  );
}
