/** Units shown the same way on every page: durations as durations, rates with their unit. */

export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

export function ms(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  return value >= 1000 ? duration(value / 1000) : `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;
}

/** A per-token time in milliseconds as a rate. */
export function tokensPerSecond(msPerToken: number | null | undefined): string {
  if (!msPerToken || !Number.isFinite(msPerToken) || msPerToken <= 0) return '—';
  const rate = 1000 / msPerToken;
  return `${rate >= 100 ? Math.round(rate) : rate.toFixed(1)} tok/s`;
}

export function bytes(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = value;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export function percent(value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  return `${value.toFixed(digits)} %`;
}

export function perSecond(value: number | null | undefined, unit = '/s'): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${unit}`;
}

export function clock(time: number | string): string {
  const date = new Date(time);
  return Number.isNaN(date.getTime()) ? '—' : date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function dateTime(time: number | string): string {
  const date = new Date(time);
  return Number.isNaN(date.getTime()) ? '—' : date.toLocaleString([], { dateStyle: 'short', timeStyle: 'medium' });
}

export function ago(time: number | null | undefined, now = Date.now()): string {
  if (!time) return 'never';
  const s = Math.max(0, (now - time) / 1000);
  return s < 5 ? 'just now' : `${duration(s)} ago`;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

export function str(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}
