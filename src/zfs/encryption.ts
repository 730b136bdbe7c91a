import type { DatasetState } from './list.js';
import { isWithin } from './names.js';

/**
 * Whether a target below `basePath` on the backup host holds ciphertext received raw (`send -w`):
 * only then is it its own encryption root or under another target's. One received decrypted into
 * an encrypted pool or base path uses the backup host's key instead, and takes no raw stream.
 */
export function receivedRaw(target: DatasetState | undefined, basePath: string): boolean {
  const root = target?.encryptionRoot;
  return Boolean(target?.encrypted && root && root !== basePath && isWithin(root, basePath));
}
