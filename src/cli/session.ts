import type { Config } from '../config/schema.js';
import { RemoteHost } from '../host/remote.js';

/** Pieces every subcommand shares: UUID checks and the one SSH connection to the backup host. */

export class UsageError extends Error {
  override name = 'UsageError';
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function checkUuids(uuids: readonly string[]): void {
  for (const uuid of uuids) {
    if (!UUID.test(uuid)) throw new UsageError(`not a VM UUID: ${JSON.stringify(uuid)} (expected the form 6b0a2c3e-8f1d-4e0a-9c61-2f5d7a9b1c44; see \`vmadm list\`)`);
  }
}

export function backupHostLabel(config: Config): string {
  return `${config.backupDestinationUsername}@${config.backupDestination}:${config.backupDestinationPort}`;
}

export function connectBackupHost(config: Config, options: { dryRun: boolean; print?: (line: string) => void }): Promise<RemoteHost> {
  return RemoteHost.connect({
    host: config.backupDestination,
    port: config.backupDestinationPort,
    username: config.backupDestinationUsername,
    privateKeyPath: config.backupDestinationPrivateKeyPath,
    knownHostsPath: config.knownHostsPath,
    disableHostKeyChecking: config.disableHostKeyChecking,
    dryRun: options.dryRun,
    print: options.print,
  });
}
