/**
 * Passage embeddings from a GGUF embedding model through node-llama-cpp (imported only when a model is
 * configured). CPU only and one thread: indexing runs beside the chat model and must not starve it.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { ClawboxError } from '../runtime/errors.js';
import type { Embedder } from './store.js';

export interface LlamaEmbedder extends Embedder {
  dispose(): Promise<void>;
}

const CONTEXT_TOKENS = 512;

export async function loadLlamaEmbedder(modelPath: string): Promise<LlamaEmbedder> {
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(modelPath);
  } catch {
    throw new ClawboxError('MODEL_FILE_MISSING', `knowledge.embedding_model: ${modelPath} does not exist`);
  }
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', skipDownload: true, progressLogs: false, logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath });
  const contextSize = Math.min(CONTEXT_TOKENS, model.trainContextSize || CONTEXT_TOKENS);
  const context = await model.createEmbeddingContext({ contextSize, threads: 1 });
  // The file's name, size and mtime name the vectors: another model (or a new file) re-embeds.
  const id = `${path.basename(modelPath)}:${stat.size}:${Math.floor(stat.mtimeMs)}`;
  return {
    id,
    async embed(texts, signal) {
      const out: Float32Array[] = [];
      for (const text of texts) {
        signal?.throwIfAborted();
        // A passage longer than the context is embedded by its beginning.
        const tokens = model.tokenize(text).slice(0, contextSize - 8);
        const embedding = await context.getEmbeddingFor(tokens.length > 0 ? tokens : model.tokenize(' '));
        out.push(Float32Array.from(embedding.vector));
      }
      return out;
    },
    async dispose() {
      await context.dispose();
      await model.dispose();
    },
  };
}
