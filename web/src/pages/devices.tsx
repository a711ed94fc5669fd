/** The start page: every device with its live state, availability and controls, as cards. */
import { ChatBox } from '../chat.js';
import { capabilityOf, DeviceControls } from '../controls.js';
import { useDevices } from '../devices-store.js';
import { ago } from '../format.js';
import { useLive } from '../live.js';
import type { Device } from '../types.js';

export function AvailabilityBadge(props: { device: Device }) {
  const a = props.device.availability;
  return (
    <span class={`badge ${a === 'online' ? 'ok' : a === 'offline' ? 'bad' : 'muted'}`} data-availability={a}>
      {a}
    </span>
  );
}

export function DevicesPage() {
  const { devices, loaded, error } = useDevices();
  useLive();
  return (
    <section aria-labelledby="devices-title">
      <div class="page-head">
        <h1 id="devices-title">Devices</h1>
        <a class="button primary" href="#/devices/new">
          Add device
        </a>
      </div>
      {error ? <p class="error" role="alert">Cannot load devices: {error}</p> : null}
      {loaded && devices.length === 0 ? <p class="muted">No devices yet. Add one, or declare them under devices: in the config.</p> : null}
      <ul class="cards device-list">
        {devices.map((device) => (
          <li class="card device-card" data-device={device.id}>
            <div class="card-head">
              <a class="device-name" href={`#/devices/${encodeURIComponent(device.id)}`}>
                {device.name}
              </a>
              <AvailabilityBadge device={device} />
            </div>
            <p class="muted small">
              {device.area ? `${device.area} · ` : ''}
              {device.capabilities.map((c) => capabilityOf(c).type).join(', ')} · updated {ago(device.updated_at)}
            </p>
            <DeviceControls device={device} />
            {device.last_error ? (
              <p class="error small">
                {device.last_error.code}: {device.last_error.message}
              </p>
            ) : null}
          </li>
        ))}
      </ul>
      <ChatBox />
    </section>
  );
}
