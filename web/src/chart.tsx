/** A small inline SVG line chart of a sensor's recent values (no library: a polyline is enough). */
import { useEffect, useState } from 'preact/hooks';
import { historyOf, loadHistory } from './live.js';

export function Sparkline(props: { deviceId: string; property: string; unit?: string | undefined; label: string }) {
  // Bumped when the recorded history arrived, so the chart draws it without waiting for a live reading.
  const [, setLoaded] = useState(0);
  useEffect(() => {
    let gone = false;
    void loadHistory(props.deviceId).then(() => {
      if (!gone) setLoaded((n) => n + 1);
    });
    return () => {
      gone = true;
    };
  }, [props.deviceId]);
  const points = historyOf(props.deviceId, props.property);
  const width = 240;
  const height = 48;
  if (points.length < 2) {
    return <p class="muted small">History appears here as new readings arrive.</p>;
  }
  const t0 = points[0]!.t;
  const t1 = points.at(-1)!.t;
  const values = points.map((p) => p.v);
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (hi - lo < 1e-9) {
    lo -= 1;
    hi += 1;
  }
  const x = (t: number) => (t1 === t0 ? width : ((t - t0) / (t1 - t0)) * (width - 4) + 2);
  const y = (v: number) => height - 4 - ((v - lo) / (hi - lo)) * (height - 8);
  const line = points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
  const unit = props.unit ? ` ${props.unit}` : '';
  return (
    <figure class="spark">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`${props.label}: ${points.length} readings from ${lo}${unit} to ${hi}${unit}`} preserveAspectRatio="none">
        <polyline points={line} fill="none" stroke="currentColor" stroke-width="2" vector-effect="non-scaling-stroke" />
      </svg>
      <figcaption class="muted small" data-history={props.property}>
        {points.length} readings since {new Date(t0).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })} · min {Math.min(...values)}
        {unit} · max {Math.max(...values)}
        {unit}
      </figcaption>
    </figure>
  );
}
