/** Test-only: read and rewrite audit files line by line, as someone editing them would. */
import { readFileSync, writeFileSync } from 'node:fs';

export function readFileLines(file: string): string[] {
  return readFileSync(file, 'utf8').split('\n').slice(0, -1);
}

export function writeFileLines(file: string, lines: readonly string[]): void {
  writeFileSync(file, lines.map((l) => `${l}\n`).join(''));
}

/** Applies `edit` to the lines of `file` (without their newlines) and writes them back. */
export function editLines(file: string, edit: (lines: string[]) => string[]): void {
  writeFileLines(file, edit(readFileLines(file)));
}
