/**
 * A clawbox update bundle: a ustar archive of
 *   manifest.json   what the bundle is (version, architecture) and each payload's size and sha256,
 *   manifest.sig    an ed25519 signature (64 raw bytes) over the exact bytes of manifest.json,
 *   rootfs.ext4.zst the root file system of a slot (zstd), with its installed size and sha256,
 *   vmlinuz, initrd.img  the slot's kernel and initramfs.
 * openBundle checks the layout and the signature before it believes a word of the manifest; checkPayloads
 * then hashes every payload against it. Node's built-in crypto verifies ed25519 (no library needed).
 * Every read goes through one open descriptor (BundleFile), never the path again: what was checked is the
 * file that gets installed, whatever happens to the path meanwhile.
 */
import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, open, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ClawboxError } from '../runtime/errors.js';
import { assertValid, type JsonSchema } from '../runtime/operations/validator.js';
import { indexTar, type TarMember } from './tar-index.js';

export const BUNDLE_FORMAT = 'clawbox-update/1';
export const PAYLOAD_FILES = { rootfs: 'rootfs.ext4.zst', kernel: 'vmlinuz', initrd: 'initrd.img' } as const;
export type PayloadName = keyof typeof PAYLOAD_FILES;
/** A manifest is a few hundred bytes; the bound keeps a hostile one from being read whole. */
const MAX_MANIFEST_BYTES = 64 * 1024;
const SIGNATURE_BYTES = 64;
const MAX_KEYS = 32;

export interface Payload {
  readonly file: string;
  readonly size: number;
  readonly sha256: string;
}

export interface Manifest {
  readonly format: typeof BUNDLE_FORMAT;
  readonly name: 'clawbox';
  readonly version: string;
  readonly arch: 'amd64' | 'arm64';
  readonly kernel_version: string;
  readonly created: number;
  readonly git_commit?: string;
  readonly payloads: {
    readonly rootfs: Payload & { readonly installed_size: number; readonly installed_sha256: string };
    readonly kernel: Payload;
    readonly initrd: Payload;
  };
}

const sha256 = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const size = { type: 'integer', minimum: 1, maximum: 64 * 1024 ** 3 } as const;
const payload = (file: string, extra: Record<string, unknown> = {}) => ({
  type: 'object',
  additionalProperties: false,
  required: ['file', 'size', 'sha256', ...Object.keys(extra)],
  properties: { file: { const: file }, size, sha256, ...extra },
});

export const MANIFEST_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['format', 'name', 'version', 'arch', 'kernel_version', 'created', 'payloads'],
  properties: {
    format: { const: BUNDLE_FORMAT },
    name: { const: 'clawbox' },
    version: { type: 'string', pattern: '^[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.-]{1,40})?$' },
    arch: { enum: ['amd64', 'arm64'] },
    kernel_version: { type: 'string', pattern: '^[0-9A-Za-z.+_-]{1,64}$' },
    created: { type: 'integer', minimum: 0 },
    git_commit: { type: 'string', pattern: '^[0-9a-f]{7,40}$|^unknown$' },
    payloads: {
      type: 'object',
      additionalProperties: false,
      required: ['rootfs', 'kernel', 'initrd'],
      properties: {
        rootfs: payload(PAYLOAD_FILES.rootfs, { installed_size: size, installed_sha256: sha256 }),
        kernel: payload(PAYLOAD_FILES.kernel),
        initrd: payload(PAYLOAD_FILES.initrd),
      },
    },
  },
};

/** The public keys the box trusts: every `*.pem` (SPKI) in the folder. */
export async function loadTrustedKeys(dir: string): Promise<KeyObject[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.pem')).sort();
  } catch {
    names = [];
  }
  const keys: KeyObject[] = [];
  for (const name of names.slice(0, MAX_KEYS)) {
    try {
      const key = createPublicKey(await readFile(path.join(dir, name)));
      if (key.asymmetricKeyType === 'ed25519') keys.push(key);
    } catch {
      // a file that is not a public key trusts nothing
    }
  }
  if (keys.length === 0) {
    throw new ClawboxError('UPDATE_SIGNATURE_INVALID', `no ed25519 public key in ${dir}: this box trusts no update bundle`);
  }
  return keys;
}

/** A bundle opened once; everything is read from `handle`. Whoever opened it closes it. */
export interface BundleFile {
  readonly handle: FileHandle;
  /** For messages only. */
  readonly name: string;
  readonly size: number;
}

/**
 * Opens a bundle named on the command line. Non-blocking, so a FIFO cannot hang the install; anything but
 * a regular file is refused. (The update helper opens the runtime's download more strictly: helper.ts.)
 */
