/**
 * YAML parsing for config text a user or an attacker may have written: bounded in size, nesting depth,
 * alias expansion and work, so a hostile file or environment value is refused with one clear reason
 * instead of exhausting the stack, the memory or the CPU.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type { CST, Document, LineCounter } from 'yaml';

type YamlPackage = typeof import('yaml');
const require = createRequire(import.meta.url);
let loaded: YamlPackage | undefined;
/**
 * The `yaml` package, loaded for a parse and let go after it (releaseYaml): a box on embedded defaults
 * reads no YAML, and one with a config file reads it at start and when it changes, so neither need hold
 * the parser (some 70 modules) while idle. require() because the parse is synchronous; the package's
 * `node` export is CommonJS either way.
 */
function yaml(): YamlPackage {
  loaded ??= require('yaml') as YamlPackage;
  return loaded;
}

/**
 * Drops the parser's modules from the require cache, so that once nothing uses them (a document handed
 * out keeps what it needs) they are garbage; the next parse loads them again. An ES module that imported
 * `yaml` keeps its own copy.
 */
function releaseYaml(): void {
  if (!loaded) return;
  loaded = undefined;
  const packageDir = path.dirname(require.resolve('yaml/package.json')) + path.sep;
  for (const file of Object.keys(require.cache)) if (file.startsWith(packageDir)) delete require.cache[file];
}

export const YAML_LIMITS = {
  /** A hand-written config is a few KiB; this leaves room for long device lists. */
  maxBytes: 1024 * 1024,
  /** The schema nests about six levels; free-form plugin settings get the rest. */
  maxDepth: 64,
  /** Per anchor, uses times aliases inside it (the `yaml` package's measure); stops "billion laughs". */
  maxAliasCount: 100,
  /** Values after aliases are expanded; bounds what validation has to walk. */
  maxValues: 1_000_000,
} as const;

/** Why a text was refused: `syntax` lists the parser's errors, `limit` is one line naming the bound. */
export class YamlRejected extends Error {
  override readonly name = 'YamlRejected';
  constructor(
    readonly kind: 'syntax' | 'limit',
    readonly problems: readonly string[],
  ) {
    super(problems.join('; '));
  }
}


/**
 * Offset of the first collection nested deeper than `max` in the parser's tokens, or -1. The parser keeps
 * its own stack, but composing its tokens recurses per level, so this runs first and without recursion.
 */
function tooDeepAt(tokens: readonly CST.Token[], max: number): number {
  const stack: Array<[CST.Token, number]> = tokens.map((token) => [token, 0]);
  while (stack.length > 0) {
    const [token, depth] = stack.pop()!;
    if (token.type === 'document') {
      if (token.value) stack.push([token.value, depth]);
    } else if (token.type === 'block-map' || token.type === 'block-seq' || token.type === 'flow-collection') {
      if (depth + 1 > max) return token.offset;
      for (const item of token.items) {
        if ('key' in item && item.key) stack.push([item.key, depth + 1]);
        if (item.value) stack.push([item.value, depth + 1]);
      }
    }
  }
  return -1;
}

/** The first key that appears twice in one mapping, compared as the JS object will see it. */
function duplicateKey(doc: Document.Parsed, lines: LineCounter): string | undefined {
  const YAML = yaml();
  let found: string | undefined;
  // Depth is already bounded, so visit's recursion is safe. The parser's own uniqueKeys check compares
  // every key with every other one, which a file of 100k keys turns into minutes of CPU.
  YAML.visit(doc, {
    Map(_, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        if (!YAML.isScalar(pair.key)) continue;
        const key = String(pair.key.value);
        if (seen.has(key)) {
          found = `map keys must be unique: ${JSON.stringify(key)} repeats at line ${lines.linePos(pair.key.range?.[0] ?? 0).line}`;
          return YAML.visit.BREAK;
        }
        seen.add(key);
      }
      return undefined;
    },
  });
  return found;
}

/** Depth and size of the JS value, without recursion (aliases can nest deeper than the text does). */
function checkValue(value: unknown): string | undefined {
  const stack: Array<[unknown, number]> = [[value, 0]];
  let values = 0;
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (++values > YAML_LIMITS.maxValues) return `more than ${YAML_LIMITS.maxValues} values once aliases are expanded`;
    if (typeof node !== 'object' || node === null) continue;
    if (depth + 1 > YAML_LIMITS.maxDepth) return `nested more than ${YAML_LIMITS.maxDepth} levels deep once aliases are expanded`;
    for (const child of Object.values(node)) stack.push([child, depth + 1]);
  }
  return undefined;
}

/**
 * Parses one YAML document within YAML_LIMITS; throws YamlRejected otherwise. Returns the document
 * (comments and layout intact, for editing) and its plain JS value.
 */
export function parseYamlSafely(text: string): { doc: Document.Parsed; value: unknown } {
  try {
    return parseWithinLimits(text);
  } finally {
    releaseYaml();
  }
}

function parseWithinLimits(text: string): { doc: Document.Parsed; value: unknown } {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > YAML_LIMITS.maxBytes) {
    throw new YamlRejected('limit', [`${bytes} bytes is more than the ${YAML_LIMITS.maxBytes} allowed`]);
  }
  const YAML = yaml();
  const lines = new YAML.LineCounter();
  const tokens = Array.from(new YAML.Parser(lines.addNewLine).parse(text));
  const deepAt = tooDeepAt(tokens, YAML_LIMITS.maxDepth);
  if (deepAt >= 0) {
    throw new YamlRejected('limit', [`nested more than ${YAML_LIMITS.maxDepth} levels deep (line ${lines.linePos(deepAt).line})`]);
  }
  const docs = Array.from(new YAML.Composer({ uniqueKeys: false }).compose(tokens, true, text.length));
  const doc = docs[0]!;
  const errors = doc.errors.map((e) => `${e.message.split('\n')[0]} (line ${lines.linePos(e.pos[0]).line})`);
  if (docs.length > 1) errors.push(`a second document starts at line ${lines.linePos(docs[1]!.range[0]).line}; the config is one document`);
  if (errors.length > 0) throw new YamlRejected('syntax', errors);
  const duplicate = duplicateKey(doc, lines);
  if (duplicate) throw new YamlRejected('syntax', [duplicate]);
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: YAML_LIMITS.maxAliasCount });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (/excessive alias count/i.test(message)) {
      throw new YamlRejected('limit', [`aliases expand too far (more than ${YAML_LIMITS.maxAliasCount} uses); a YAML "billion laughs"?`]);
    }
    throw new YamlRejected('syntax', [message]);
  }
  const tooBig = checkValue(value);
  if (tooBig) throw new YamlRejected('limit', [tooBig]);
  return { doc, value };
}
