/**
 * JavaScript source with every non-ASCII character written as a `\u` escape. V8 keeps a loaded file's
 * source text for as long as its functions live, and a single character above U+00FF (an em dash in a
 * message, a Chinese keyword) makes it keep the whole file at two bytes per character instead of one.
 * Used by the build on the generated validators and on the compiled runtime (bin/ascii-dist.js).
 *
 * An escape means the same character in a string, a template's cooked text, a regular expression and an
 * identifier. A character right after a backslash would change meaning, and a tagged template sees its raw
 * text, so a source with either is refused (AsciiRefused) rather than guessed at.
 */
export class AsciiRefused extends Error {
  override readonly name = 'AsciiRefused';
}

const NON_ASCII = /[\u0080-\uffff]/g;
const ESCAPED_NON_ASCII = /(^|[^\\])(\\\\)*\\[\u0080-\uffff]/;
/** A template whose text up to the next backtick holds a non-ASCII character, and the token before it. */
const TEMPLATE_WITH_NON_ASCII = /([\w$]+|[)\]`])\s*`[^`]*?[\u0080-\uffff]/g;
/** Words after which a template starts a new expression rather than being tagged. */
const KEYWORDS = new Set(['return', 'case', 'typeof', 'void', 'delete', 'await', 'yield', 'in', 'of', 'else', 'do', 'throw', 'new', 'instanceof']);

/** Whether a tagged template (whose tag sees the raw text) may hold a non-ASCII character; errs towards yes. */
function mayTagNonAscii(source: string): boolean {
  for (const match of source.matchAll(TEMPLATE_WITH_NON_ASCII)) {
    if (!KEYWORDS.has(match[1]!)) return true;
  }
  return false;
}

export function hasNonAscii(source: string): boolean {
  return /[\u0080-\uffff]/.test(source);
}

/** `withoutTemplates`: the caller knows the source has no template literals (generated code), only strings. */
export function asciiOnly(source: string, { withoutTemplates = false } = {}): string {
  if (!hasNonAscii(source)) return source;
  if (ESCAPED_NON_ASCII.test(source)) throw new AsciiRefused('a non-ASCII character follows a backslash');
  if (!withoutTemplates && mayTagNonAscii(source)) throw new AsciiRefused('a tagged template may hold a non-ASCII character');
  return source.replace(NON_ASCII, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