export async function openBundleFile(file: string): Promise<BundleFile> {
  let handle: FileHandle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    throw new ClawboxError('NOT_FOUND', `cannot open the bundle ${file}: ${(error as Error).message}`);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new ClawboxError('UPDATE_BUNDLE_INVALID', `${file} is not a regular file`);
    return { handle, name: file, size: stat.size };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** Runs `work` on the bundle `source` (a path is opened and closed around it; an open file is left open). */
export async function withBundleFile<T>(source: string | BundleFile, work: (file: BundleFile) => Promise<T>): Promise<T> {
  if (typeof source !== 'string') return work(source);
  const file = await openBundleFile(source);
  try {
    return await work(file);
  } finally {
    await file.handle.close();
  }
}

export interface OpenBundle {
  readonly file: BundleFile;
  readonly size: number;
  readonly manifest: Manifest;
  readonly members: ReadonlyMap<string, TarMember>;
}

async function readMember(file: FileHandle, member: TarMember): Promise<Buffer> {
  const buffer = Buffer.alloc(member.size);
  const { bytesRead } = await file.read(buffer, 0, member.size, member.offset);
  if (bytesRead !== member.size) throw new ClawboxError('UPDATE_BUNDLE_INVALID', `${member.name} is truncated`);
  return buffer;
}

/**
 * Reads the bundle's layout, verifies the manifest's signature against `keys` and only then parses and
 * validates the manifest. Reads no payload.
 */
export async function openBundle(file: BundleFile, keys: readonly KeyObject[]): Promise<OpenBundle> {
  const { handle, size } = file;
  const list = await indexTar(handle, size);
  const members = new Map(list.map((m) => [m.name, m]));
  const manifestMember = members.get('manifest.json');
  const signatureMember = members.get('manifest.sig');
  if (list[0]?.name !== 'manifest.json' || !manifestMember || !signatureMember) {
    throw new ClawboxError('UPDATE_BUNDLE_INVALID', 'not a clawbox update bundle: manifest.json must come first, and manifest.sig must be there');
  }
  if (manifestMember.size > MAX_MANIFEST_BYTES) throw new ClawboxError('UPDATE_BUNDLE_INVALID', 'manifest.json is too large');
  if (signatureMember.size !== SIGNATURE_BYTES) {
    throw new ClawboxError('UPDATE_SIGNATURE_INVALID', `manifest.sig must be a ${SIGNATURE_BYTES}-byte ed25519 signature`);
  }
  // The manifest is parsed from the very bytes whose signature was checked.
  const manifestBytes = await readMember(handle, manifestMember);
  const signature = await readMember(handle, signatureMember);
  if (!keys.some((key) => verify(null, manifestBytes, key, signature))) {
    throw new ClawboxError('UPDATE_SIGNATURE_INVALID', 'the bundle\'s signature does not verify with any key this box trusts (/usr/share/clawbox/update-keys)');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(manifestBytes.toString('utf8'));
  } catch {
    throw new ClawboxError('UPDATE_BUNDLE_INVALID', 'manifest.json is not JSON');
  }
  const manifest = assertValid<Manifest>(MANIFEST_SCHEMA, parsed, 'UPDATE_BUNDLE_INVALID', 'manifest.json');
  for (const name of Object.keys(PAYLOAD_FILES) as PayloadName[]) {
    const entry = manifest.payloads[name];
    const member = members.get(entry.file);
    if (!member) throw new ClawboxError('UPDATE_BUNDLE_INVALID', `the bundle lacks ${entry.file}`);
    if (member.size !== entry.size) {
      throw new ClawboxError('UPDATE_BUNDLE_INVALID', `${entry.file} is ${member.size} bytes, the manifest says ${entry.size}`);
    }
  }
  return { file, size, manifest, members };
}

const READ_CHUNK = 256 * 1024;

/** The bytes `offset`..`offset + length` of the open file, in chunks; a file that shrank meanwhile is refused. */
async function* readRange(handle: FileHandle, offset: number, length: number, what: string, signal?: AbortSignal): AsyncGenerator<Buffer> {
  let done = 0;
  while (done < length) {
    signal?.throwIfAborted();
    // A fresh buffer per chunk: a consumer may still hold the previous one.
    const chunk = Buffer.allocUnsafe(Math.min(READ_CHUNK, length - done));
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, offset + done);
    if (bytesRead === 0) throw new ClawboxError('UPDATE_BUNDLE_INVALID', `${what} ended early: the bundle changed while it was being read`);
    done += bytesRead;
    yield bytesRead === chunk.length ? chunk : chunk.subarray(0, bytesRead);
  }
}

/** A read stream of one payload's bytes, straight from its place in the archive, through the bundle's descriptor. */
export function payloadStream(bundle: OpenBundle, name: PayloadName, signal?: AbortSignal): Readable {
  const member = bundle.members.get(bundle.manifest.payloads[name].file)!;
  if (member.size === 0) throw new ClawboxError('UPDATE_BUNDLE_INVALID', `${member.name} is empty`);
  return Readable.from(readRange(bundle.file.handle, member.offset, member.size, member.name, signal), { objectMode: false });
}

/** Hashes every payload against the signed manifest; a mismatch is a corrupt bundle. */
export async function checkPayloads(bundle: OpenBundle, signal?: AbortSignal): Promise<void> {
  for (const name of Object.keys(PAYLOAD_FILES) as PayloadName[]) {
    const hash = createHash('sha256');
    for await (const chunk of payloadStream(bundle, name, signal)) hash.update(chunk as Buffer);
    const expected = bundle.manifest.payloads[name];
    if (hash.digest('hex') !== expected.sha256) {
      throw new ClawboxError('UPDATE_BUNDLE_INVALID', `${expected.file} does not match its sha256 in the signed manifest (corrupt bundle)`);
    }
  }
}
