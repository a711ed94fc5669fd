/**
 * Where each member of a bundle (a POSIX ustar archive) lies in the file, so the manifest and signature
 * can be read and checked before a single payload byte is, and each payload then streamed from its
 * offset. A reader of our own rather than a tar library: the bundle is hostile until its signature
 * checks out, and this one accepts only what the bundle builder writes (regular files with plain names,
 * header checksums right, nothing past the end) and never extracts anything to disk.
 */
import type { FileHandle } from 'node:fs/promises';
import { ClawboxError } from '../runtime/errors.js';

const BLOCK = 512;
/** A bundle has a manifest, a signature and three payloads; a few spare slots for later formats. */
export const MAX_MEMBERS = 16;

export interface TarMember {
  readonly name: string;
  /** Byte offset of the member's content in the archive. */
  readonly offset: number;
  readonly size: number;
}

function invalid(message: string): ClawboxError {
  return new ClawboxError('UPDATE_BUNDLE_INVALID', message);
}

function field(header: Buffer, start: number, length: number): string {
  const raw = header.subarray(start, start + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? length : end).toString('latin1');
}

function octal(header: Buffer, start: number, length: number, what: string): number {
  const text = field(header, start, length).trim();
  if (!/^[0-7]{1,11}$/.test(text)) throw invalid(`tar header: ${what} is not an octal number`);
  return Number.parseInt(text, 8);
}

function checksumOk(header: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  return sum === octal(header, 148, 8, 'checksum');
}

/** Lists the members of the ustar archive open as `file` (of `fileSize` bytes). */
export async function indexTar(file: FileHandle, fileSize: number): Promise<TarMember[]> {
  const members: TarMember[] = [];
  const header = Buffer.alloc(BLOCK);
  let position = 0;
  for (;;) {
    if (position + BLOCK > fileSize) throw invalid('the archive ends without its end-of-archive marker (truncated?)');
    const { bytesRead } = await file.read(header, 0, BLOCK, position);
    if (bytesRead !== BLOCK) throw invalid('the archive is truncated');
    if (header.every((b) => b === 0)) break;
    if (field(header, 257, 5) !== 'ustar') throw invalid(`not a clawbox update bundle (no ustar header at byte ${position})`);
    if (!checksumOk(header)) throw invalid(`tar header at byte ${position} is damaged (checksum)`);
    const type = String.fromCharCode(header[156]!);
    const name = field(header, 0, 100);
    if (field(header, 345, 155) !== '') throw invalid(`member "${name.slice(0, 64)}" has a path prefix`);
    if (type !== '0' && type !== '\0') throw invalid(`member "${name.slice(0, 64)}" is not a regular file`);
    if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(name)) throw invalid(`member name "${name.slice(0, 64)}" is not a plain file name`);
    if (members.some((m) => m.name === name)) throw invalid(`member "${name}" appears twice`);
    if (members.length >= MAX_MEMBERS) throw invalid(`more than ${MAX_MEMBERS} members`);
    const size = octal(header, 124, 12, 'size');
    const offset = position + BLOCK;
    if (offset + size > fileSize) throw invalid(`member "${name}" runs past the end of the file (truncated?)`);
    members.push({ name, offset, size });
    position = offset + Math.ceil(size / BLOCK) * BLOCK;
  }
  if (members.length === 0) throw invalid('the archive is empty');
  return members;
}
