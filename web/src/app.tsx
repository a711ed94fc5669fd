/**
 * The shell: decides between setup, sign-in and the app (from GET /api/session), then a header with the
 * box's name and live indicator, the navigation (a bottom bar on phones), and the page the hash names.
 * Hash routes need no server support and survive a reload: #/ devices, #/devices/<id>, #/devices/new,
 * #/devices/<id>/edit, #/logs, #/models, #/plugins, #/audit, #/system, #/system/update.
 */
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, onUnauthorized } from './api.js';
import { startLive, stopLive, useLive } from './live.js';
import { AuditPage } from './pages/audit.js';
import { DevicePage } from './pages/device.js';
import { DeviceFormPage } from './pages/device-form.js';
import { DevicesPage } from './pages/devices.js';
import { LoginPage } from './pages/login.js';
import { LogsPage } from './pages/logs.js';
import { ModelsPage } from './pages/models.js';
import { PluginsPage } from './pages/plugins.js';
import { SetupPage } from './pages/setup.js';
import { SystemPage } from './pages/system.js';
import { UpdatePage } from './pages/update.js';
import type { Session } from './types.js';

const NAV = [
  ['#/', 'Devices'],
  ['#/logs', 'Log'],
  ['#/models', 'Models'],
  ['#/plugins', 'Plugins'],
  ['#/audit', 'Audit'],
  ['#/system', 'System'],
] as const;

function useHash(): string {
  const [hash, setHash] = useState(location.hash || '#/');
  useEffect(() => {
    const listener = () => setHash(location.hash || '#/');
    window.addEventListener('hashchange', listener);
    // Effects run after the first paint: a change of the hash before then fired no listener of ours.
    listener();
    return () => window.removeEventListener('hashchange', listener);
  }, []);
  return hash;
}

function route(hash: string) {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const [first, second, third] = parts;
  if (!first) return <DevicesPage />;
  if (first === 'devices' && second === 'new') return <DeviceFormPage />;
  if (first === 'devices' && second && third === 'edit') return <DeviceFormPage id={second} />;
  if (first === 'devices' && second) return <DevicePage id={second} />;
  if (first === 'logs') return <LogsPage />;
  if (first === 'models') return <ModelsPage />;
  if (first === 'plugins') return <PluginsPage />;
  if (first === 'audit') return <AuditPage />;
  if (first === 'system' && second === 'update') return <UpdatePage />;
  if (first === 'system') return <SystemPage />;
  return <p>No such page. <a href="#/">Devices</a></p>;
}

function Shell(props: { session: Session; onLogout(): void }) {
  const hash = useHash();
  const live = useLive();
  const active = (href: string) => (href === '#/' ? hash === '#/' || hash.startsWith('#/devices') : hash.startsWith(href));
  return (
    <>
      <header class="top">
        <a class="brand" href="#/">
          {props.session.name || 'clawbox'}
        </a>
        <span class={`live ${live.connected ? 'on' : 'off'}`} id="live-indicator" role="status" title={live.connected ? 'live' : 'reconnecting'}>
          {live.connected ? 'live' : 'offline'}
        </span>
        {props.session.auth_required ? (
          <button type="button" class="link" onClick={props.onLogout}>
            Sign out
          </button>
        ) : null}
      </header>
      <nav class="nav" aria-label="Pages">
        {NAV.map(([href, label]) => (
          <a href={href} aria-current={active(href) ? 'page' : undefined}>
            {label}
          </a>
        ))}
      </nav>
      <main id="main" tabIndex={-1}>
        {route(hash)}
      </main>
    </>
  );
}

export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(() => {
    api<Session>('GET', '/api/session').then(
      (s) => {
        setSession(s);
        setError(null);
        if (s.authenticated && !s.setup_required) startLive();
        else stopLive();
      },
      (e: Error) => setError(e.message),
    );
  }, []);
  useEffect(() => {
    load();
    return onUnauthorized(() => {
      stopLive();
      load();
    });
  }, [load]);
  useEffect(() => {
    if (session?.name) document.title = session.name;
  }, [session?.name]);
  if (error) return <main class="narrow" id="main"><p class="error">Cannot reach the box: {error}</p><button type="button" onClick={load}>Retry</button></main>;
  if (!session) return <p class="boot">Loading…</p>;
  if (session.setup_required) return <SetupPage name={session.name} onDone={load} />;
  if (!session.authenticated) return <LoginPage name={session.name} onDone={load} />;
  const logout = () => {
    void api('POST', '/api/logout', {}).finally(() => {
      stopLive();
      load();
    });
  };
  return <Shell session={session} onLogout={logout} />;
}
