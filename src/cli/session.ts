import type { Config } from '../config/schema.js';
import { selectTargets } from '../config/targets.js';
import { RemoteHost, type SshEndpoint } from '../host/remote.js';

/** Pieces every subcommand shares: UUID checks and the one SSH connection to the backup host. */

export class UsageError extends Error {
  override name = 'UsageError';
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function checkUuids(uuids: readonly string[]): void {
  for (const uuid of uuids) {
    if (!UUID.test(uuid))
      throw new UsageError(
        `not a VM UUID: ${JSON.stringify(uuid)} (expected the form 6b0a2c3e-8f1d-4e0a-9c61-2f5d7a9b1c44; see \`vmadm list\`)`,
      );
  }
}

export function backupHostLabel(config: Config): string {
  return `${config.backupDestinationUsername}@${config.backupDestination}:${config.backupDestinationPort}`;
}

/** Which target a run uses: `--target`, else `backupTarget` from the configuration. */
export function chooseTarget(config: Config, flag: string | undefined): 'ssh' | 's3' {
  const target = flag ?? config.backupTarget;
  if (target !== 'ssh' && target !== 's3') throw new UsageError(`--target ${JSON.stringify(flag)}: use ssh or s3`);
  if (target === 's3' && !config.s3)
    throw new UsageError(
      '--target s3 needs an "s3" section in the configuration ({ "bucket": ..., "endpoint": ... }; see src/config/README.md)',
    );
  sshTarget(config, target);
  return target;
}

/**
 * The one target a status, check, restore or release works on: `--target NAME` (or a type), else
 * the first one configured; its settings are its `targets` entry over the top level.
 */
export function singleTarget(config: Config, flag: string | undefined): { target: 'ssh' | 's3'; config: Config } {
  const chosen = selectTargets(config, flag);
  if ('error' in chosen) throw new UsageError(chosen.error);
  const first = chosen[0]!;
  return { target: chooseTarget(first.config, first.type), config: first.config };
}

/** The SSH backup host's settings, which the configuration must have when that target is used. */
export function sshTarget(config: Config, target: 'ssh' | 's3' = 'ssh'): { destination: string; basePath: string } {
  if (target === 's3') return { destination: '', basePath: '' };
  if (!config.backupDestination || !config.backupDestinationBasePath) {
    throw new UsageError(
      'the SSH backup host needs backupDestination and backupDestinationBasePath in the configuration (or use --target s3)',
    );
  }
  return { destination: config.backupDestination, basePath: config.backupDestinationBasePath };
}

/** The backup host's SSH settings; with target s3 only the key and known_hosts matter (for --to-host). */
export function sshEndpoint(config: Config, target: 'ssh' | 's3' = 'ssh'): SshEndpoint {
  return {
    host: sshTarget(config, target).destination,
    port: config.backupDestinationPort,
    username: config.backupDestinationUsername,
    privateKeyPath: config.backupDestinationPrivateKeyPath,
    knownHostsPath: config.knownHostsPath,
    disableHostKeyChecking: config.disableHostKeyChecking,
  };
}

export function connectBackupHost(
  config: Config,
  options: { dryRun: boolean; print?: (line: string) => void },
): Promise<RemoteHost> {
  return RemoteHost.connect({ ...sshEndpoint(config), dryRun: options.dryRun, print: options.print });
}
