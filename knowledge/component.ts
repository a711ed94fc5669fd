/**
 * The knowledge base as a runtime component: opens `<state>/knowledge/knowledge.sqlite`, indexes the
 * configured folders in the background, checks them again every `rescan_s`, and offers kb.search and
 * kb.list at the front door (and on MQTT as `bridge/request/kb/search|list`). A box with no folders
 * configured and no file yet (`clawbox kb add` makes it) has nothing to search: SQLite and the index open
 * on the first search or list that finds the file, not at start, which most boxes never need.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Component, RuntimeContext } from '../runtime/context.js';
import type { Logger } from '../runtime/logging.js';
import type { FrontDoor } from '../runtime/operations/front-door.js';
import type { MqttAdapter } from '../runtime/operations/mqtt-adapter.js';
import { KNOWLEDGE_DEFAULTS, type KnowledgeConfig } from './config-schema.js';
import { type LlamaEmbedder, loadLlamaEmbedder } from './embedder.js';
import { type KnowledgeSearcher, knowledgeOperations } from './operations.js';
import type { AddReport, KnowledgeBase } from './store.js';

export function knowledgeFile(stateDir: string): string {
  return path.join(stateDir, 'knowledge', 'knowledge.sqlite');
}

/** What a base with nothing indexed answers. */
const NOTHING_INDEXED: KnowledgeSearcher = { search: async () => [], list: () => [] };

interface Deferred {
  config: KnowledgeConfig;
  logger: Logger;
  file: string;
}

export class KnowledgeComponent implements Component {
  readonly name = 'knowledge';
  #kb: KnowledgeBase | null = null;
  #embedder: LlamaEmbedder | null = null;
  #timer: NodeJS.Timeout | null = null;
  #scan: Promise<void> | null = null;
  #abort = new AbortController();
  #unregister: Array<() => void> = [];
  #deferred: Deferred | null = null;
  #opening: Promise<void> | null = null;

  constructor(private readonly api: { frontDoor: FrontDoor; mqtt: MqttAdapter } | null = null) {}

  /** The open knowledge base, or null when it is disabled or stopped. */
  get base(): KnowledgeBase | null {
    return this.#kb;
  }

  async start(ctx: RuntimeContext): Promise<void> {
    const config: KnowledgeConfig = { ...KNOWLEDGE_DEFAULTS, ...((ctx.config as { knowledge?: Partial<KnowledgeConfig> }).knowledge ?? {}) };
    if (this.api) {
      this.#unregister = [
        ...knowledgeOperations(() => this.#searcher()).map((op) => this.api!.frontDoor.register(op)),
        this.api.mqtt.bridge('kb/search', 'kb.search'),
        this.api.mqtt.bridge('kb/list', 'kb.list'),
      ];
    }
    if (!config.enabled) return;
    const logger = ctx.logger('knowledge');
    this.#abort = new AbortController();
    const file = knowledgeFile(ctx.stateDir);
    if (config.dirs.length === 0 && !config.embedding_model && !existsSync(file)) {
      this.#deferred = { config, logger, file };
      return;
    }
    if (config.embedding_model) {
      try {
        this.#embedder = await loadLlamaEmbedder(config.embedding_model);
      } catch (error) {
        logger.warn({ err: error }, 'embedding model not loaded; the knowledge base searches with BM25 only');
      }
    }
    await this.#open(config, logger, file);
  }

  async #open(config: KnowledgeConfig, logger: Logger, file: string): Promise<void> {
    const { KnowledgeBase } = await import('./store.js');
    if (this.#abort.signal.aborted || this.#kb) return;
    this.#kb = new KnowledgeBase(file, config, this.#embedder);
    const scan = () => {
      if (this.#scan) return;
      this.#scan = this.#rescan(config, logger).finally(() => {
        this.#scan = null;
      });
    };
    scan();
    if (config.rescan_s > 0) {
      this.#timer = setInterval(scan, config.rescan_s * 1000);
      this.#timer.unref();
    }
  }

  /** The open base; a deferred one opens once its file exists, and answers as empty until then. */
  async #searcher(): Promise<KnowledgeSearcher | null> {
    const deferred = this.#deferred;
    if (this.#kb || !deferred) return this.#kb;
    if (!existsSync(deferred.file)) return NOTHING_INDEXED;
    this.#opening ??= this.#open(deferred.config, deferred.logger, deferred.file);
    await this.#opening;
    return this.#kb;
  }

  async #rescan(config: KnowledgeConfig, logger: Logger): Promise<void> {
    const kb = this.#kb;
    if (!kb) return;
    const signal = this.#abort.signal;
    try {
      const reports: AddReport[] = [await kb.refresh(signal)];
      for (const dir of config.dirs) {
        try {
          reports.push(await kb.add(dir, signal));
        } catch (error) {
          logger.warn({ err: error, dir }, `knowledge folder ${dir} not indexed`);
        }
      }
      const sum = (key: keyof AddReport) => reports.reduce((n, r) => n + r[key].length, 0);
      for (const r of reports) for (const s of r.skipped) logger.warn({ code: s.code, source: s.source }, `knowledge: skipped ${s.source}: ${s.reason}`);
      if (sum('added') + sum('updated') + sum('removed') > 0) {
        logger.info({ added: sum('added'), updated: sum('updated'), removed: sum('removed'), ...kb.totals() }, 'knowledge base re-indexed');
      }
    } catch (error) {
      if (!signal.aborted) logger.warn({ err: error }, 'knowledge base scan failed');
    }
  }

  async stop(): Promise<void> {
    for (const off of this.#unregister) off();
    this.#unregister = [];
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#abort.abort();
    this.#deferred = null;
    await this.#opening;
    this.#opening = null;
    await this.#scan;
    this.#kb?.close();
    this.#kb = null;
    await this.#embedder?.dispose();
    this.#embedder = null;
  }
}
