import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** OpenSSH known_hosts lookup (plain, `[host]:port`, hashed `|1|salt|hash`, wildcards, @revoked). */

export interface KnownKey {
  line: number;
  keyType: string;
  key: Buffer;
  revoked: boolean;
}

export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside an SSH public key blob (its first length-prefixed string). */
export function keyTypeOf(key: Buffer): string {
  if (key.length < 4) return 'unknown';
  const length = key.readUInt32BE(0);
  return key.subarray(4, 4 + length).toString('latin1');
}

/** The name ssh-keyscan(1) documents for `-t` (`ssh-ed25519` -> `ed25519`), so the printed step is the manual's. */
export function keyscanTypeName(keyType: string): string {
  const security = keyType.startsWith('sk-') ? '-sk' : '';
  const base = keyType.replace(/^sk-/, '').replace(/@openssh\.com$/, '');
  const short: Record<string, string> = { 'ssh-rsa': 'rsa', 'ssh-dss': 'dsa', 'ssh-ed25519': 'ed25519' };
  const name = base.startsWith('ecdsa-sha2-') ? 'ecdsa' : short[base];
  return name ? `${name}${security}` : keyType;
}

/** The ssh-keyscan step that pins host:port's key, and for another port than 22 the name it is stored under. */
export function keyscanStep(host: string, port: number, keyType: string, knownHostsPath: string): string {
  const step = `ssh-keyscan${port === 22 ? '' : ` -p ${port}`} -t ${keyscanTypeName(keyType)} ${host} >> ${knownHostsPath}`;
  if (port === 22) return step;
  return `${step} (with -p its line starts with ${hostPatternName(host, port)}, the name OpenSSH and zonecopy look up for port ${port}; a line for plain ${host} does not count)`;
}

export function hostPatternName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globMatch(pattern: string, name: string): boolean {
  const regex = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${regex}$`, 'i').test(name);
}

function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  let matched = false;
  for (const pattern of field.split(',')) {
    if (pattern.startsWith('!')) {
      if (globMatch(pattern.slice(1), name)) return false;
    } else if (globMatch(pattern, name)) {
      matched = true;
    }
  }
  return matched;
}

export function parseKnownHosts(text: string, host: string, port: number): KnownKey[] {
  const name = hostPatternName(host, port);
  const keys: KnownKey[] = [];
  text.split('\n').forEach((raw, index) => {
    const fields = raw.trim().split(/\s+/);
    if (fields.length < 3 || fields[0]!.startsWith('#')) return;
    let revoked = false;
    if (fields[0]!.startsWith('@')) {
      if (fields[0] === '@cert-authority') return;
      revoked = fields[0] === '@revoked';
      fields.shift();
    }
    const [hosts, keyType, base64] = fields;
    if (!hosts || !keyType || !base64 || !hostFieldMatches(hosts, name)) return;
    keys.push({ line: index + 1, keyType, key: Buffer.from(base64, 'base64'), revoked });
  });
  return keys;
}

export class HostKeyError extends Error {
  override name = 'HostKeyError';
}

/**
 * Decides whether `offered` is the pinned key of host:port. Returns nothing when it is; throws
 * HostKeyError with the fingerprint and what to do when it is not.
 */
export function verifyHostKey(knownHostsPath: string, host: string, port: number, offered: Buffer): void {
  let text = '';
  try {
    text = readFileSync(knownHostsPath, 'utf8');
  } catch {
    // a missing file is the same as an empty one: the host is unknown
  }
  const name = hostPatternName(host, port);
  const keys = parseKnownHosts(text, host, port);
  const type = keyTypeOf(offered);
  const print = fingerprint(offered);
  const revoked = keys.find((k) => k.revoked && k.key.equals(offered));
  if (revoked) {
    throw new HostKeyError(
      `backup host ${name} offered a key that ${knownHostsPath}:${revoked.line} marks @revoked (${type} ${print}); refusing to connect.`,
    );
  }
  if (keys.some((k) => !k.revoked && k.key.equals(offered))) return;
  const sameType = keys.find((k) => !k.revoked && k.keyType === type);
  if (sameType) {
    throw new HostKeyError(
      `HOST KEY CHANGED for backup host ${name}: ${knownHostsPath}:${sameType.line} pins ${type} ${fingerprint(sameType.key)}, ` +
        `but the host offered ${print}. Someone may be intercepting the connection, or the host was reinstalled. ` +
        `If the change is expected, verify the new fingerprint on the backup host (ssh-keygen -lf /etc/ssh/ssh_host_${type.replace(/^ssh-/, '')}_key.pub) ` +
        `and replace that line (ssh-keygen -R '${name}' -f ${knownHostsPath}).`,
    );
  }
  throw new HostKeyError(
    `backup host ${name} is not known: no key for it in ${knownHostsPath}. It offered ${type} ${print}. ` +
      `Verify that fingerprint on the backup host (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then pin it: ` +
      `${keyscanStep(host, port, type, knownHostsPath)}. ` +
      `(disableHostKeyChecking: true in the configuration skips this check; not recommended.)`,
  );
}
