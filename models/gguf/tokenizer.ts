/**
 * A synthetic SentencePiece-style ("llama") vocabulary: <unk>, <s>, </s>, the 256 byte-fallback tokens,
 * every printable ASCII character, then word pieces. llama.cpp's SPM tokenizer builds a word by merging
 * adjacent pieces whose concatenation is in the vocabulary, so every multi-character piece here has its
 * prefix one character shorter in the vocabulary too (prefix-closed): each piece is reachable by merges.
 * Spaces are U+2581 ("▁") as in SentencePiece.
 */

export const SPACE = '\u2581';

export enum TokenType {
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  BYTE = 6,
}

export interface SyntheticVocab {
  tokens: string[];
  scores: Float32Array;
  types: Int32Array;
  bos: number;
  eos: number;
  unk: number;
}

/** Words that appear in clawbox prompts and JSON tool calls, so they tokenize into few pieces. */
const WORDS = [
  'the', 'turn', 'on', 'off', 'set', 'to', 'light', 'lamp', 'kitchen', 'living', 'room', 'hall', 'bed', 'bedroom',
  'thermostat', 'temperature', 'brightness', 'state', 'mode', 'heat', 'cool', 'auto', 'open', 'close', 'stop',
  'position', 'dim', 'what', 'is', 'device', 'command', 'devices', 'you', 'are', 'a', 'home', 'assistant', 'and',
  'of', 'in', 'it', 'for', 'with', 'please', 'user', 'reply', 'answer', 'tool', 'call', 'json', 'true', 'false',
  'null', 'ON', 'OFF', 'OPEN', 'CLOSE', 'STOP', 'TOGGLE', 'switch', 'dimmer', 'sensor', 'cover', 'percent',
  'degrees', 'humidity', 'power', 'fan', 'garage', 'door', 'window', 'blind', 'office', 'garden', 'once', 'upon',
  'time', 'there', 'was', 'little', 'girl', 'boy', 'day', 'she', 'he', 'they', 'said', 'happy', 'play',
];

function* letterPieces(): Generator<string> {
  // Two- and three-letter pieces, with and without the space marker, prefix-closed by construction order.
  const letters = 'etaoinshrdlcumwfgypbvkjxqz';
  for (const a of letters) for (const b of letters) yield SPACE + a + b;
  for (const a of letters) for (const b of letters) yield a + b;
  for (const a of letters) for (const b of letters) for (const c of letters) yield SPACE + a + b + c;
  for (const a of letters) for (const b of letters) for (const c of letters) yield a + b + c;
  for (const a of letters) for (const b of letters) for (const c of letters) for (const d of letters) yield a + b + c + d;
}

/** Builds a vocabulary of exactly `size` tokens (at least 512). */
export function syntheticVocab(size: number): SyntheticVocab {
  if (!Number.isInteger(size) || size < 512) throw new Error(`syntheticVocab: size must be an integer >= 512 (got ${size})`);
  const tokens: string[] = ['<unk>', '<s>', '</s>'];
  const types: number[] = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TokenType.BYTE);
  }
  const seen = new Set<string>();
  const pieces: string[] = [];
  const add = (piece: string): void => {
    if (seen.has(piece)) return;
    // Keep the vocabulary prefix-closed so every piece can be reached by merging.
    if (piece.length > 1) add(piece.slice(0, -1));
    seen.add(piece);
    pieces.push(piece);
  };
  add(SPACE);
  for (let c = 0x21; c < 0x7f; c++) add(String.fromCharCode(c));
  const budget = size - tokens.length;
  for (const word of WORDS) {
    if (pieces.length >= budget) break;
    add(SPACE + word);
  }
  if (pieces.length < budget) {
    for (const piece of letterPieces()) {
      if (pieces.length >= budget) break;
      add(piece);
    }
  }
  pieces.length = Math.min(pieces.length, budget);
  for (const piece of pieces) {
    tokens.push(piece);
    types.push(TokenType.NORMAL);
  }
  if (tokens.length !== size) throw new Error(`syntheticVocab: built ${tokens.length} tokens, wanted ${size}`);
  // SentencePiece scores are log-probabilities; longer pieces score higher so merges prefer whole words.
  const scores = new Float32Array(size);
  for (let i = 0; i < size; i++) scores[i] = types[i] === TokenType.NORMAL ? -1000 + (tokens[i]!.length * 10 - i / size) : 0;
  return { tokens, scores, types: Int32Array.from(types), bos: 1, eos: 2, unk: 0 };
}
