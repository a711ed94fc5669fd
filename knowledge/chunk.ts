/**
 * Cuts a document's text into passages of about `chunkChars` characters: at headings first (each passage
 * remembers the headings it sits under, "Heating > Eco mode"), then at paragraphs, then at sentences; a
 * run without any break is cut hard. Small enough to quote, large enough to answer from.
 */
export interface Passage {
  /** The headings above the passage, outermost first, joined with " > "; empty before the first heading. */
  heading: string;
  text: string;
}

export function chunkText(text: string, chunkChars: number): Passage[] {
  const out: Passage[] = [];
  const trail: string[] = [];
  let paragraphs: string[] = [];
  let size = 0;
  const emit = () => {
    const body = paragraphs.join('\n\n').trim();
    paragraphs = [];
    size = 0;
    if (!body) return;
    for (const piece of cut(body, chunkChars)) out.push({ heading: trail.filter(Boolean).join(' > '), text: piece });
  };
  const add = (lines: string[]) => {
    const paragraph = lines.join('\n').trim();
    if (!paragraph) return;
    if (size > 0 && size + paragraph.length > chunkChars) emit();
    paragraphs.push(paragraph);
    size += paragraph.length;
  };
  for (const block of text.split(/\n\s*\n/)) {
    let lines: string[] = [];
    for (const line of block.split('\n')) {
      const heading = /^(#{1,6})\s+(.+?)\s*#*\s*$/.exec(line);
      if (!heading) {
        lines.push(line);
        continue;
      }
      add(lines);
      lines = [];
      emit();
      const level = heading[1]!.length;
      trail.length = level - 1;
      trail[level - 1] = heading[2]!;
    }
    add(lines);
  }
  emit();
  return out;
}

/** Pieces of at most `size` characters, cut at paragraphs, else sentences, else words, else anywhere. */
function cut(text: string, size: number): string[] {
  if (text.length <= size * 1.5) return [text];
  const pieces: string[] = [];
  let rest = text;
  while (rest.length > size * 1.5) {
    const window = rest.slice(0, size);
    const at = Math.max(window.lastIndexOf('\n\n'), lastSentenceEnd(window));
    const cutAt = at > size / 3 ? at + 1 : window.lastIndexOf(' ') > size / 3 ? window.lastIndexOf(' ') : size;
    pieces.push(rest.slice(0, cutAt).trim());
    rest = rest.slice(cutAt).trim();
  }
  if (rest) pieces.push(rest);
  return pieces;
}

function lastSentenceEnd(text: string): number {
  let best = -1;
  for (const match of text.matchAll(/[.!?。！？](?=\s|$)/g)) best = match.index!;
  return best;
}
