/**
 * Per-subject keys, for records that must outlive a person's erasure (the audit log): such a record names
 * its subject only by a pseudonym, `subject:<ref>`, where ref is an HMAC of the subject under a random key
 * of that subject's own. While the key exists the pseudonym reads back as the subject; erasing the subject
 * destroys the key (crypto-shredding), after which nothing links the pseudonym to anyone, while the records,
 * and the hash chain over them, stay as they were.
 *
 * The keys live in `<state_dir>/privacy/subject-keys.json` (0600), written atomically and synced before a
 * new pseudonym is handed out, so a record on disk never names a key that a crash lost.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ClawboxError } from '../errors.js';
import { ensureDir, writeFileAtomic } from '../store/atomic-file.js';
import { isoTimestamp } from '../system/timestamps.js';
import type { Subject } from './subject.js';

const PREFIX = 'subject:';
const REF_HEX = 32;

interface KeyFile {
  version: 1;
  keys: Record<Subject, { key: string; created: string }>;
}

export interface SubjectKeysOptions {
  /** Subjects with a key, at most; past it new subjects get an unkeyed one-way pseudonym (see pseudonym()). */
  maxSubjects?: number;
}

export class SubjectKeys {
  readonly file: string;
  readonly #max: number;
  #data: KeyFile = { version: 1, keys: Object.create(null) };
  readonly #byRef = new Map<string, Subject>();
  readonly #refOf = new Map<Subject, string>();
  #writing: Promise<void> = Promise.resolve();
  // Keys being made: a second record about the same newcomer must get the same key, not another.
  readonly #making = new Map<Subject, Promise<string>>();
  // A random salt for the fallback pseudonym past the bound; kept in the same file.
  #salt = '';

  private constructor(file: string, options: SubjectKeysOptions) {
    this.file = file;
    this.#max = options.maxSubjects ?? 100_000;
  }

  static async open(stateDir: string, options: SubjectKeysOptions = {}): Promise<SubjectKeys> {
    const dir = path.join(stateDir, 'privacy');
    ensureDir(dir);
    const keys = new SubjectKeys(path.join(dir, 'subject-keys.json'), options);
    await keys.#load();
    return keys;
  }

  async #load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      this.#salt = randomBytes(32).toString('base64');
      await this.#persist();
      return;
    }
    let parsed: KeyFile & { salt?: string };
    try {
      parsed = JSON.parse(text) as KeyFile & { salt?: string };
    } catch (error) {
      // Starting over would silently unlink every pseudonym in the audit log: refuse instead.
      throw new ClawboxError('STATE_CORRUPT', `${this.file} is not valid JSON (${(error as Error).message}); restore it from a backup`, { file: this.file });
    }
    this.#salt = typeof parsed.salt === 'string' ? parsed.salt : randomBytes(32).toString('base64');
    this.#data = { version: 1, keys: Object.assign(Object.create(null), parsed.keys ?? {}) };
    for (const [subject, entry] of Object.entries(this.#data.keys)) this.#index(subject, entry.key);
  }

  #index(subject: Subject, key: string): void {
    const ref = createHmac('sha256', Buffer.from(key, 'base64')).update(subject).digest('hex').slice(0, REF_HEX);
    this.#byRef.set(ref, subject);
    this.#refOf.set(subject, ref);
  }

  #persist(): Promise<void> {
    const text = JSON.stringify({ ...this.#data, salt: this.#salt });
    const next = this.#writing.then(() => writeFileAtomic(this.file, text));
    this.#writing = next.catch(() => {});
    return next;
  }

  /** Subjects that have a key. */
  get size(): number {
    return this.#refOf.size;
  }

  has(subject: Subject): boolean {
    return this.#refOf.has(subject);
  }

  /**
   * The subject's pseudonym (`subject:<ref>`), creating and syncing its key first when it has none. Past
   * the bound the pseudonym is a salted one-way digest instead: never readable, so nothing to erase.
   */
  pseudonym(subject: Subject): Promise<string> {
    const known = this.#refOf.get(subject);
    if (known) return Promise.resolve(PREFIX + known);
    const pending = this.#making.get(subject);
    if (pending) return pending;
    if (this.#refOf.size + this.#making.size >= this.#max) {
      return Promise.resolve(`${PREFIX}x${createHmac('sha256', this.#salt).update(subject).digest('hex').slice(0, REF_HEX - 1)}`);
    }
    const making = this.#makeKey(subject).finally(() => this.#making.delete(subject));
    this.#making.set(subject, making);
    return making;
  }

  async #makeKey(subject: Subject): Promise<string> {
    const key = randomBytes(32).toString('base64');
    this.#data.keys[subject] = { key, created: isoTimestamp() };
    await this.#persist();
    // Handed out only once on disk: a record never names a key a crash could lose.
    this.#index(subject, key);
    return PREFIX + (this.#refOf.get(subject) as string);
  }

  /** The pseudonym of a subject that has a key; null otherwise (nothing was ever recorded about them). */
  pseudonymIfKnown(subject: Subject): string | null {
    const ref = this.#refOf.get(subject);
    return ref ? PREFIX + ref : null;
  }

  /** The subject behind a pseudonym; `erased` once its key is gone; the text itself when it is no pseudonym. */
  reveal(text: string): string {
    if (!text.startsWith(PREFIX)) return text;
    return this.#byRef.get(text.slice(PREFIX.length)) ?? 'erased';
  }

  isPseudonym(text: string): boolean {
    return text.startsWith(PREFIX);
  }

  /** Destroys the subject's key, durably. Resolves false when it had none. */
  async erase(subject: Subject): Promise<boolean> {
    const ref = this.#refOf.get(subject);
    if (!ref) return false;
    delete this.#data.keys[subject];
    this.#refOf.delete(subject);
    this.#byRef.delete(ref);
    await this.#persist();
    return true;
  }
}
