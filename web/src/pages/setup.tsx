/** First run: the setup code from the console unlocks setting the admin password and naming the box, once. */
import { useState } from 'preact/hooks';
import { ApiError, api } from '../api.js';

export function SetupPage(props: { name: string; onDone(): void }) {
  const [code, setCode] = useState('');
  const [name, setName] = useState(props.name);
  const [password, setPassword] = useState('');
  const [again, setAgain] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    if (password !== again) {
      setError('The two passwords differ.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await api('POST', '/api/setup', { code, password, name });
      props.onDone();
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };
  const input = (id: string, label: string, value: string, set: (v: string) => void, extra: Record<string, unknown> = {}) => (
    <label class="field" for={id}>
      {label}
      <input id={id} name={id} value={value} required onInput={(e) => set((e.target as HTMLInputElement).value)} {...extra} />
    </label>
  );
  return (
    <main class="narrow" id="main">
      <h1>Set up this box</h1>
      <p>
        The setup code is printed on the box's console and in its journal (<code>journalctl -u clawbox | grep setup</code>). This page works once: afterwards you sign in with
        the password you set here.
      </p>
      <form class="card" onSubmit={(e) => void submit(e)}>
        {input('code', 'Setup code', code, setCode, { autoComplete: 'one-time-code', autoCapitalize: 'characters', placeholder: 'ABCD-EFGH' })}
        {input('name', 'Name of the box', name, setName, { maxLength: 63, pattern: '[A-Za-z0-9][A-Za-z0-9 ._\\-]{0,62}' })}
        {input('password', 'Admin password (at least 10 characters)', password, setPassword, { type: 'password', autoComplete: 'new-password', minLength: 10 })}
        {input('again', 'The password again', again, setAgain, { type: 'password', autoComplete: 'new-password', minLength: 10 })}
        {error ? (
          <p class="error" role="alert" id="setup-error">
            {error}
          </p>
        ) : null}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Saving…' : 'Set password and continue'}
        </button>
      </form>
    </main>
  );
}
