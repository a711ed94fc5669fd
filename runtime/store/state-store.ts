/**
 * The state store: one lowdb JSON document per namespace (`devices`, `sessions`, ...) under the state
 * directory. Writes are atomic (see atomic-file.ts) and serialised per document. A corrupt or truncated
 * file found at start is moved aside with a warning and the namespace starts from its defaults.
 */
import { readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { type Adapter, Low } from 'lowdb';
import type { Logger } from 'pino';
import { ClawboxError } from '../errors.js';
import { ensureDir, writeFileAtomic } from './atomic-file.js';

const NAMESPACE = /^[a-z][a-z0-9-]{0,63}$/;

class AtomicJsonFile<T> implements Adapter<T> {
  #pending: Promise<void> = Promise.resolve();

  constructor(
    readonly file: string,
    private readonly logger: Logger,
  ) {}

  async read(): Promise<T | null> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      const aside = `${this.file}.corrupt-${Date.now()}`;
      await rename(this.file, aside);
      this.logger.warn(
        { code: 'STATE_CORRUPT', file: this.file, movedTo: aside, reason: (error as Error).message },
        `state file ${path.basename(this.file)} was corrupt; moved aside to ${path.basename(aside)}, starting from defaults`,
      );
      return null;
    }
  }

  write(data: T): Promise<void> {
    const text = JSON.stringify(data);
    // Chain writes so that two updates never race on the temp file; each write carries the full document.
    const next = this.#pending.then(() => writeFileAtomic(this.file, text));
    this.#pending = next.catch(() => {});
    return next;
  }
}

export interface StoreDocument<T> {
  /** The live data; change it only inside update(). */
  readonly data: T;
  /** Applies a change and resolves once it is on disk. */
  update(change: (data: T) => void): Promise<void>;
}

export class StateStore {
  readonly #documents = new Map<string, StoreDocument<unknown>>();

  constructor(
    readonly dir: string,
    private readonly logger: Logger,
  ) {
    try {
      ensureDir(dir);
    } catch (error) {
      throw new ClawboxError('STATE_UNWRITABLE', `cannot create state directory ${dir}: ${(error as Error).message}`, {
        dir,
      });
    }
  }

  /** Opens (once) the document for a namespace, creating it from defaults when missing or corrupt. */
  async open<T extends object>(namespace: string, defaults: () => T): Promise<StoreDocument<T>> {
    if (!NAMESPACE.test(namespace)) throw new Error(`invalid state namespace "${namespace}"`);
    const existing = this.#documents.get(namespace);
    if (existing) return existing as StoreDocument<T>;
    const db = new Low<T>(new AtomicJsonFile<T>(path.join(this.dir, `${namespace}.json`), this.logger), defaults());
    await db.read();
    if (db.data === null || typeof db.data !== 'object') db.data = defaults();
    const document: StoreDocument<T> = {
      get data() {
        return db.data;
      },
      update: (change) => db.update(change),
    };
    this.#documents.set(namespace, document as StoreDocument<unknown>);
    return document;
  }
}
