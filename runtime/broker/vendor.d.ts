// aedes-persistence-level ships no types; this is the part the broker uses.
declare module 'aedes-persistence-level' {
  import type { Level } from 'level';

  interface LevelPersistence {
    destroy(): Promise<void>;
  }
  export default function levelPersistence(db: Level<string, string>): LevelPersistence;
}
