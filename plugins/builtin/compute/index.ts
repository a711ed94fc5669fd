/**
 * compute: maths on mathjs offline, and Wolfram|Alpha (wolfram.ts) for what mathjs cannot answer when an
 * AppID is configured and the box is online; every answer says which of the two gave it. Limits, in order: expression
 * length, parse-tree size, size of any matrix or range it creates, and evaluation time (a vm timeout that
 * interrupts the evaluation itself, so a slow expression fails cleanly without restarting the plugin). The
 * worker's heap limit is the last line. Functions that could reach outside an expression (import,
 * createUnit, evaluate/parse inside expressions, …) are disabled, as mathjs's security notes advise.
 */
import { createRequire } from 'node:module';
import vm from 'node:vm';
import type { MathJsInstance, MathNode } from 'mathjs';
import { readFileSync } from 'node:fs';
import { PluginError, definePlugin } from '../../sdk.js';
import { type WolframConfig, askWolfram } from './wolfram.js';

// mathjs's single-file bundle: the ES module build loads hundreds of files (about 5 s and 80 MB here);
// the bundle loads in a fraction of a second and a third of the memory, same API.
const { all, create } = createRequire(import.meta.url)('mathjs/lib/browser/math.js') as typeof import('mathjs');

interface ComputeConfig {
  max_expression_length: number;
  max_nodes: number;
  max_elements: number;
  timeout_ms: number;
  wolfram?: Partial<WolframConfig> & { app_id_file?: string };
}

