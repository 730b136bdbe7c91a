import { createHash } from 'node:crypto';
import { mutate, type Host } from '../host/host.js';
import type { OriginWriter } from './source.js';

/** Size and sha1 of a file as `imgadm install` measures it. */
export interface ImageFile {
  size: number;
  sha1: string;
}

/**
 * The manifest handed to `imgadm install -f FILE`: the stored one, but files[0] describing FILE, a
 * raw `zfs send` stream (compression none), since imgadm checks its size and sha1 against the
 * manifest before it receives anything (smartos-live src/img/lib/imgadm.js, installImage).
 */
export function installManifest(stored: Record<string, unknown>, file: ImageFile): Record<string, unknown> {
  const original = Array.isArray(stored.files) ? ((stored.files[0] ?? {}) as Record<string, unknown>) : {};
  const { sha1: _sha1, size: _size, compression: _compression, ...kept } = original;
  return { ...stored, files: [{ ...kept, sha1: file.sha1, size: file.size, compression: 'none' }] };
}

/** Counts and hashes bytes as they pass, for `installManifest`. */
export class ImageFileMeter {
  private readonly hash = createHash('sha1');
  private size = 0;

  readonly observe = (chunk: Buffer): void => {
    this.hash.update(chunk);
    this.size += chunk.length;
  };

  result(): ImageFile {
    return { size: this.size, sha1: this.hash.digest('hex') };
  }
}

/** Reads a file on `host` back to measure it, where its bytes did not pass through this process. */
export async function measureFile(host: Host, path: string): Promise<ImageFile> {
  const meter = new ImageFileMeter();
  const reader = host.spawn([['cat', path]]);
  reader.stdin.end();
  const read = new Promise<void>((resolve, reject) => {
    reader.stdout.on('data', meter.observe).once('end', resolve).once('error', reject);
  });
  // the last bytes may still be on their way through stdout when the process has exited
  const [done] = await Promise.all([reader.done, read]);
  if (done.exitCode !== 0)
    throw new Error(`${done.command} on ${done.host} exited ${done.exitCode}: ${done.stderr.trim()}`);
  return meter.result();
}

/**
 * Installs an image from the stream `writer` puts into the file it is given: the file and the
 * manifest go to a fresh directory under /var/tmp (as imgadm's own downloads do; /tmp is
 * swap-backed tmpfs on SmartOS, too small for an image), removed afterwards, failed or not. A dry
 * run prints each step, the directory by its template, and makes nothing.
 */
export async function installImageFromStream(
  local: Host,
  stored: Record<string, unknown>,
  writer: OriginWriter,
): Promise<void> {
  const template = '/var/tmp/zonecopy-image.XXXXXX';
  const made = await local.run(['mktemp', '-d', template], { mutates: true });
  const work = made.stdout.trim() || template;
  try {
    const image = `${work}/image.zfs`;
    const file = await mutate(local, writer.describe(image), () => writer.write(image), storedFile(stored));
    const manifest = installManifest(stored, file);
    await local.run(['sh', '-c', 'cat > "$1"', 'sh', `${work}/manifest.json`], {
      mutates: true,
      input: JSON.stringify(manifest),
    });
    await local.run(['imgadm', 'install', '-m', `${work}/manifest.json`, '-f', image], { mutates: true });
  } finally {
    await local.run(['rm', '-rf', work], { mutates: true, allowExitCodes: [1] });
  }
}

/** Prints the write a dry run skips; the stored manifest's own size and sha1 stand in for the file's. */
/** The image file as its stored manifest describes it: what a dry run installs. */
function storedFile(stored: Record<string, unknown>): ImageFile {
  const first = (Array.isArray(stored.files) ? stored.files[0] : undefined) as Partial<ImageFile> | undefined;
  return { size: Number(first?.size ?? 0), sha1: String(first?.sha1 ?? '') };
}
