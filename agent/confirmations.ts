/**
 * Actions waiting for their caller's confirmation (devices whose safety policy is `confirm`). Only the
 * principal that was asked can confirm, only once, and only before the window closes; anything else
 * changes nothing. Bounded: past `max` pending, new ones are refused until some expire or are used.
 */
import { randomBytes } from 'node:crypto';
import { ClawboxError } from '../runtime/errors.js';
import { type Principal, samePrincipal } from '../runtime/operations/principal.js';
import type { PendingConfirmation } from './agent.js';
import type { StateValue } from './directory.js';

export interface ConfirmationOptions {
  /** How long a confirmation may wait (default 60 s). */
  ttlMs?: number;
  /** Pending confirmations at most, across callers (default 256). */
  max?: number;
  now?: () => number;
}

interface Pending {
  confirmation: PendingConfirmation;
  principal: Principal;
  expires: number;
}

export const CONFIRMATION_ID = /^[0-9a-f]{8}$/;

export class ConfirmationStore {
  readonly #pending = new Map<string, Pending>();
  readonly #ttl: number;
  readonly #max: number;
  readonly #now: () => number;

  constructor(options: ConfirmationOptions = {}) {
    this.#ttl = options.ttlMs ?? 60_000;
    this.#max = options.max ?? 256;
    this.#now = options.now ?? Date.now;
  }

  get size(): number {
    this.#prune();
    return this.#pending.size;
  }

  create(principal: Principal, device: string, command: Record<string, StateValue>): PendingConfirmation {
    this.#prune();
    if (this.#pending.size >= this.#max) {
      throw new ClawboxError('LIMIT_REACHED', `${this.#max} actions already wait for confirmation; confirm or let some expire first`, {
        limit: this.#max,
        not_run: true,
      });
    }
    let id: string;
    do id = randomBytes(4).toString('hex');
    while (this.#pending.has(id));
    const expires = this.#now() + this.#ttl;
    const confirmation: PendingConfirmation = { id, device, command: { ...command }, expires_at: new Date(expires).toISOString() };
    this.#pending.set(id, { confirmation, principal, expires });
    return confirmation;
  }

  /** The action to run now; throws CONFIRMATION_INVALID when expired, used, unknown or asked of someone else. */
  take(id: string, principal: Principal): PendingConfirmation {
    this.#prune();
    const pending = this.#pending.get(id);
    // One answer for every miss, so a stranger learns nothing about other callers' pending actions.
    if (!pending || !samePrincipal(pending.principal, principal)) {
      throw new ClawboxError('CONFIRMATION_INVALID', `no pending confirmation "${id.slice(0, 16)}" for you (they expire after ${Math.round(this.#ttl / 1000)} s)`, {
        not_run: true,
      });
    }
    this.#pending.delete(id);
    return pending.confirmation;
  }

  #prune(): void {
    const now = this.#now();
    for (const [id, pending] of this.#pending) if (pending.expires <= now) this.#pending.delete(id);
  }
}