/** The Wolfram|Alpha settings when an AppID is configured (inline or in a file), else null. */
function wolframSettings(config: ComputeConfig): WolframConfig | null {
  const w = config.wolfram ?? {};
  let appId = w.app_id;
  if (!appId && w.app_id_file) {
    try {
      appId = readFileSync(w.app_id_file, 'utf8').trim();
    } catch (error) {
      throw new PluginError('CONFIG_INVALID', `wolfram.app_id_file cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (!appId) return null;
  return {
    app_id: appId,
    url: w.url ?? 'https://www.wolframalpha.com/api/v1/llm-api',
    timeout_ms: w.timeout_ms ?? 5000,
    max_chars: w.max_chars ?? 2000,
  };
}

type AnyFn = (...args: unknown[]) => unknown;

export function createCompute(config: ComputeConfig) {
  const math = create(all!, { number: 'number' }) as MathJsInstance;
  const { parse, format, typeOf } = math;
  const original = math as unknown as Record<string, AnyFn>;

  const tooBig = (what: string, count: number) =>
    new PluginError('PAYLOAD_TOO_LARGE', `${what} would have ${count} elements; the limit is ${config.max_elements}`);
  const dims = (args: unknown[]): number => {
    const flat = args.length === 1 && Array.isArray(args[0]) ? (args[0] as unknown[]) : args;
    const numbers = flat.flatMap((a) => (typeof a === 'number' ? a : isMatrix(a) ? a.toArray() : a));
    return numbers.reduce<number>((n, d) => (typeof d === 'number' ? n * Math.max(0, d) : n), 1);
  };
  const guardSize = (name: string) => {
    const fn = original[name]!;
    return (...args: unknown[]) => {
      const size = dims(args.filter((a) => typeof a !== 'string'));
      if (size > config.max_elements) throw tooBig(`${name}()`, size);
      return fn(...args);
    };
  };
  const guardRandom = (name: string) => {
    const fn = original[name]!;
    return (...args: unknown[]) => {
      // Only a size array is a size here: random(1, 100) is a range of values.
      if (Array.isArray(args[0]) || isMatrix(args[0])) {
        const size = dims([args[0]]);
        if (size > config.max_elements) throw tooBig(`${name}()`, size);
      }
      return fn(...args);
    };
  };
  const range = original.range!;
  const disabled = (name: string) => () => {
    throw new PluginError('FORBIDDEN', `${name}() is disabled in compute`);
  };
  math.import(
    {
      zeros: guardSize('zeros'),
      ones: guardSize('ones'),
      identity: guardSize('identity'),
      random: guardRandom('random'),
      randomInt: guardRandom('randomInt'),
      range: (...args: unknown[]) => {
        const count = rangeCount(args);
        if (count > config.max_elements) throw tooBig('range()', count);
        return range(...args);
      },
      ...Object.fromEntries(
        ['import', 'createUnit', 'evaluate', 'parse', 'compile', 'simplify', 'simplifyConstant', 'simplifyCore', 'derivative', 'resolve', 'rationalize', 'reviver', 'parser'].map(
          (name) => [name, disabled(name)],
        ),
      ),
    },
    { override: true },
  );

  const sandbox = vm.createContext({ run: null as null | (() => unknown) });
  const timed = <T>(work: () => T, what: string): T => {
    sandbox.run = work;
    try {
      return vm.runInContext('run()', sandbox, { timeout: config.timeout_ms }) as T;
    } catch (error) {
      if ((error as { code?: string }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') {
        throw new PluginError('DEADLINE_EXCEEDED', `${what} took longer than ${config.timeout_ms} ms`);
      }
      if (error instanceof PluginError) throw error;
      throw new PluginError('PAYLOAD_INVALID', `${what}: ${(error as Error).message}`);
    } finally {
      sandbox.run = null;
    }
  };

  const wolfram = wolframSettings(config);
  const api = {
    evaluate({ expression, precision }: { expression: string; precision?: number }) {
      if (expression.length > config.max_expression_length) {
        throw new PluginError('PAYLOAD_TOO_LARGE', `the expression has ${expression.length} characters; the limit is ${config.max_expression_length}`);
      }
      let node: MathNode;
      try {
        node = parse(expression) as MathNode;
      } catch (error) {
        throw new PluginError('PAYLOAD_INVALID', `cannot parse the expression: ${(error as Error).message}`);
      }
      let nodes = 0;
      node.traverse(() => {
        nodes++;
      });
      if (nodes > config.max_nodes) {
        throw new PluginError('PAYLOAD_TOO_LARGE', `the expression has ${nodes} parts; the limit is ${config.max_nodes}`);
      }
      const code = node.compile();
      const value = timed(() => code.evaluate({}), 'evaluation');
      const text = timed(() => format(value, precision ? { precision } : { precision: 14 }), 'formatting');
      const json = toJson(value);
      return { text, type: typeOf(value), ...(json === undefined ? {} : { value: json }), source: 'mathjs' as const };
    },

    convert({ value, from, to }: { value: number; from: string; to: string }) {
      return timed(() => {
        const converted = math.unit(value, from).to(to);
        const unit = converted.formatUnits();
        return { value: converted.toNumber(unit), unit, text: format(converted, { precision: 14 }) };
      }, `converting ${from} to ${to}`);
    },

    statistics({ values }: { values: number[] }) {
      return timed(() => {
        const n = values.length;
        const variance = n > 1 ? (math.variance(values) as unknown as number) : 0;
        return {
          count: n,
          sum: math.sum(values) as number,
          min: math.min(values) as number,
          max: math.max(values) as number,
          mean: math.mean(values) as number,
          median: math.median(values) as number,
          mode: math.mode(values) as number[],
          variance,
          std: Math.sqrt(variance),
          quartiles: math.quantileSeq(values, [0.25, 0.5, 0.75]) as unknown as number[],
        };
      }, 'statistics');
    },
    /** mathjs first; what it cannot answer goes to Wolfram|Alpha when configured (and reachable). */
    async ask({ query }: { query: string }, signal?: AbortSignal): Promise<{ text: string; source: 'mathjs' | 'wolfram-alpha'; url?: string }> {
      let local: PluginError;
      try {
        return { text: api.evaluate({ expression: query }).text, source: 'mathjs' };
      } catch (error) {
        local = error instanceof PluginError ? error : new PluginError('PAYLOAD_INVALID', (error as Error).message);
        // A limit that was hit is the answer; Wolfram|Alpha is for what mathjs does not understand.
        if (local.code !== 'PAYLOAD_INVALID') throw local;
      }
      if (!wolfram) throw local;
      try {
        const answer = await askWolfram(wolfram, query, signal);
        return { text: answer.text, source: 'wolfram-alpha', ...(answer.url ? { url: answer.url } : {}) };
      } catch (error) {
        // Offline (or Wolfram|Alpha failing): say both why mathjs could not and why Wolfram|Alpha did not.
        if (error instanceof PluginError && ['DEVICE_UNAVAILABLE', 'DEADLINE_EXCEEDED', 'DEVICE_ERROR'].includes(error.code)) {
          throw new PluginError(error.code, `${local.message}; and ${error.message}`, { source: 'wolfram-alpha' });
        }
        throw error;
      }
    },
  };
  return api;
}

function isMatrix(value: unknown): value is { toArray(): unknown[] } {
  return typeof value === 'object' && value !== null && typeof (value as { toArray?: unknown }).toArray === 'function';
}

function rangeCount(args: unknown[]): number {
  if (typeof args[0] === 'string') {
    const parts = args[0].split(':').map(Number);
    const [start = 0, a = 0, b] = parts;
    return b === undefined ? Math.abs(a - start) + 1 : Math.abs((b - start) / (a || 1)) + 1;
  }
  const [start, end, step] = args.map((a) => (typeof a === 'number' ? a : Number(a)));
  if (start === undefined || end === undefined || !Number.isFinite(start) || !Number.isFinite(end)) return Number.POSITIVE_INFINITY;
  const s = step === undefined || step === 0 || !Number.isFinite(step) ? 1 : step;
  return Math.abs((end - start) / s) + 1;
}

/** A plain JSON form of a mathjs value where there is one; undefined otherwise (e.g. a function). */
function toJson(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'boolean' || typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(toJson);
  if (typeof value !== 'object') return undefined;
  const v = value as Record<string, unknown> & { type?: string; isUnit?: boolean; entries?: unknown[] };
  if (v.isUnit) {
    const unit = value as unknown as { formatUnits(): string; toNumber(u: string): number };
    const name = unit.formatUnits();
    return name ? { value: unit.toNumber(name), unit: name } : null;
  }
  if (Array.isArray(v.entries)) return v.entries.map(toJson);
  if (isMatrix(value)) return toJson(value.toArray());
  return String(value);
}

let compute: ReturnType<typeof createCompute> | undefined;

export default definePlugin({
  start(ctx) {
    compute = createCompute(ctx.config as unknown as ComputeConfig);
  },
  tools: {
    evaluate: (args) => compute!.evaluate(args),
    ask: (args, call) => compute!.ask(args, call.signal),
    convert: (args) => compute!.convert(args),
    statistics: (args) => compute!.statistics(args),
  },
});
