/** The audit log: who did what to which device, and how it ended; searchable. */
import { useEffect, useState } from 'preact/hooks';
import { type ApiError, api } from '../api.js';
import { dateTime, isRecord } from '../format.js';
import type { AuditRecord } from '../types.js';

function outcomeText(record: AuditRecord): { text: string; ok: boolean } {
  const outcome = record.outcome;
  if (isRecord(outcome)) {
    if (outcome.status === 'ok' || outcome.ok === true) return { text: 'ok', ok: true };
    const error = isRecord(outcome.error) ? outcome.error : outcome;
    const code = typeof error.code === 'string' ? error.code : typeof outcome.status === 'string' ? outcome.status : 'error';
    return { text: code, ok: false };
  }
  return { text: typeof outcome === 'string' ? outcome : '—', ok: outcome === 'ok' };
}

export function AuditList(props: { records: AuditRecord[]; empty: string }) {
  if (props.records.length === 0) return <p class="muted">{props.empty}</p>;
  return (
    <ul class="cards audit-list">
      {[...props.records].reverse().map((r) => {
        const outcome = outcomeText(r);
        return (
          <li class="card audit-record">
            <div class="card-head">
              <strong>{r.op}</strong>
              <span class={`badge ${outcome.ok ? 'ok' : 'bad'}`}>{outcome.text}</span>
            </div>
            <p class="small">
              {r.device ? (
                <>
                  <a href={`#/devices/${encodeURIComponent(r.device)}`}>{r.device}</a> ·{' '}
                </>
              ) : null}
              {r.principal.kind}:{r.principal.id} · <span class="muted">{dateTime(r.time)}</span>
            </p>
          </li>
        );
      })}
    </ul>
  );
}

export function AuditPage() {
  const [text, setText] = useState('');
  const [query, setQuery] = useState('');
  const [records, setRecords] = useState<AuditRecord[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const params = new URLSearchParams({ limit: '100' });
    if (query) params.set('text', query);
    api<{ records: AuditRecord[] }>('GET', `/api/audit?${params}`).then(
      (r) => {
        setRecords(r.records);
        setError(null);
      },
      (e: ApiError) => setError(e.message),
    );
  }, [query]);
  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Audit log</h1>
      <p class="muted small">Every world-changing operation and agent decision, hash-chained on disk. Newest first.</p>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setQuery(text.trim());
        }}
      >
        <label class="inline grow">
          Search
          <input type="search" name="q" value={text} placeholder="device, operation, caller or error code" onInput={(e) => setText((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit">Search</button>
      </form>
      {error ? <p class="error">{error}</p> : null}
      {records === null ? <p class="muted">Loading…</p> : <AuditList records={records} empty={query ? `Nothing matches "${query}".` : 'No records yet.'} />}
    </section>
  );
}
