/** The reply text of a tool call, decoded while the JSON arrives in arbitrary pieces. */
import t from 'tap';
import { replyTextStream } from './reply-stream.js';

function run(pieces: string[]): string[] {
  const out: string[] = [];
  const push = replyTextStream((text) => out.push(text));
  for (const piece of pieces) push(piece);
  return out;
}

/** Every way of cutting `text` into 1-3 character pieces gives the same decoded text. */
function cuts(text: string): string[][] {
  const all: string[][] = [];
  for (let size = 1; size <= 3; size++) {
    const pieces: string[] = [];
    for (let i = 0; i < text.length; i += size) pieces.push(text.slice(i, i + size));
    all.push(pieces);
  }
  return all;
}

t.test('a reply streams its decoded characters, however the JSON is cut', async (t) => {
  const json = '{"device": "none", "reply": "  It is \\"21\\" \\u00b0C,\\nsunny \\ud83d\\ude00 "}';
  const whole = (JSON.parse(json) as { reply: string }).reply.trim();
  for (const pieces of cuts(json)) {
    const out = run(pieces);
    t.equal(out.join(''), whole, `pieces of ${pieces[0]!.length}: the trimmed reply`);
    t.ok(out.length > 1 || pieces.length < 4, 'in more than one piece');
  }
});

t.test('a device command streams nothing; a reply cut short streams what was whole', async (t) => {
  t.same(run(['{"device": "lamp", "command": {"state": "ON"}}']), []);
  t.same(run(['{"device": "', 'lam', 'p", "command": {"state": "ON"}}']), []);
  t.equal(run(['{"device": "none", "reply": "Hel', 'lo wor']).join(''), 'Hello wor');
  t.equal(run(['{"device": "none", "reply": "caf\\u00', 'e9 ok"}']).join(''), 'café ok', 'an escape cut between pieces');
  t.same(run(['not json at all, and long enough to be sure of it: more than sixty-four characters']), []);
});
