/**
 * `clawbox kb add FILE|DIR … | list | search QUERY | remove FILE|DIR`: the knowledge base in the state
 * directory, edited while the runtime runs or not (SQLite in WAL mode; the runtime sees changes at once).
 * Reads the same config as `clawbox start` for the state directory and the bounds.
 */
import { parseArgs } from 'node:util';
import { type ConfigLoader, resolveStateDir } from '../runtime/config/load.js';
import { ClawboxError, ERROR_CATALOG, toClawboxError } from '../runtime/errors.js';
import { knowledgeFile } from './component.js';
import { KNOWLEDGE_DEFAULTS, type KnowledgeConfig } from './config-schema.js';
import { type LlamaEmbedder, loadLlamaEmbedder } from './embedder.js';
import { type AddReport, KnowledgeBase } from './store.js';

export const KB_HELP = `Usage:
  clawbox kb add FILE|DIR ... [--config FILE]     index documents (Markdown, text, HTML); a folder: every one
                                                  under it, and indexed ones that are gone are removed
  clawbox kb list [--json]                        the documents, their passages and when they were indexed
  clawbox kb search QUERY... [--limit N] [--json] the best passages with their source
  clawbox kb remove FILE|DIR ...                  drop documents from the index (the files stay)
Options: --config FILE, --state-dir DIR (default: the state directory of the config).
`;

export interface KbCommandIo {
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  env?: NodeJS.ProcessEnv;
}

export async function runKbCommand(args: readonly string[], loadConfig: ConfigLoader['loadConfig'], io: KbCommandIo = {}): Promise<number> {
  const out = io.stdout ?? ((text: string) => void process.stdout.write(text));
  const err = io.stderr ?? ((text: string) => void process.stderr.write(text));
  const env = io.env ?? process.env;
  let kb: KnowledgeBase | null = null;
  let embedder: LlamaEmbedder | null = null;
  try {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        'state-dir': { type: 'string' },
        json: { type: 'boolean', default: false },
        limit: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    const [command, ...rest] = positionals;
    if (values.help || command === undefined || command === 'help') {
      out(KB_HELP);
      return command === undefined && !values.help ? ERROR_CATALOG.USAGE.exit : 0;
    }
    if (values.config === '') throw new ClawboxError('USAGE', '--config needs a file path');
    const { config } = loadConfig({ ...(values.config ? { file: values.config } : {}), env });
    const settings: KnowledgeConfig = { ...KNOWLEDGE_DEFAULTS, ...((config as { knowledge?: Partial<KnowledgeConfig> }).knowledge ?? {}) };
    const stateDir = values['state-dir'] ?? resolveStateDir(config, env);
    const open = async (withEmbeddings: boolean) => {
      if (withEmbeddings && settings.embedding_model) embedder = await loadLlamaEmbedder(settings.embedding_model);
      kb = new KnowledgeBase(knowledgeFile(stateDir), settings, embedder);
      return kb;
    };
    switch (command) {
      case 'add': {
        if (rest.length === 0) throw new ClawboxError('USAGE', 'kb add needs a file or folder');
        const base = await open(true);
        const reports: AddReport[] = [];
        for (const target of rest) reports.push(await base.add(target));
        const all = (key: keyof AddReport): unknown[] => reports.flatMap((r): unknown[] => r[key]);
        if (values.json) out(`${JSON.stringify({ added: all('added'), updated: all('updated'), unchanged: all('unchanged'), removed: all('removed'), skipped: all('skipped'), totals: base.totals() }, null, 2)}\n`);
        else {
          for (const key of ['added', 'updated', 'unchanged', 'removed'] as const) for (const source of reports.flatMap((r) => r[key] as string[])) out(`${key.padEnd(9)} ${source}\n`);
          for (const s of reports.flatMap((r) => r.skipped)) out(`skipped   ${s.source}: ${s.code}: ${s.reason}\n`);
          const t = base.totals();
          out(`knowledge base: ${t.documents} documents, ${t.chunks} passages, ${t.text_bytes} bytes of text\n`);
        }
        return reports.some((r) => r.skipped.length > 0) ? 1 : 0;
      }
      case 'list': {
        if (rest.length > 0) throw new ClawboxError('USAGE', `kb list takes no arguments (got ${rest.join(' ')})`);
        const docs = (await open(false)).list();
        if (values.json) out(`${JSON.stringify({ documents: docs }, null, 2)}\n`);
        else if (docs.length === 0) out('the knowledge base is empty (clawbox kb add FILE|DIR)\n');
        else for (const d of docs) out(`${d.source}  "${d.title}"  ${d.chunks} passages, ${d.bytes} bytes, indexed ${d.indexed_at}\n`);
        return 0;
      }
      case 'search': {
        const query = rest.join(' ').trim();
        if (!query) throw new ClawboxError('USAGE', 'kb search needs a query');
        const limit = values.limit === undefined ? 5 : Number(values.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 50) throw new ClawboxError('USAGE', '--limit must be an integer from 1 to 50');
        const hits = await (await open(true)).search(query, limit);
        if (values.json) out(`${JSON.stringify({ hits }, null, 2)}\n`);
        else if (hits.length === 0) out('no passage matches\n');
        else for (const h of hits) out(`${h.source}${h.heading ? ` — ${h.heading}` : ''}  (score ${h.score.toFixed(3)})\n  ${h.text.replace(/\s+/g, ' ').slice(0, 300)}\n`);
        return hits.length === 0 ? 1 : 0;
      }
      case 'remove': {
        if (rest.length === 0) throw new ClawboxError('USAGE', 'kb remove needs a file or folder');
        const base = await open(false);
        for (const target of rest) for (const source of base.remove(target)) out(`removed ${source}\n`);
        return 0;
      }
      default:
        throw new ClawboxError('USAGE', `unknown kb command "${command}"\n${KB_HELP}`);
    }
  } catch (error) {
    const e = toClawboxError(error);
    err(`clawbox kb: ${e.code}: ${e.message}\n`);
    return e.spec.exit;
  } finally {
    (kb as KnowledgeBase | null)?.close();
    await (embedder as LlamaEmbedder | null)?.dispose();
  }
}
