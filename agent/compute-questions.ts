/**
 * Maths on the fast path: "what is 15 % of 240", "15*3+2", "sqrt(2)", "12 inch to cm" become a mathjs
 * expression for the compute plugin. Only text made of numbers, operators and a known list of function,
 * constant and unit words counts, so "set the lamp to 50" or "what is love" never reach the calculator.
 */
const WORDS: Readonly<Record<string, string>> = {
  plus: '+',
  minus: '-',
  times: '*',
  'multiplied by': '*',
  'divided by': '/',
  over: '/',
  'to the power of': '^',
  squared: '^2',
  cubed: '^3',
  'square root of': 'sqrt ',
  'cube root of': 'cbrt ',
  mod: ' mod ',
  modulo: ' mod ',
};

/** Function names, constants and units an expression may hold (mathjs spells them like this). */
const ALLOWED = new Set(
  (
    'sqrt cbrt abs round floor ceil exp log log10 log2 sin cos tan asin acos atan sinh cosh tanh deg rad pi e mod ' +
    'min max mean median sum std variance factorial gcd lcm nthroot hypot to in ' +
    'mm cm m km inch inches ft feet foot yd yard yards mi mile miles mg g kg lb lbs oz ml l liter liters litre litres gallon gallons ' +
    'degc degf kelvin celsius fahrenheit s sec second seconds min minute minutes h hour hours day days week weeks kmh mph kwh wh w kw'
  ).split(' '),
);

const QUESTION = /^(?:(?:hey|ok|okay|please|pls|quick question)[,\s]+)*(?:what(?:'s|’s| is| are)|whats|calculate|compute|evaluate|how much is|work out|solve|tell me|can you calculate|could you calculate)?\s*/i;

/** The mathjs expression in `text`, or null when the text is not plainly a calculation. */
export function mathExpression(text: string): { expression: string; asked: string } | null {
  let s = text.normalize('NFKC').trim().replace(/[?？!.。]+$/u, '').trim();
  s = s.replace(QUESTION, '').replace(/\s*(?:=|equals?|is)\s*$/i, '').trim();
  if (!s || s.length > 200) return null;
  const asked = s;
  s = s.toLowerCase().replace(/[×x](?=\s*\d)/g, '*').replace(/÷/g, '/').replace(/−/g, '-');
  // "15 % of 240", "15 percent of 240": a share, not mathjs's modulo.
  s = s.replace(/(\d+(?:\.\d+)?)\s*(?:%|percent|per cent)\s*of\s*/g, '$1 / 100 * ');
  s = s.replace(/(\d+(?:\.\d+)?)\s*(?:%|percent|per cent)/g, '($1 / 100)');
  for (const [word, symbol] of Object.entries(WORDS)) s = s.replace(new RegExp(`\\b${word}\\b`, 'g'), symbol);
  s = s.replace(/°\s*c\b/g, ' degC').replace(/°\s*f\b/g, ' degF').replace(/\s+/g, ' ').trim();
  if (!/\d/.test(s) && !/\b(?:pi|e)\b/.test(s)) return null;
  if (!/^[\d\s+\-*/^().,!a-z]+$/i.test(s)) return null;
  for (const word of s.match(/[a-z_]+/gi) ?? []) if (!ALLOWED.has(word) && !ALLOWED.has(word.toLowerCase())) return null;
  // A calculation has an operator, a function call or a conversion; a bare number is no question.
  if (!/[+\-*/^!]|[a-z]\s*\(|\b(?:sqrt|cbrt|to|in)\b/i.test(s)) return null;
  // "3 in" alone, "to 5": a conversion needs a quantity on both sides.
  if (/^(?:to|in)\b|\b(?:to|in)$/.test(s)) return null;
  return { expression: s.replace(/\b(degc|degf)\b/gi, (u) => (u.toLowerCase() === 'degc' ? 'degC' : 'degF')), asked };
}
