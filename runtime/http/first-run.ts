/**
 * First run of an appliance that has neither http.token nor http.password_hash: a one-time setup page
 * sets the admin password (stored as a scrypt hash) and names the box. It is unlocked by a setup code
 * printed on the console and in the journal, so only someone who can read the box's log can claim it.
 * Once done, `<state>/admin.json` (mode 0600) holds the hash and the name, and setup answers 410 for good.
 */
import { randomInt } from 'node:crypto';
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { hashPassword } from '../auth/password.js';
import { ClawboxError } from '../errors.js';
import { isoTimestamp } from '../system/timestamps.js';

export interface AdminRecord {
  password_hash: string;
  name: string;
  created_at: string;
}

/** Letters that cannot be mistaken for each other when read off a screen. */
const CODE_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
export const BOX_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}$';
const MIN_PASSWORD = 10;
const MAX_PASSWORD = 256;
/** Wrong codes before the setup refuses every further try until restart (a new code is printed then). */
const MAX_WRONG_CODES = 20;

export function adminFile(stateDir: string): string {
  return path.join(stateDir, 'admin.json');
}

export async function readAdminRecord(stateDir: string): Promise<AdminRecord | null> {
  try {
    const parsed = JSON.parse(await readFile(adminFile(stateDir), 'utf8')) as Partial<AdminRecord>;
    if (typeof parsed.password_hash !== 'string' || !parsed.password_hash.startsWith('scrypt$')) return null;
    return { password_hash: parsed.password_hash, name: typeof parsed.name === 'string' ? parsed.name : '', created_at: String(parsed.created_at ?? '') };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

function newSetupCode(): string {
  let code = '';
  for (let i = 0; i < 8; i++) code += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}

const normalizeCode = (code: string) => code.toUpperCase().replace(/[^A-Z0-9]/g, '');

export class FirstRunSetup {
  readonly code = newSetupCode();
  readonly #stateDir: string;
  #done = false;
  #busy = false;
  #wrong = 0;

  constructor(stateDir: string) {
    this.#stateDir = stateDir;
  }

  get pending(): boolean {
    return !this.#done;
  }

  /** Checks the code, stores the admin record, and ends the setup; throws a coded error otherwise. */
  async complete(input: unknown): Promise<AdminRecord> {
    if (this.#done) throw new ClawboxError('GONE', 'the box is already set up');
    if (this.#busy) throw new ClawboxError('BUSY', 'a setup is already in progress');
    const { code, password, name } = parseSetupInput(input);
    if (this.#wrong >= MAX_WRONG_CODES) throw new ClawboxError('FORBIDDEN', 'too many wrong setup codes; restart the box for a new code');
    if (normalizeCode(code) !== normalizeCode(this.code)) {
      this.#wrong++;
      throw new ClawboxError('UNAUTHORIZED', 'wrong setup code (it is printed on the console and in the journal)');
    }
    this.#busy = true;
    try {
      const record: AdminRecord = { password_hash: await hashPassword(password), name, created_at: isoTimestamp() };
      const file = adminFile(this.#stateDir);
      const temp = `${file}.tmp-${process.pid}`;
      await writeFile(temp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
      await chmod(temp, 0o600);
      await rename(temp, file);
      this.#done = true;
      return record;
    } finally {
      this.#busy = false;
    }
  }
}

function parseSetupInput(input: unknown): { code: string; password: string; name: string } {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new ClawboxError('PAYLOAD_INVALID', 'setup takes {"code","password","name"}');
  const { code, password, name } = input as Record<string, unknown>;
  if (typeof code !== 'string' || code.length > 32) throw new ClawboxError('PAYLOAD_INVALID', 'code: the setup code printed on the console');
  if (typeof password !== 'string' || password.length < MIN_PASSWORD || password.length > MAX_PASSWORD) {
    throw new ClawboxError('PAYLOAD_INVALID', `password: ${MIN_PASSWORD} to ${MAX_PASSWORD} characters`);
  }
  if (typeof name !== 'string' || !new RegExp(BOX_NAME_PATTERN).test(name)) {
    throw new ClawboxError('PAYLOAD_INVALID', 'name: 1 to 63 letters, digits, spaces, dots, dashes or underscores, starting with a letter or digit');
  }
  return { code, password, name };
}
