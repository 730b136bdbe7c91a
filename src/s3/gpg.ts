import type { Host } from '../host/host.js';
import type { Argv } from '../host/quote.js';

/** Which gpg, and which keyring: the s3 section's gpgPath and gpgHome. */
export interface GpgSettings {
  gpgPath: string;
  gpgHome?: string;
}

/** gpg and its options every call shares: `--homedir` when a keyring outside ~/.gnupg is configured. */
export function gpgArgv(gpg: GpgSettings): Argv {
  return [gpg.gpgPath, ...(gpg.gpgHome ? ['--homedir', gpg.gpgHome] : []), '--batch'];
}

/** The version `gpg --version` prints first: "gpg (GnuPG) 1.4.23". */
export function parseGpgVersion(output: string): [number, number] | undefined {
  const match = /^gpg \(GnuPG[^)]*\) (\d+)\.(\d+)/m.exec(output);
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}

/** OpenPGP public-key algorithm ids (RFC 4880 §9.1, RFC 6637): those GnuPG 1.4 lacks are the ECC ones. */
const ALGORITHMS: Record<string, string> = {
  1: 'RSA',
  2: 'RSA',
  16: 'Elgamal',
  17: 'DSA',
  18: 'ECDH (cv25519 or NIST curves)',
  19: 'ECDSA',
  22: 'EdDSA',
};
const ECC = new Set(['18', '19', '22']);

export interface EncryptionKey {
  algorithm: string;
  /** The curve, for ECC keys (field 17 of gpg ≥ 2.1's colon listing). */
  curve?: string;
}

/**
 * The valid keys able to encrypt, from `gpg --with-colons --list-keys` (doc/DETAILS of GnuPG: field 2
 * validity, 4 algorithm, 12 capabilities, 17 curve): revoked, expired and invalid ones left out.
 */
export function encryptionKeys(listing: string): EncryptionKey[] {
  return listing.split('\n').flatMap((line) => {
    const fields = line.split(':');
    if ((fields[0] !== 'pub' && fields[0] !== 'sub') || ['r', 'e', 'i', 'd'].includes(fields[1] ?? '')) return [];
    if (!(fields[11] ?? '').includes('e')) return [];
    return [{ algorithm: fields[3] ?? '', ...(fields[16] ? { curve: fields[16] } : {}) }];
  });
}

const describe = (key: EncryptionKey) =>
  `${ALGORITHMS[key.algorithm] ?? `algorithm ${key.algorithm}`}${key.curve ? ` ${key.curve}` : ''}`;

/**
 * Refuses, before anything is snapshotted, a gpg that cannot encrypt to the recipient: none at
 * gpgPath, no usable key for the recipient, or GnuPG 1.4 (SmartOS's /usr/bin/gpg) with only ECC
 * keys, which it cannot use (ECC came with GnuPG 2.1; cv25519 is gpg ≥ 2.3's default).
 */
export async function checkGpgRecipient(host: Host, gpg: GpgSettings, recipient: string): Promise<void> {
  const where = `${gpg.gpgPath}${gpg.gpgHome ? ` (keyring ${gpg.gpgHome})` : ''}`;
  const fix = 'install GnuPG 2 (on SmartOS: pkgin install gnupg2) and set s3.gpgPath to its gpg2';
  let versionText: string;
  try {
    versionText = (await host.run([gpg.gpgPath, '--version'], { mutates: false })).stdout;
  } catch (error) {
    throw new Error(
      `s3.gpgRecipient is set, but ${gpg.gpgPath} --version failed (${(error as Error).message}); set s3.gpgPath to a GnuPG 2 gpg. Nothing was snapshotted.`,
    );
  }
  const version = parseGpgVersion(versionText);
  if (!version)
    throw new Error(
      `${gpg.gpgPath} does not look like GnuPG (its --version says: ${versionText.split('\n')[0]}); set s3.gpgPath to gpg. Nothing was snapshotted.`,
    );
  const listed = await host.run([...gpgArgv(gpg), '--with-colons', '--list-keys', '--', recipient], {
    mutates: false,
    allowExitCodes: [2],
  });
  const keys = listed.exitCode === 0 ? encryptionKeys(listed.stdout) : [];
  const old = version[0] < 2 || (version[0] === 2 && version[1] < 1);
  const versionName = `GnuPG ${version[0]}.${version[1]}`;
  if (keys.length === 0) {
    const hint = old
      ? ` ${versionName} does not read ECC keys at all: if the key is cv25519/ed25519, ${fix}; otherwise`
      : '';
    throw new Error(
      `${where} has no valid public key able to encrypt to s3.gpgRecipient "${recipient}".${hint} import it: ${gpgArgv(gpg).slice(0, -1).join(' ')} --import KEY.asc. Nothing was snapshotted.`,
    );
  }
  const usable = old ? keys.filter((k) => !ECC.has(k.algorithm)) : keys;
  if (usable.length === 0) {
    throw new Error(
      `${where} is ${versionName}, which cannot encrypt to "${recipient}": its key is ${keys.map(describe).join(', ')}, and ECC keys need GnuPG >= 2.1. ${fix}, or use an RSA key. Nothing was snapshotted.`,
    );
  }
}
