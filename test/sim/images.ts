/** imgadm's side of the simulator: a small catalog of prepared images, imported as real datasets. */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readSync,
  openSync,
  closeSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { IMGADM, nodeCrypto, POOL, zfs, zfsGet, zvolDevice } from './host.js';

export interface Manifest {
  v: number;
  uuid: string;
  name: string;
  version: string;
  type: 'zone-dataset' | 'lx-dataset' | 'zvol';
  os: string;
  published_at: string;
  public: boolean;
  state: string;
  image_size?: number;
  files: Array<{ sha1: string; size: number; compression: string; dataset_guid?: string }>;
}

export const CATALOG: Record<string, Omit<Manifest, 'files' | 'v' | 'state' | 'public'>> = {
  'e44ed3e0-910b-11ed-a5d4-00151714048c': {
    uuid: 'e44ed3e0-910b-11ed-a5d4-00151714048c',
    name: 'base-64-lts',
    version: '22.4.0',
    type: 'zone-dataset',
    os: 'smartos',
    published_at: '2023-01-10T00:00:00Z',
  },
  '2f1dc911-6401-4fa4-8e9d-67ea2e39c271': {
    uuid: '2f1dc911-6401-4fa4-8e9d-67ea2e39c271',
    name: 'ubuntu-20.04',
    version: '20240101',
    type: 'lx-dataset',
    os: 'linux',
    published_at: '2024-01-01T00:00:00Z',
  },
  'a7a1c2c4-7a4e-4b6b-9ef5-1a8e2b0c4d11': {
    uuid: 'a7a1c2c4-7a4e-4b6b-9ef5-1a8e2b0c4d11',
    name: 'debian-12',
    version: '20250101',
    type: 'zvol',
    os: 'linux',
    published_at: '2025-01-01T00:00:00Z',
    image_size: 64,
  },
};

function manifestPath(uuid: string): string {
  return join(IMGADM, 'images', `${POOL}-${uuid}.json`);
}

export function installedManifest(uuid: string): Manifest | undefined {
  if (!existsSync(manifestPath(uuid)) || zfsGet(`${POOL}/${uuid}@final`, 'guid') === undefined) return undefined;
  return JSON.parse(readFileSync(manifestPath(uuid), 'utf8')) as Manifest;
}

export function installedImages(): Manifest[] {
  const dir = join(IMGADM, 'images');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.startsWith(`${POOL}-`) && f.endsWith('.json'))
    .map((f) => installedManifest(f.slice(POOL.length + 1, -5)))
    .filter((m): m is Manifest => m !== undefined);
}

/** Creates `<pool>/<uuid>` with recognisable content, snapshots it `@final`, writes the manifest. */
export function importImage(uuid: string): Manifest {
  const entry = CATALOG[uuid];
  if (!entry) throw new Error(`ActiveImageNotFound: an active image "${uuid}" was not found in image sources`);
  const dataset = `${POOL}/${uuid}`;
  if (entry.type === 'zvol') {
    zfs('create', '-V', `${entry.image_size}M`, dataset);
    // a recognisable pattern: the image's name repeated over the first MiB
    const block = Buffer.alloc(1 << 20, `${entry.name} ${entry.version} boot sector `);
    writeFileSync(zvolDevice(dataset), block);
  } else {
    zfs('create', dataset);
    const root = `/${dataset}/root`;
    mkdirSync(`${root}/etc`, { recursive: true });
    writeFileSync(`${root}/etc/release`, `${entry.name} ${entry.version} (${entry.os})\n`);
    writeFileSync(`${root}/etc/motd`, `Welcome to ${entry.name}\n`);
    execFileSync('sh', ['-c', `head -c 262144 /dev/urandom > ${root}/etc/image-payload.bin`]);
  }
  zfs('snapshot', `${dataset}@final`);
  const manifest: Manifest = {
    v: 2,
    ...entry,
    public: true,
    state: 'active',
    files: [
      { sha1: '0'.repeat(40), size: 1 << 20, compression: 'gzip', dataset_guid: zfsGet(`${dataset}@final`, 'guid')! },
    ],
  };
  mkdirSync(join(IMGADM, 'images'), { recursive: true });
  writeFileSync(manifestPath(uuid), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** An imgadm failure as the CLI prints it: `imgadm install: error (<code>): <message>`. */
export class ImgadmError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The decompressors imgadm spawns, by `files[0].compression`. */
const UNCOMPRESSORS: Record<string, string | undefined> = { none: undefined, gzip: 'gzip', bzip2: 'bzip2', xz: 'xz' };

function sha1Of(file: string): string {
  const hash = nodeCrypto().createHash('sha1');
  const buffer = Buffer.alloc(1 << 20);
  const fd = openSync(file, 'r');
  try {
    for (let n = readSync(fd, buffer); n > 0; n = readSync(fd, buffer)) hash.update(buffer.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/**
 * What `imgadm install -m -f` checks before it receives anything (smartos-live src/img/lib/imgadm.js,
 * `installImage`: getAndCheckSize, checkHash, then `_installSingleImage` picks the uncompressor):
 * the file's size against files[0].size, its sha1 against files[0].sha1, and a known compression.
 * Returns the uncompressor to run, if any.
 */
export function checkImageFile(manifest: Pick<Manifest, 'uuid' | 'files'>, file: string): string | undefined {
  const entry = manifest.files?.[0];
  const size = statSync(file).size;
  if (entry?.size !== undefined && entry.size !== size) {
    throw new ImgadmError(
      'DownloadError',
      `image file size error: manifest says ${entry.size} bytes, ${file} is ${size} bytes`,
    );
  }
  if (entry?.sha1) {
    const actual = sha1Of(file);
    if (actual !== entry.sha1)
      throw new ImgadmError(
        'DownloadError',
        `image file checksum (sha1) error: manifest says "${entry.sha1}", ${file} is "${actual}"`,
      );
  }
  const compression = entry?.compression ?? 'none';
  if (!(compression in UNCOMPRESSORS))
    throw new ImgadmError('InternalError', `image ${manifest.uuid} file compression: ${compression}`);
  return UNCOMPRESSORS[compression];
}

/** `imgadm install -m -f`: checks the file, receives the image's stream (which keeps the @final guid) and records it. */
export function installImage(manifest: Manifest, streamFile: string): void {
  const uncompressor = checkImageFile(manifest, streamFile);
  const script = uncompressor
    ? 'set -o pipefail; "$3" -cdfq < "$2" | zfs receive -u "$1"'
    : 'zfs receive -u "$1" < "$2"';
  try {
    execFileSync('bash', ['-c', script, 'bash', `${POOL}/${manifest.uuid}`, streamFile, uncompressor ?? ''], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  } catch (error) {
    const stderr = String((error as { stderr?: Buffer }).stderr ?? '').trim();
    throw new ImgadmError(
      uncompressor ? 'UncompressionError' : 'InternalError',
      `${uncompressor ?? 'zfs receive'} error while importing: ${stderr || (error as Error).message}`,
    );
  }
  mkdirSync(join(IMGADM, 'images'), { recursive: true });
  writeFileSync(manifestPath(manifest.uuid), `${JSON.stringify(manifest, null, 2)}\n`);
}
