/** Sign-in with the box's token or admin password (a session cookie, HttpOnly; the secret never stays in the page). */
import { useState } from 'preact/hooks';
import { ApiError, api } from '../api.js';

export function LoginPage(props: { name: string; onDone(): void }) {
  const [secret, setSecret] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api('POST', '/api/login', { secret });
      setSecret('');
      props.onDone();
    } catch (e) {
      setError(e instanceof ApiError ? (e.code === 'BUSY' ? e.message : 'Wrong token or password.') : String(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="narrow" id="main">
      <h1>Sign in to {props.name || 'clawbox'}</h1>
      <form class="card" onSubmit={(e) => void submit(e)}>
        <label class="field" for="secret">
          Token or admin password
          <input id="secret" name="secret" type="password" autoComplete="current-password" required value={secret} onInput={(e) => setSecret((e.target as HTMLInputElement).value)} />
        </label>
        {error ? (
          <p class="error" role="alert" id="login-error">
            {error}
          </p>
        ) : null}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
