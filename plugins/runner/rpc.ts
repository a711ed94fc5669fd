/**
 * JSON-RPC 2.0 over any text channel, used on both sides: the host talks to a plugin (worker thread, child
 * process or python3 over stdio) and a plugin talks back (logs, device and MQTT requests). One message is
 * one JSON text. Anything that is not a well-formed JSON-RPC message is a ProtocolError: the host treats the
 * plugin as broken and restarts it.
 */

export interface RpcError {
  code: number;
  message: string;
  data?: unknown;
}

/** JSON-RPC error codes used here. -32000 carries a tool failure; `data.code` may name a catalog code. */
export const RPC = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  TOOL_ERROR: -32000,
} as const;

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
}

/** A JSON-RPC error answer from the other side. */
export class RemoteError extends Error {
  override readonly name = 'RemoteError';
  constructor(
    readonly rpcCode: number,
    message: string,
    readonly data: unknown,
  ) {
    super(message);
  }
}

export interface RpcHandlers {
  /** A request from the other side; what it resolves to is the result, what it throws the error. */
  request(method: string, params: unknown): Promise<unknown>;
  notification(method: string, params: unknown): void;
  /** Turns a thrown value into the error object sent back. */
  toRpcError?(error: unknown): RpcError;
}

type Id = number | string;

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

export class RpcPeer {
  readonly #send: (text: string) => void;
  readonly #handlers: RpcHandlers;
  readonly #pending = new Map<Id, Pending>();
  readonly #idPrefix: string;
  #nextId = 1;

  constructor(send: (text: string) => void, handlers: RpcHandlers, options: { idPrefix?: string } = {}) {
    this.#send = send;
    this.#handlers = handlers;
    this.#idPrefix = options.idPrefix ?? '';
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Sends a request; `id` lets the caller cancel or correlate it. */
  request(method: string, params?: unknown): { id: Id; result: Promise<unknown> } {
    const id: Id = this.#idPrefix ? `${this.#idPrefix}${this.#nextId++}` : this.#nextId++;
    const result = new Promise<unknown>((resolve, reject) => this.#pending.set(id, { resolve, reject }));
    try {
      this.#send(JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) }));
    } catch (error) {
      this.#pending.delete(id);
      return { id, result: Promise.reject(error instanceof Error ? error : new Error(String(error))) };
    }
    return { id, result };
  }

  notify(method: string, params?: unknown): void {
    this.#send(JSON.stringify({ jsonrpc: '2.0', method, ...(params === undefined ? {} : { params }) }));
  }

  /** Forgets a pending request (its answer, if one comes, is ignored). */
  forget(id: Id): void {
    this.#pending.delete(id);
  }

  /** Rejects every pending request, e.g. when the other side died. */
  failAll(error: Error): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(error);
  }

  /** Handles one incoming message. Throws ProtocolError when it is not JSON-RPC 2.0. */
  receive(text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      throw new ProtocolError(`not JSON: ${preview(text)}`);
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      throw new ProtocolError(`not a JSON-RPC object: ${preview(text)}`);
    }
    const m = message as Record<string, unknown>;
    if (m.jsonrpc !== '2.0') throw new ProtocolError(`missing "jsonrpc": "2.0": ${preview(text)}`);
    const hasId = typeof m.id === 'number' || typeof m.id === 'string';
    if (typeof m.method === 'string') {
      if (hasId) this.#answer(m.id as Id, m.method, m.params);
      else this.#handlers.notification(m.method, m.params);
      return;
    }
    if (!hasId) throw new ProtocolError(`a response without an id: ${preview(text)}`);
    const pending = this.#pending.get(m.id as Id);
    // An answer to a forgotten (timed-out) request is fine; an answer nobody asked for is not.
    if (!pending) {
      if (typeof m.id === 'number' ? m.id < this.#nextId : true) return;
      throw new ProtocolError(`a response to unknown request ${String(m.id)}`);
    }
    this.#pending.delete(m.id as Id);
    if ('error' in m) {
      const e = m.error as Partial<RpcError> | null;
      if (typeof e !== 'object' || e === null || typeof e.message !== 'string' || typeof e.code !== 'number') {
        throw new ProtocolError(`a malformed error response: ${preview(text)}`);
      }
      pending.reject(new RemoteError(e.code, e.message, e.data));
    } else if ('result' in m) {
      pending.resolve(m.result);
    } else {
      throw new ProtocolError(`a response with neither result nor error: ${preview(text)}`);
    }
  }

  #answer(id: Id, method: string, params: unknown): void {
    const reply = (body: { result: unknown } | { error: RpcError }) => {
      try {
        this.#send(JSON.stringify({ jsonrpc: '2.0', id, ...body }));
      } catch {
        // The channel closed meanwhile; nobody is listening for this answer any more.
      }
    };
    let work: Promise<unknown>;
    try {
      work = this.#handlers.request(method, params);
    } catch (error) {
      work = Promise.reject(error);
    }
    work.then(
      (result) => reply({ result: result === undefined ? null : result }),
      (error: unknown) => reply({ error: this.#handlers.toRpcError?.(error) ?? defaultRpcError(error) }),
    );
  }
}

function defaultRpcError(error: unknown): RpcError {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown })?.code;
  return { code: RPC.TOOL_ERROR, message, ...(typeof code === 'string' ? { data: { code } } : {}) };
}

export function preview(text: string, max = 120): string {
  const oneLine = text.replace(/\s+/g, ' ');
  return oneLine.length > max ? `${oneLine.slice(0, max)}… (${text.length} chars)` : oneLine;
}
