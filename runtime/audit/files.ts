/**
 * Where the log lives and how its files are named: <stateDir>/audit/audit-NNNNNN.jsonl, numbered from 1;
 * the highest number is the file being written. Files are never renamed, so a rotation is one new file.
 */
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';

export interface AuditFile {
  index: number;
  name: string;
  path: string;
}

const PATTERN = /^audit-(\d{6,})\.jsonl$/;

export function auditDir(stateDir: string): string {
  return path.join(stateDir, 'audit');
}

export function auditFileName(index: number): string {
  return `audit-${String(index).padStart(6, '0')}.jsonl`;
}

export function auditFile(dir: string, index: number): AuditFile {
  const name = auditFileName(index);
  return { index, name, path: path.join(dir, name) };
}

/** The log's files, oldest first; none when the folder does not exist. */
export async function listAuditFiles(dir: string): Promise<AuditFile[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const files: AuditFile[] = [];
  for (const name of names) {
    const match = PATTERN.exec(name);
    if (match) files.push({ index: Number(match[1]), name, path: path.join(dir, name) });
  }
  return files.sort((a, b) => a.index - b.index);
}

export interface FileLines {
  /** Complete lines (each ended by a newline), without the newline. */
  lines: string[];
  /** Bytes after the last newline: a torn write, or empty. */
  torn: string;
  /** Bytes up to and including the last newline. */
  bytes: number;
}

/**
 * Where the torn tail of a file starts: after the last newline, or at the start of the first line holding
 * a NUL byte. JSON text never holds a raw NUL; NULs are blocks the file system allocated but never wrote
 * because power failed before the sync, and nothing after them was acknowledged either.
 */
export function tornTailStart(buffer: Buffer): number {
  const nul = buffer.indexOf(0);
  return nul >= 0 ? buffer.lastIndexOf(0x0a, nul) + 1 : buffer.lastIndexOf(0x0a) + 1;
}

/** Reads a file (its first `limit` bytes when given) as lines. */
export async function readLines(file: string, limit?: number): Promise<FileLines> {
  let buffer = await readFile(file);
  if (limit !== undefined && buffer.length > limit) buffer = buffer.subarray(0, limit);
  const end = buffer.lastIndexOf(0x0a) + 1;
  const head = buffer.subarray(0, end).toString('utf8');
  const lines = head.length === 0 ? [] : head.slice(0, -1).split('\n');
  return { lines, torn: buffer.subarray(end).toString('utf8'), bytes: end };
}

/** Parses a line, or null when it is not JSON. */
export function parseLine(line: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    return null;
  }
}
