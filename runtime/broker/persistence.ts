/**
 * Where the broker keeps retained messages, persistent sessions, queued QoS 1/2 messages and wills.
 *
 * aedes-persistence-level on LevelDB: maintained by the aedes team, supports aedes 1.x's async interface
 * (including cleanIncoming), embedded (no Redis/Mongo service on a small box) and crash-safe through
 * LevelDB's write-ahead log. Without persistence, aedes' in-memory default is used.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import levelPersistence from 'aedes-persistence-level';
import { Level } from 'level';
import { ClawboxError } from '../errors.js';

export interface BrokerPersistence {
  /** Passed to aedes as `persistence`; undefined means aedes' in-memory default. */
  readonly aedesPersistence: unknown;
  readonly kind: 'level' | 'memory';
  close(): Promise<void>;
}

export async function openPersistence(stateDir: string, enabled: boolean): Promise<BrokerPersistence> {
  if (!enabled) return { aedesPersistence: undefined, kind: 'memory', close: async () => {} };
  const dir = path.join(stateDir, 'broker');
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new ClawboxError('STATE_UNWRITABLE', `cannot create the broker state directory ${dir}: ${(error as Error).message}`, { dir }, { cause: error });
  }
  const db = new Level(dir);
  try {
    await db.open();
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause;
    const why =
      cause?.code === 'LEVEL_LOCKED'
        ? 'it is locked by another process (is clawbox already running with this state directory?)'
        : (error as Error).message;
    throw new ClawboxError('STATE_UNWRITABLE', `cannot open the broker state in ${dir}: ${why}`, { dir }, { cause: error });
  }
  const persistence = levelPersistence(db);
  return {
    aedesPersistence: persistence,
    kind: 'level',
    // destroy() closes the LevelDB, releasing its lock so that a restart in the same process can reopen it.
    close: () => persistence.destroy(),
  };
}
