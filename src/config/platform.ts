import { homedir } from 'node:os';
import { join, posix } from 'node:path';

/** Where zonecopy runs, as far as the defaults of its key and credential paths care. */
export interface Platform {
  /** A SmartOS / illumos global zone (`process.platform === 'sunos'`). */
  sunos: boolean;
  /** The installation (/opt/zonecopy): on SunOS the persistent home of keys and credentials. */
  installRoot: string;
  home: string;
}

export function currentPlatform(installRoot: string): Platform {
  return { sunos: process.platform === 'sunos', installRoot, home: homedir() };
}

/** Defaults of the paths that must outlive a reboot; undefined leaves the choice to ssh, gpg or the AWS SDK. */
export interface PathDefaults {
  privateKeyPath?: string;
  knownHostsPath: string;
  gpgHome?: string;
  awsCredentialsFile?: string;
  awsConfigFile?: string;
}

/**
 * On a SmartOS global zone / (so /root, ~/.ssh, ~/.gnupg, ~/.aws) is a ramdisk rebuilt at every
 * boot, so keys and credentials default to the installation's etc/, which is on the zones pool.
 */
export function pathDefaults(platform: Platform): PathDefaults {
  if (!platform.sunos) return { knownHostsPath: join(platform.home, '.ssh', 'known_hosts') };
  const etc = join(platform.installRoot, 'etc');
  return {
    privateKeyPath: join(etc, 'ssh', 'id_ed25519'),
    knownHostsPath: join(etc, 'ssh', 'known_hosts'),
    gpgHome: join(etc, 'gnupg'),
    awsCredentialsFile: join(etc, 'aws', 'credentials'),
    awsConfigFile: join(etc, 'aws', 'config'),
  };
}

/** Folders of a SmartOS global zone's ramdisk (or tmpfs) that hold files worth keeping; /etc/ssh and /etc/zones are persistent. */
const RAMDISK = ['/root', '/tmp', '/var/run', '/etc'];
const PERSISTENT_IN_RAMDISK = ['/etc/ssh', '/etc/zones'];

const within = (path: string, dir: string) => path === dir || path.startsWith(`${dir}/`);

/**
 * Why `path` would be gone after a reboot of a SmartOS global zone (smartos-live's platform
 * builds / as a ramdisk), or undefined when it lasts. Relative paths count from the home, /root.
 */
export function lostAtReboot(path: string, platform: Platform): string | undefined {
  if (!platform.sunos) return undefined;
  const absolute = posix.resolve(platform.home, path);
  const dir = RAMDISK.find((d) => within(absolute, d));
  if (!dir || PERSISTENT_IN_RAMDISK.some((d) => within(absolute, d))) return undefined;
  return `${dir} is on the SmartOS global zone's ramdisk, rebuilt at every boot`;
}
