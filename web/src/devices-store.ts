/**
 * Devices as the pages see them: the full snapshots from GET /api/devices (capabilities with their
 * ranges, modes and readings) with state, availability and errors kept current from the live feed. The
 * list is fetched again when the live feed shows a device appear or go.
 */
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { devicesOf, useLive } from './live.js';
import type { Device } from './types.js';

let full: Device[] | null = null;
let loading: Promise<void> | null = null;
let loadError: string | null = null;
const listeners = new Set<() => void>();

export function refreshDevices(): Promise<void> {
  loading ??= api<Device[]>('GET', '/api/devices')
    .then((devices) => {
      full = devices;
      loadError = null;
    })
    .catch((error: Error) => {
      loadError = error.message;
    })
    .finally(() => {
      loading = null;
      for (const l of listeners) l();
    });
  return loading;
}

export function useDevices(): { devices: Device[]; loaded: boolean; error: string | null } {
  const live = useLive();
  const [, setTick] = useState(0);
  useEffect(() => {
    const listener = () => setTick((n) => n + 1);
    listeners.add(listener);
    if (!full) void refreshDevices();
    return () => {
      listeners.delete(listener);
    };
  }, []);
  const liveDevices = devicesOf(live.status);
  const hasLive = Array.isArray(live.status?.sections.devices);
  const known = new Set((full ?? []).map((d) => d.id));
  const liveIds = new Set(liveDevices.map((d) => d.id));
  if (hasLive && full && !loading && (liveDevices.some((d) => !known.has(d.id)) || [...known].some((id) => !liveIds.has(id)))) {
    void refreshDevices();
  }
  const byId = new Map(liveDevices.map((d) => [d.id, d]));
  const devices = (full ?? []).filter((d) => !hasLive || liveIds.has(d.id)).map((d) => {
    const current = byId.get(d.id);
    return current
      ? { ...d, name: current.name, state: current.state, availability: current.availability, updated_at: current.updated_at, last_error: current.last_error }
      : d;
  });
  return { devices, loaded: full !== null, error: loadError };
}
