/**
 * Text out of a document: Markdown and plain text as they are, HTML with its markup removed and its
 * headings kept as Markdown headings, so one chunker serves all three. The title is the first heading,
 * else the file name.
 */
import path from 'node:path';
import { ClawboxError } from '../runtime/errors.js';

export const SUPPORTED_EXTENSIONS = new Set(['.md', '.markdown', '.txt', '.text', '.html', '.htm']);

export interface ExtractedDocument {
  title: string;
  /** Markdown-ish text: `#` headings, paragraphs separated by blank lines. */
  text: string;
}

export function isSupported(file: string): boolean {
  return SUPPORTED_EXTENSIONS.has(path.extname(file).toLowerCase());
}

export function extractText(file: string, content: string): ExtractedDocument {
  const ext = path.extname(file).toLowerCase();
  if (!SUPPORTED_EXTENSIONS.has(ext)) {
    throw new ClawboxError('PAYLOAD_INVALID', `${path.basename(file)}: unsupported document type (supported: ${[...SUPPORTED_EXTENSIONS].join(' ')})`);
  }
  if (content.includes('\u0000')) throw new ClawboxError('PAYLOAD_INVALID', `${path.basename(file)}: not a text document`);
  const text = ext === '.html' || ext === '.htm' ? htmlToText(content) : content.replace(/\r\n?/g, '\n');
  const heading = /^#{1,6}\s+(.+?)\s*#*\s*$/m.exec(text)?.[1];
  const htmlTitle = ext.startsWith('.htm') ? /<title[^>]*>([\s\S]*?)<\/title>/i.exec(content)?.[1] : undefined;
  // A plain text's first line is its title when it stands alone and is short.
  const firstLine = ext === '.txt' || ext === '.text' ? /^\s*([^\n]{1,100})\n\s*\n/.exec(text)?.[1]?.trim() : undefined;
  const title = (htmlTitle ? decodeEntities(htmlTitle).trim() : '') || heading || firstLine || path.basename(file);
  return { title: title.slice(0, 200), text };
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', deg: '°', ndash: '–', mdash: '—', hellip: '…', copy: '©', reg: '®' };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, name: string) => {
    if (name[0] === '#') {
      const code = name[1] === 'x' || name[1] === 'X' ? Number.parseInt(name.slice(2), 16) : Number.parseInt(name.slice(1), 10);
      return Number.isFinite(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
}

/** HTML to Markdown-ish text: scripts, styles and comments dropped; headings, paragraphs and list items kept apart. */
export function htmlToText(html: string): string {
  let s = html
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<(script|style|noscript|template|head)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<h([1-6])\b[^>]*>([\s\S]*?)<\/h\1\s*>/gi, (_m, level: string, inner: string) => `\n\n${'#'.repeat(Number(level))} ${inner.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim()}\n\n`)
    .replace(/<li\b[^>]*>/gi, '\n- ')
    .replace(/<(br|hr)\b[^>]*>/gi, '\n')
    .replace(/<\/?(p|div|section|article|header|footer|main|ul|ol|table|tr|blockquote|pre|dl|dt|dd|nav|aside|figure)\b[^>]*>/gi, '\n\n')
    .replace(/<\/?(td|th)\b[^>]*>/gi, ' ')
    .replace(/<[^>]*>/g, '');
  s = decodeEntities(s);
  return s
    .split('\n')
    .map((line) => line.replace(/[ \t\f\v]+/g, ' ').trim())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}
