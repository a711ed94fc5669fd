/**
 * One query's transaction on a pooled server connection, the same for every server driver: take a
 * connection (unreachable -> PLUGIN_FAILED database_unavailable), begin (read-only connections in a
 * READ ONLY transaction, so the server itself refuses writes), run, then ROLLBACK (read-only) or COMMIT.
 * On any error it rolls back and maps the error with the driver's mapError; a connection whose ROLLBACK
 * fails is released as broken, so the pool drops it.
 */
import { PluginError } from '../../sdk.js';

export interface TransactionDriver<C> {
  /** The connection's name, for messages. */
  name: string;
  readonly: boolean;
  acquire(): Promise<C>;
  release(connection: C, broken: boolean): void;
  query(connection: C, sql: string): Promise<unknown>;
  /** Starts the transaction (and applies the time limit) in the server's own words. */
  begin(connection: C): Promise<void>;
  mapError(error: unknown): Error;
}

export async function inTransaction<C, T>(driver: TransactionDriver<C>, work: (connection: C) => Promise<T>): Promise<T> {
  let connection: C;
  try {
    connection = await driver.acquire();
  } catch (error) {
    throw new PluginError('PLUGIN_FAILED', `database ${driver.name} is unreachable: ${(error as Error).message}`, {
      reason: 'database_unavailable',
    });
  }
  let broken = false;
  try {
    await driver.begin(connection);
    const result = await work(connection);
    await driver.query(connection, driver.readonly ? 'ROLLBACK' : 'COMMIT');
    return result;
  } catch (error) {
    await driver.query(connection, 'ROLLBACK').catch(() => {
      broken = true;
    });
    throw driver.mapError(error);
  } finally {
    driver.release(connection, broken);
  }
}
