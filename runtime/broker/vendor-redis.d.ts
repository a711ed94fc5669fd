// aedes-persistence-redis ships no types; this is the part the cluster's broker store uses.
declare module 'aedes-persistence-redis' {
  interface RedisPersistence {
    /** The async implementation under the callback layer (what the WAIT barrier wraps). */
    readonly asyncPersistence: Record<string, unknown>;
    destroy(): Promise<void>;
  }
  /** `conn`: an ioredis connection the persistence uses for every command (so WAIT covers its writes). */
  export default function redisPersistence(options: { conn: object; maxSessionDelivery?: number }): RedisPersistence;
}
