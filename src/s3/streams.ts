import type { Argv } from '../host/quote.js';
import { gpgArgv, type GpgSettings } from './gpg.js';
import type { Compression } from './keys.js';

/** The filters a stream passes through on its way into the bucket, and back out of it. */

export function compressArgv(compression: Compression): Argv[] {
  if (compression === 'zstd') return [['zstd', '-q', '-c']];
  if (compression === 'gzip') return [['gzip', '-c']];
  return [];
}

export function decompressArgv(compression: Compression): Argv[] {
  if (compression === 'zstd') return [['zstd', '-q', '-d', '-c']];
  if (compression === 'gzip') return [['gzip', '-d', '-c']];
  return [];
}

/** Encryption to a public key, as z3 does: the SmartOS host needs only the recipient's public key. */
export function encryptArgv(recipient: string | undefined, gpg: GpgSettings): Argv[] {
  return recipient
    ? [[...gpgArgv(gpg), '--quiet', '--trust-model', 'always', '--encrypt', '--recipient', recipient]]
    : [];
}

/** Restoring an encrypted stream needs the private key in the restoring user's gpg keyring. */
export function decryptArgv(encrypted: boolean, gpg: GpgSettings): Argv[] {
  return encrypted ? [[...gpgArgv(gpg), '--quiet', '--decrypt']] : [];
}

// the estimate that sets the part size; the parser lives with the other zfs commands
export { parseSendEstimate } from '../zfs/commands.js';
