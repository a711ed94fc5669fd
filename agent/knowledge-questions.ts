/**
 * Questions that ask what the documents say ("what does the manual say about eco mode", "according to the
 * house rules, when are quiet hours", "look up frost protection in the manual", "手册里关于节能模式怎么说").
 * Answered on the fast path with the best passage of the knowledge base and its source.
 */
const DOCS = '(?:the |my |our |your )?(?:user )?(?<docs>manual|manuals|docs?|documentation|guide|handbook|house rules|rules|instructions?|knowledge base|notes?|faq)';

const PATTERNS: readonly RegExp[] = [
  new RegExp(`^(?:what|how) (?:does|do|did) ${DOCS} (?:say|tell(?: me| us)?|mention|write|state|explain) (?:about|on|regarding|of) (?<topic>.+)$`, 'i'),
  new RegExp(`^(?:what|how) (?:does|do) ${DOCS} say,? (?<topic>.+)$`, 'i'),
  new RegExp(`^(?:according to|in) ${DOCS},? (?<topic>.+)$`, 'i'),
  new RegExp(`^(?:look up|search(?: for)?|find|check) (?<topic>.+?) in ${DOCS}$`, 'i'),
  new RegExp(`^(?:search|check|look in|consult) ${DOCS} (?:for|about|on) (?<topic>.+)$`, 'i'),
  /^(?<docs>手册|说明书|文档|家规|资料)(?:里|中|上)?(?:关于|对)?(?<topic>.+?)(?:是)?(?:怎么说的?|说了什么|写了什么|有什么说法)$/u,
];

/** What to search for, or null when the text does not ask the documents. */
export function knowledgeQuestion(text: string): { query: string; about: string } | null {
  const s = text.normalize('NFKC').trim().replace(/[?？!.。]+$/u, '').trim();
  for (const pattern of PATTERNS) {
    const m = pattern.exec(s);
    if (!m) continue;
    const docs = m.groups?.docs;
    const about = (m.groups?.topic ?? '').trim();
    if (!about) return null;
    // The kind of document helps rank ("house rules" about quiet hours); generic words are stop words there.
    return { query: `${about} ${docs ?? ''}`.trim(), about };
  }
  return null;
}
