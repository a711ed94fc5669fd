/** The one way the app talks to the runtime: JSON over fetch, the one envelope unwrapped, errors typed. */

export class ApiError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: Record<string, unknown>;

  constructor(status: number, code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

type Listener = () => void;
const unauthorizedListeners = new Set<Listener>();

/** Called whenever an API answer says the session is gone: the app shows the login form. */
export function onUnauthorized(listener: Listener): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

export async function api<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? { Accept: 'application/json' } : { Accept: 'application/json', 'Content-Type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch {
    throw new ApiError(0, 'OFFLINE', 'the box cannot be reached');
  }
  let parsed: unknown = null;
  const text = await response.text();
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  const envelope = (parsed ?? {}) as { status?: string; data?: unknown; error?: { code?: string; message?: string } & Record<string, unknown> };
  if (!response.ok || envelope.status === 'error') {
    const error = envelope.error ?? {};
    const { code, message, ...details } = error;
    if (response.status === 401 && path !== '/api/login' && path !== '/api/setup') for (const l of unauthorizedListeners) l();
    throw new ApiError(response.status, code ?? `HTTP_${response.status}`, message ?? response.statusText, details);
  }
  return (envelope.data ?? envelope) as T;
}

/** A device's id in a URL path. */
export const idPath = (id: string) => encodeURIComponent(id);
