/**
 * Leases in Redis: a key per device whose value is the owning replica, with an expiry. Taking one is
 * `SET NX PX`; renewing and giving one back are compare-and-set scripts, so a replica can never renew or
 * delete a lease another replica holds. A replica that dies stops renewing: its leases expire after
 * `ttlMs`, and the next renewal round of any other replica takes them (failover within ttl + one round).
 */
import type { Redis } from 'ioredis';
import { KEYS } from './keys.js';

const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

export class LeaseTable {
  constructor(
    private readonly db: Redis,
    private readonly replicaId: string,
    private readonly ttlMs: number,
  ) {}

  /** Takes the lease if nobody holds it, or renews it if this replica does. True when this replica holds it now. */
  async claim(device: string): Promise<boolean> {
    const key = KEYS.lease(device);
    if ((await this.db.set(key, this.replicaId, 'PX', this.ttlMs, 'NX')) === 'OK') return true;
    return (await this.db.eval(RENEW, 1, key, this.replicaId, String(this.ttlMs))) === 1;
  }

  async release(device: string): Promise<void> {
    await this.db.eval(RELEASE, 1, KEYS.lease(device), this.replicaId);
  }

  /** The replica that holds the lease, or null. */
  async owner(device: string): Promise<string | null> {
    return this.db.get(KEYS.lease(device));
  }

  async owners(devices: readonly string[]): Promise<Record<string, string | null>> {
    if (devices.length === 0) return {};
    const values = await this.db.mget(...devices.map((d) => KEYS.lease(d)));
    return Object.fromEntries(devices.map((d, i) => [d, values[i] ?? null]));
  }
}
