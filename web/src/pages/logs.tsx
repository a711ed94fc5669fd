/** The live log tail: the runtime's last lines (already redacted), filtered by level and component, newest first. */
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api } from '../api.js';
import { clock } from '../format.js';
import type { LogLine } from '../types.js';

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
const KEEP = 500;

export function LogsPage() {
  const [lines, setLines] = useState<LogLine[]>([]);
  const [level, setLevel] = useState<string>('info');
  const [component, setComponent] = useState<string>('');
  const [paused, setPaused] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const last = useRef(0);

  useEffect(() => {
    last.current = 0;
    setLines([]);
    let stopped = false;
    let timer: number | undefined;
    const poll = async () => {
      if (stopped) return;
      if (!paused) {
        try {
          const query = new URLSearchParams({ after: String(last.current), level });
          if (component) query.set('component', component);
          const answer = await api<{ entries: LogLine[]; last: number }>('GET', `/api/logs?${query}`);
          if (stopped) return;
          last.current = answer.last;
          if (answer.entries.length) setLines((old) => [...old, ...answer.entries].slice(-KEEP));
          setError(null);
        } catch (e) {
          setError(e instanceof ApiError ? e.message : String(e));
        }
      }
      timer = window.setTimeout(() => void poll(), 1000);
    };
    void poll();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [level, component, paused]);

  const components = [...new Set(lines.map((l) => l.component).filter((c): c is string => !!c))].sort();
  return (
    <section aria-labelledby="logs-title">
      <div class="page-head">
        <h1 id="logs-title">Log</h1>
        <button type="button" onClick={() => setPaused(!paused)} aria-pressed={paused}>
          {paused ? 'Resume' : 'Pause'}
        </button>
      </div>
      <div class="filters">
        <label class="inline">
          Level
          <select name="level" value={level} onChange={(e) => setLevel((e.target as HTMLSelectElement).value)}>
            {LEVELS.map((l) => (
              <option value={l}>{l} and worse</option>
            ))}
          </select>
        </label>
        <label class="inline">
          Component
          <select name="component" value={component} onChange={(e) => setComponent((e.target as HTMLSelectElement).value)}>
            <option value="">all</option>
            {[...new Set([...components, component].filter(Boolean))].map((c) => (
              <option value={c}>{c}</option>
            ))}
          </select>
        </label>
      </div>
      {error ? <p class="error">{error}</p> : null}
      <ol class="log" aria-live="polite" reversed>
        {[...lines].reverse().map((line) => (
          <li class={`log-line level-${line.level}`} data-seq={line.seq}>
            <span class="muted small">{clock(line.time)}</span> <span class={`badge level-${line.level}`}>{line.level}</span>{' '}
            {line.component ? <span class="muted">{line.component}</span> : null} <span class="msg">{line.msg}</span>
            {line.code ? <code class="small"> {line.code}</code> : null}
          </li>
        ))}
      </ol>
      {lines.length === 0 ? <p class="muted">No lines at this level yet.</p> : null}
    </section>
  );
}
