/**
 * The live status: one EventSource on /api/events (the runtime pushes the whole status document about
 * once a second and each new warning as it happens), shared by every page. Sensor readings are kept as a
 * short history per device and property for the charts: what the box recorded before the page opened
 * (GET /api/devices/:id/history, loaded when a chart first shows) plus what arrives live.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, idPath } from './api.js';
import { isRecord } from './format.js';
import type { Device, StatusDocument } from './types.js';

export interface LiveState {
  status: StatusDocument | null;
  connected: boolean;
  /** Epoch ms of the last document. */
  updatedAt: number;
}

const HISTORY_POINTS = 480;
type Point = { t: number; v: number };
const history = new Map<string, Point[]>();

let state: LiveState = { status: null, connected: false, updatedAt: 0 };
const listeners = new Set<(s: LiveState) => void>();
let source: EventSource | null = null;

function publish(next: LiveState): void {
  state = next;
  for (const l of listeners) l(state);
}

function record(devices: Device[]): void {
  for (const device of devices) {
    for (const [property, value] of Object.entries(device.state ?? {})) {
      if (typeof value !== 'number' || !Number.isFinite(value)) continue;
      const key = `${device.id}\u0000${property}`;
      const points = history.get(key) ?? [];
      const t = device.updated_at ?? Date.now();
      const last = points.at(-1);
      if (last && last.t === t && last.v === value) continue;
      points.push({ t, v: value });
      if (points.length > HISTORY_POINTS) points.shift();
      history.set(key, points);
    }
  }
}

export function historyOf(deviceId: string, property: string): readonly Point[] {
  return history.get(`${deviceId}\u0000${property}`) ?? [];
}

const historyLoads = new Map<string, Promise<void>>();

/**
 * Merges the box's recorded history of a device into the charts' (once per device and page load);
 * resolves when done. A failure leaves the live history as it is (the chart still fills as readings arrive).
 */
export function loadHistory(deviceId: string): Promise<void> {
  let pending = historyLoads.get(deviceId);
  if (!pending) {
    pending = api<{ series?: Record<string, unknown> }>('GET', `/api/devices/${idPath(deviceId)}/history`).then(
      (data) => {
        for (const [property, list] of Object.entries(isRecord(data.series) ? data.series : {})) {
          if (!Array.isArray(list)) continue;
          const recorded = list.filter((p): p is Point => isRecord(p) && typeof p.t === 'number' && typeof p.v === 'number');
          const key = `${deviceId}\u0000${property}`;
          const live = history.get(key) ?? [];
          const first = recorded.at(-1)?.t ?? 0;
          history.set(key, [...recorded, ...live.filter((p) => p.t > first)].slice(-HISTORY_POINTS));
        }
      },
      () => {
        historyLoads.delete(deviceId);
      },
    );
    historyLoads.set(deviceId, pending);
  }
  return pending;
}

export function startLive(): void {
  if (source) return;
  source = new EventSource('/api/events');
  source.addEventListener('open', () => publish({ ...state, connected: true }));
  source.addEventListener('error', () => publish({ ...state, connected: false }));
  source.addEventListener('status', (event) => {
    try {
      const doc = JSON.parse((event as MessageEvent<string>).data) as StatusDocument;
      record(devicesOf(doc));
      publish({ status: doc, connected: true, updatedAt: Date.now() });
    } catch {
      // A malformed event is skipped; the next one replaces it.
    }
  });
  source.addEventListener('warning', (event) => {
    if (!state.status) return;
    try {
      const warning = JSON.parse((event as MessageEvent<string>).data);
      publish({ ...state, status: { ...state.status, warnings: [...state.status.warnings.slice(-49), warning] } });
    } catch {
      // as above
    }
  });
}

export function stopLive(): void {
  source?.close();
  source = null;
  publish({ status: null, connected: false, updatedAt: 0 });
}

export function useLive(): LiveState {
  const [value, setValue] = useState(state);
  useEffect(() => {
    listeners.add(setValue);
    setValue(state);
    return () => {
      listeners.delete(setValue);
    };
  }, []);
  return value;
}

export function devicesOf(doc: StatusDocument | null): Device[] {
  const section = doc?.sections.devices;
  return Array.isArray(section) ? (section as Device[]) : [];
}

export function section(doc: StatusDocument | null, name: string): Record<string, unknown> | null {
  const value = doc?.sections[name];
  return isRecord(value) && !('error' in value && Object.keys(value).length === 1) ? value : null;
}

export function sectionError(doc: StatusDocument | null, name: string): string | null {
  const value = doc?.sections[name];
  return isRecord(value) && typeof value.error === 'string' ? value.error : null;
}
