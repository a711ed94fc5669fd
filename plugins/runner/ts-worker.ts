/**
 * Starts a worker thread on a module that may be TypeScript: from the sources (tsx) a worker does not
 * inherit the tsx loader, so it registers tsx itself before importing the module; from dist/ it is a
 * plain worker on the compiled .js.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** The URL of a sibling module, .ts when the caller runs from sources, .js from dist/. */
export function siblingModule(callerUrl: string, basename: string): URL {
  return new URL(`./${basename}${callerUrl.endsWith('.ts') ? '.ts' : '.js'}`, callerUrl);
}

export function startModuleWorker(moduleUrl: URL, options: WorkerOptions = {}): Worker {
  if (!moduleUrl.pathname.endsWith('.ts')) return new Worker(moduleUrl, options);
  // Only reached from sources, where tsx (a dev dependency) is installed.
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(moduleUrl.href)}); })`;
  return new Worker(code, { ...options, eval: true });
}
