/**
 * The knowledge base: documents cut into passages, kept in one SQLite file with an FTS5 index (BM25
 * ranking), and optionally an embedding per passage for hybrid search (BM25 and cosine similarity,
 * fused by reciprocal rank). A document is re-indexed when its size or mtime changed and its sha256 did
 * too; every bound (documents, passages, bytes) is checked before anything is written, so a refused
 * document changes nothing.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { ClawboxError } from '../runtime/errors.js';
import { chunkText } from './chunk.js';
import type { KnowledgeConfig } from './config-schema.js';
import { extractText, isSupported } from './extract.js';

// better-sqlite3 is loaded when a knowledge base is opened, so a box without one never pays for it.
const requireCjs = createRequire(import.meta.url);

/** Turns texts into vectors (an embedding model); the id names the model, so a new model re-embeds. */
export interface Embedder {
  readonly id: string;
  embed(texts: readonly string[], signal?: AbortSignal): Promise<Float32Array[]>;
}

export interface KnowledgeDocument {
  source: string;
  title: string;
  sha256: string;
  bytes: number;
  chunks: number;
  indexed_at: string;
}

export interface SearchHit {
  /** The document's path. */
  source: string;
  title: string;
  /** The headings above the passage ("Heating > Eco mode"). */
  heading: string;
  text: string;
  /** Higher is better; BM25 (negated) alone, or the fused rank score in hybrid mode. */
  score: number;
  /** How it was found. */
  via: 'bm25' | 'hybrid';
}

export interface AddReport {
  added: string[];
  updated: string[];
  unchanged: string[];
  removed: string[];
  skipped: Array<{ source: string; code: string; reason: string }>;
}

type Limits = Pick<KnowledgeConfig, 'max_documents' | 'max_document_bytes' | 'max_total_bytes' | 'max_chunks' | 'chunk_chars'>;

const MAX_DEPTH = 8;
const MAX_QUERY_TERMS = 16;
/** Common words that match everywhere and rank nothing. */
const STOPWORDS = new Set(
  'a an and are as at be by can do does for from how i in is it me my of on or say says tell the this to what when where which who why with you your about manual says document docs'.split(' '),
);

export class KnowledgeBase {
  readonly #db: Database.Database;
  readonly #limits: Limits;
  readonly #embedder: Embedder | null;

