// aedes-persistence-level ships no types; this is the part the broker uses.
declare module 'aedes-persistence-level' {
  interface LevelPersistence {
    destroy(): Promise<void>;
  }
  /** `db`: an abstract-level database, or anything with the part of its API the persistence uses (GroupCommitDb). */
  export default function levelPersistence(db: object): LevelPersistence;
}
