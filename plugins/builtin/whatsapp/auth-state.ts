/**
 * Baileys' multi-file auth state (one JSON file per key, as useMultiFileAuthState keeps it) written the way
 * an appliance must keep a login: the folder 0700, each file 0600, written to a temp file and renamed so a
 * power cut never leaves half a key. Baileys' own helper writes with the process umask (often 0644).
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { open, readFile, readdir, rename, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { type AuthenticationCreds, type AuthenticationState, BufferJSON, type SignalDataTypeMap, initAuthCreds, proto } from '@whiskeysockets/baileys';

export interface PrivateAuthState {
  state: AuthenticationState;
  saveCreds(): Promise<void>;
}

/** File names from Baileys' key ids: anything but [A-Za-z0-9._-] is replaced, so no id can leave the folder. */
const fileNameOf = (name: string) => `${name.replace(/[^A-Za-z0-9._-]/g, '_')}.json`;

export async function privateAuthState(folder: string): Promise<PrivateAuthState> {
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  chmodSync(folder, 0o700);
  // One write at a time per file; Baileys writes the same key from several events.
  const chains = new Map<string, Promise<void>>();
  const write = (name: string, data: unknown) => {
    const file = path.join(folder, fileNameOf(name));
    const next = (chains.get(file) ?? Promise.resolve()).then(() => writePrivate(file, JSON.stringify(data, BufferJSON.replacer)));
    chains.set(file, next.catch(() => {}));
    return next;
  };
  const read = async (name: string): Promise<unknown> => {
    try {
      return JSON.parse(await readFile(path.join(folder, fileNameOf(name)), 'utf8'), BufferJSON.reviver);
    } catch {
      return null;
    }
  };
  const creds = ((await read('creds')) as AuthenticationCreds | null) ?? initAuthCreds();
  return {
    state: {
      creds,
      keys: {
        get: async <T extends keyof SignalDataTypeMap>(type: T, ids: string[]) => {
          const data: { [id: string]: SignalDataTypeMap[T] } = {};
          await Promise.all(
            ids.map(async (id) => {
              let value = await read(`${type}-${id}`);
              if (type === 'app-state-sync-key' && value) value = proto.Message.AppStateSyncKeyData.fromObject(value as object);
              data[id] = value as SignalDataTypeMap[T];
            }),
          );
          return data;
        },
        set: async (data) => {
          const tasks: Promise<void>[] = [];
          for (const category of Object.keys(data) as (keyof SignalDataTypeMap)[]) {
            for (const [id, value] of Object.entries(data[category] ?? {})) {
              const name = `${category}-${id}`;
              tasks.push(value ? write(name, value) : unlink(path.join(folder, fileNameOf(name))).catch(() => {}));
            }
          }
          await Promise.all(tasks);
        },
      },
    },
    saveCreds: () => write('creds', creds),
  };
}

/** Removes every file of a login (after WhatsApp logged the box out: the keys are worthless then). */
export async function clearAuthState(folder: string): Promise<void> {
  const names = await readdir(folder).catch(() => [] as string[]);
  await Promise.all(names.map((name) => rm(path.join(folder, name), { force: true })));
}

async function writePrivate(file: string, text: string): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  const handle = await open(temp, 'w', 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, file);
}