  constructor(file: string, limits: Limits, embedder: Embedder | null = null) {
    mkdirSync(path.dirname(file), { recursive: true });
    const SQLite = requireCjs('better-sqlite3') as typeof Database;
    this.#db = new SQLite(file);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('busy_timeout = 5000');
    this.#db.pragma('foreign_keys = ON');
    const hadTrigrams = this.#db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'chunks_tri'").get() !== undefined;
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS documents (
        id INTEGER PRIMARY KEY, source TEXT UNIQUE NOT NULL, title TEXT NOT NULL, sha256 TEXT NOT NULL,
        mtime_ms REAL NOT NULL, bytes INTEGER NOT NULL, text_bytes INTEGER NOT NULL, chunks INTEGER NOT NULL, indexed_at TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS chunks (
        id INTEGER PRIMARY KEY, document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
        ord INTEGER NOT NULL, heading TEXT NOT NULL, text TEXT NOT NULL, vector BLOB, vector_model TEXT);
      CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document_id);
      CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(heading, text, content='chunks', content_rowid='id', tokenize='unicode61 remove_diacritics 2');
      CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
        INSERT INTO chunks_fts(rowid, heading, text) VALUES (new.id, new.heading, new.text); END;
      CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
        INSERT INTO chunks_fts(chunks_fts, rowid, heading, text) VALUES ('delete', old.id, old.heading, old.text); END;
      -- Chinese and Japanese have no spaces between words: a trigram index finds them by substrings.
      CREATE VIRTUAL TABLE IF NOT EXISTS chunks_tri USING fts5(heading, text, content='chunks', content_rowid='id', tokenize='trigram');
      CREATE TRIGGER IF NOT EXISTS chunks_tri_ai AFTER INSERT ON chunks BEGIN
        INSERT INTO chunks_tri(rowid, heading, text) VALUES (new.id, new.heading, new.text); END;
      CREATE TRIGGER IF NOT EXISTS chunks_tri_ad AFTER DELETE ON chunks BEGIN
        INSERT INTO chunks_tri(chunks_tri, rowid, heading, text) VALUES ('delete', old.id, old.heading, old.text); END;
    `);
    if (!hadTrigrams) this.#db.exec("INSERT INTO chunks_tri(chunks_tri) VALUES ('rebuild')");
    this.#limits = limits;
    this.#embedder = embedder;
  }

  close(): void {
    this.#db.close();
  }

  list(): KnowledgeDocument[] {
    return this.#db.prepare('SELECT source, title, sha256, bytes, chunks, indexed_at FROM documents ORDER BY source').all() as KnowledgeDocument[];
  }

  totals(): { documents: number; chunks: number; text_bytes: number } {
    return this.#db.prepare('SELECT COUNT(*) AS documents, COALESCE(SUM(chunks), 0) AS chunks, COALESCE(SUM(text_bytes), 0) AS text_bytes FROM documents').get() as {
      documents: number;
      chunks: number;
      text_bytes: number;
    };
  }

  /**
   * Indexes a file, or every supported file under a folder (hidden entries skipped, at most 8 levels deep).
   * Documents indexed before from under a folder that are gone now are removed.
   */
  async add(target: string, signal?: AbortSignal): Promise<AddReport> {
    const report: AddReport = { added: [], updated: [], unchanged: [], removed: [], skipped: [] };
    const absolute = path.resolve(target);
    let stat: ReturnType<typeof statSync>;
    try {
      stat = statSync(absolute);
    } catch {
      throw new ClawboxError('NOT_FOUND', `${target}: no such file or folder`);
    }
    if (stat.isDirectory()) {
      const files = walk(absolute);
      for (const file of files) {
        signal?.throwIfAborted();
        await this.#addFile(file, report);
      }
      const present = new Set(files);
      for (const doc of this.list()) {
        if (isUnder(doc.source, absolute) && !present.has(doc.source)) {
          this.#remove(doc.source);
          report.removed.push(doc.source);
        }
      }
    } else {
      if (!isSupported(absolute)) throw extractTypeError(absolute);
      await this.#addFile(absolute, report, true);
    }
    return report;
  }

  /** Checks every indexed document against its file: changed ones are re-indexed, missing ones removed. */
  async refresh(signal?: AbortSignal): Promise<AddReport> {
    const report: AddReport = { added: [], updated: [], unchanged: [], removed: [], skipped: [] };
    for (const doc of this.list()) {
      signal?.throwIfAborted();
      let exists = true;
      try {
        exists = statSync(doc.source).isFile();
      } catch {
        exists = false;
      }
      if (!exists) {
        this.#remove(doc.source);
        report.removed.push(doc.source);
      } else await this.#addFile(doc.source, report);
    }
    return report;
  }

  /** Removes a document, or every document under a folder; returns the sources removed (NOT_FOUND if none). */
  remove(target: string): string[] {
    const absolute = path.resolve(target);
    const gone = this.list()
      .map((d) => d.source)
      .filter((source) => source === absolute || isUnder(source, absolute) || source === target);
    if (gone.length === 0) throw new ClawboxError('NOT_FOUND', `${target} is not in the knowledge base`);
    for (const source of gone) this.#remove(source);
    return gone;
  }

  #remove(source: string): void {
    this.#db.prepare('DELETE FROM documents WHERE source = ?').run(source);
  }

  async #addFile(file: string, report: AddReport, explicit = false): Promise<void> {
    const skip = (error: unknown) => {
      const e = error instanceof ClawboxError ? error : new ClawboxError('PAYLOAD_INVALID', (error as Error).message);
      if (explicit) throw e;
      report.skipped.push({ source: file, code: e.code, reason: e.message });
    };
    try {
      const stat = statSync(file);
      if (stat.size > this.#limits.max_document_bytes) {
        throw new ClawboxError('PAYLOAD_TOO_LARGE', `${path.basename(file)} has ${stat.size} bytes; the limit is ${this.#limits.max_document_bytes} (knowledge.max_document_bytes)`);
      }
      const known = this.#db.prepare('SELECT id, sha256, mtime_ms, bytes FROM documents WHERE source = ?').get(file) as
        | { id: number; sha256: string; mtime_ms: number; bytes: number }
        | undefined;
      const needsVectors = this.#embedder !== null && known !== undefined && this.#missingVectors(known.id);
      if (known && known.mtime_ms === stat.mtimeMs && known.bytes === stat.size && !needsVectors) {
        report.unchanged.push(file);
        return;
      }
      const content = readFileSync(file);
      const sha256 = createHash('sha256').update(content).digest('hex');
      if (known && known.sha256 === sha256 && !needsVectors) {
        this.#db.prepare('UPDATE documents SET mtime_ms = ? WHERE id = ?').run(stat.mtimeMs, known.id);
        report.unchanged.push(file);
        return;
      }
      const { title, text } = extractText(file, content.toString('utf8'));
      // The title heading above everything says nothing a citation does not already say.
      const passages = chunkText(text, this.#limits.chunk_chars).map((p) => ({
        ...p,
        heading: p.heading === title ? '' : p.heading.startsWith(`${title} > `) ? p.heading.slice(title.length + 3) : p.heading,
      }));
      const textBytes = passages.reduce((n, p) => n + Buffer.byteLength(p.text), 0);
      this.#checkBounds(known?.id, passages.length, textBytes, file);
      const vectors = this.#embedder ? await this.#embedder.embed(passages.map((p) => embeddingText(title, p.heading, p.text))) : null;
      const write = this.#db.transaction(() => {
        if (known) this.#db.prepare('DELETE FROM documents WHERE id = ?').run(known.id);
        const { lastInsertRowid } = this.#db
          .prepare('INSERT INTO documents (source, title, sha256, mtime_ms, bytes, text_bytes, chunks, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
          .run(file, title, sha256, stat.mtimeMs, stat.size, textBytes, passages.length, new Date().toISOString());
        const insert = this.#db.prepare('INSERT INTO chunks (document_id, ord, heading, text, vector, vector_model) VALUES (?, ?, ?, ?, ?, ?)');
        passages.forEach((p, i) => {
          const vector = vectors?.[i];
          insert.run(lastInsertRowid, i, p.heading, p.text, vector ? Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength) : null, vector ? this.#embedder!.id : null);
        });
      });
      write();
      (known ? report.updated : report.added).push(file);
    } catch (error) {
      skip(error);
    }
  }

  #missingVectors(documentId: number): boolean {
    const row = this.#db.prepare('SELECT COUNT(*) AS n FROM chunks WHERE document_id = ? AND (vector_model IS NULL OR vector_model != ?)').get(documentId, this.#embedder!.id) as { n: number };
    return row.n > 0;
  }

  #checkBounds(replacing: number | undefined, chunks: number, textBytes: number, file: string): void {
    const others = this.#db
      .prepare('SELECT COUNT(*) AS documents, COALESCE(SUM(chunks), 0) AS chunks, COALESCE(SUM(text_bytes), 0) AS text_bytes FROM documents WHERE id IS NOT ?')
      .get(replacing ?? null) as { documents: number; chunks: number; text_bytes: number };
    const name = path.basename(file);
    const L = this.#limits;
    if (others.documents + 1 > L.max_documents) throw new ClawboxError('LIMIT_REACHED', `${name}: the knowledge base holds ${others.documents} documents; the limit is ${L.max_documents} (knowledge.max_documents)`);
    if (others.chunks + chunks > L.max_chunks) throw new ClawboxError('LIMIT_REACHED', `${name}: ${chunks} more passages would exceed ${L.max_chunks} (knowledge.max_chunks)`);
    if (others.text_bytes + textBytes > L.max_total_bytes) throw new ClawboxError('LIMIT_REACHED', `${name}: ${textBytes} more bytes of text would exceed ${L.max_total_bytes} (knowledge.max_total_bytes)`);
  }

  /** The best passages for a question: BM25 over passages and headings; hybrid when an embedder is set. */
  async search(query: string, limit = 5, signal?: AbortSignal): Promise<SearchHit[]> {
    const wanted = Math.max(1, Math.min(limit, 50));
    // Text with Chinese (or Japanese) characters is matched by their trigrams; everything else by words.
    const trigrams = cjkTrigramQuery(query);
    const [table, match] = trigrams ? ['chunks_tri', trigrams] : ['chunks_fts', ftsQuery(query)];
    const bm25 = match
      ? (this.#db
          .prepare(
            `SELECT c.id, d.source, d.title, c.heading, c.text, bm25(${table}, 2.0, 1.0) AS rank
             FROM ${table} JOIN chunks c ON c.id = ${table}.rowid JOIN documents d ON d.id = c.document_id
             WHERE ${table} MATCH ? ORDER BY rank LIMIT ?`,
          )
          .all(match, this.#embedder ? 50 : wanted) as Array<{ id: number; source: string; title: string; heading: string; text: string; rank: number }>)
      : [];
    if (!this.#embedder) return bm25.map((r) => ({ source: r.source, title: r.title, heading: r.heading, text: r.text, score: -r.rank, via: 'bm25' as const }));
    const [queryVector] = await this.#embedder.embed([query], signal);
    const rows = this.#db
      .prepare('SELECT c.id, d.source, d.title, c.heading, c.text, c.vector FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.vector IS NOT NULL AND c.vector_model = ?')
      .all(this.#embedder.id) as Array<{ id: number; source: string; title: string; heading: string; text: string; vector: Buffer }>;
    const byVector = rows
      .map((r) => ({ ...r, similarity: cosine(queryVector!, new Float32Array(r.vector.buffer.slice(r.vector.byteOffset, r.vector.byteOffset + r.vector.byteLength))) }))
      .sort((a, b) => b.similarity - a.similarity)
      .slice(0, 50);
    // Reciprocal rank fusion: robust to the two scores having nothing in common.
    const fused = new Map<number, { hit: Omit<SearchHit, 'score' | 'via'>; score: number }>();
    const fuse = (list: ReadonlyArray<{ id: number; source: string; title: string; heading: string; text: string }>) =>
      list.forEach((r, rank) => {
        const entry = fused.get(r.id) ?? { hit: { source: r.source, title: r.title, heading: r.heading, text: r.text }, score: 0 };
        entry.score += 1 / (60 + rank + 1);
        fused.set(r.id, entry);
      });
    fuse(bm25);
    fuse(byVector);
    return [...fused.values()]
      .sort((a, b) => b.score - a.score)
      .slice(0, wanted)
      .map((e) => ({ ...e.hit, score: e.score, via: 'hybrid' as const }));
  }
}

/** The user's words as an FTS5 query: each word quoted (no FTS syntax gets through), prefix-matched, OR-ed. */
export function ftsQuery(query: string): string | null {
  const words = (query.toLowerCase().normalize('NFKC').match(/[\p{L}\p{N}]+/gu) ?? []).filter((w) => !STOPWORDS.has(w));
  const unique = [...new Set(words)].slice(0, MAX_QUERY_TERMS);
  if (unique.length === 0) return null;
  return unique.map((w) => (w.length >= 3 ? `"${w}"*` : `"${w}"`)).join(' OR ');
}

const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]+/gu;

/** The Chinese/Japanese runs of a query as overlapping trigrams, quoted and OR-ed; null when it has none. */
export function cjkTrigramQuery(query: string): string | null {
  const runs = query.normalize('NFKC').match(CJK) ?? [];
  const grams = new Set<string>();
  for (const run of runs) {
    const chars = [...run];
    if (chars.length < 3) continue;
    for (let i = 0; i + 3 <= chars.length && grams.size < 64; i++) grams.add(chars.slice(i, i + 3).join(''));
  }
  return grams.size === 0 ? null : [...grams].map((g) => `"${g}"`).join(' OR ');
}

function embeddingText(title: string, heading: string, text: string): string {
  return [title, heading, text].filter(Boolean).join('\n');
}

function cosine(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return -1;
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

function isUnder(file: string, dir: string): boolean {
  const relative = path.relative(dir, file);
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
}

function extractTypeError(file: string): ClawboxError {
  try {
    extractText(file, '');
  } catch (error) {
    if (error instanceof ClawboxError) return error;
  }
  return new ClawboxError('PAYLOAD_INVALID', `${file}: unsupported document type`);
}

/** Supported files under a folder, sorted; hidden entries and symlinks skipped. */
function walk(dir: string, depth = 0): string[] {
  if (depth > MAX_DEPTH) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(full, depth + 1));
    else if (entry.isFile() && isSupported(full)) out.push(full);
  }
  return out;
}
