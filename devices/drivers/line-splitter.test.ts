import t from 'tap';
import { LineSplitter } from './line-splitter.js';

function collect(delimiter: string, maxLineBytes?: number) {
  const lines: string[] = [];
  const overflows: number[] = [];
  const splitter = new LineSplitter(delimiter, (line) => lines.push(line), (bytes) => overflows.push(bytes), maxLineBytes);
  return { splitter, lines, overflows };
}

t.test('lines split at the delimiter, across reads, several in one read, a partial one kept for the next', async (t) => {
  const { splitter, lines } = collect('\n');
  splitter.push(Buffer.from('OK DIM 4'));
  t.same(lines, [], 'nothing before the delimiter');
  splitter.push(Buffer.from('0\nOK POWER ON\nSTATUS'));
  t.same(lines, ['OK DIM 40', 'OK POWER ON']);
  splitter.push(Buffer.from(' ON 40 21.5\n\n'));
  t.same(lines, ['OK DIM 40', 'OK POWER ON', 'STATUS ON 40 21.5', ''], 'an empty line is a line');
});

t.test('a multi-byte delimiter split across reads, and a UTF-8 character split across reads', async (t) => {
  const { splitter, lines } = collect('\r\n');
  const text = Buffer.from('TEMP 21.5 °C\r\nERR zu heiß\r\n', 'utf8');
  // Every split point, one byte at a time at the worst.
  for (let i = 0; i < text.length; i++) splitter.push(text.subarray(i, i + 1));
  t.same(lines, ['TEMP 21.5 °C', 'ERR zu heiß']);
});

t.test('a line that never ends is dropped past the bound, and the next one is read', async (t) => {
  const { splitter, lines, overflows } = collect('\n', 16);
  splitter.push(Buffer.from('x'.repeat(10)));
  splitter.push(Buffer.from('y'.repeat(10)));
  t.same(overflows, [20], 'the partial line was dropped');
  splitter.push(Buffer.from('OK\n'));
  t.same(lines, ['OK'], 'the next line comes through');
  t.throws(() => new LineSplitter('', () => {}), TypeError);
});
