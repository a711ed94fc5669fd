/**
 * node-llama-cpp, imported on first use. Importing it costs about half a second of CPU (more on a small
 * board), which every start paid even with no model configured; now only loading or verifying a model
 * does. Everything else imports its types only (`import type`).
 */
export type NodeLlamaCpp = typeof import('node-llama-cpp');

let loading: Promise<NodeLlamaCpp> | undefined;
let loaded: NodeLlamaCpp | undefined;

/** The node-llama-cpp module, imported once; a failed import is tried again on the next call. */
export function loadNodeLlamaCpp(): Promise<NodeLlamaCpp> {
  loading ??= import('node-llama-cpp').then(
    (module) => {
      loaded = module;
      return module;
    },
    (error: unknown) => {
      loading = undefined;
      throw error;
    },
  );
  return loading;
}

/** The module if an earlier loadNodeLlamaCpp() finished, else undefined (nothing of it can have run yet). */
export function loadedNodeLlamaCpp(): NodeLlamaCpp | undefined {
  return loaded;
}
