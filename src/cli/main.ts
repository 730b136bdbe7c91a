import { Command, CommanderError, Option } from 'commander';
import { backupCommand, type BackupFlags } from './backup-command.js';
import { EXIT_USAGE } from './exit-codes.js';
import { VERSION } from './version.js';

/** `zonecopy <command>`; `bin/backup <uuid>` is the smartcopy-compatible spelling of `zonecopy backup <uuid>`. */
export function buildProgram(): Command {
  const program = new Command('zonecopy')
    .description('Back up SmartOS VMs (OS and LX zones, KVM and bhyve) to a backup host with ZFS send and receive.')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command('backup')
    .description('Snapshot every dataset of each VM at one instant, send the snapshots to the backup host, rotate old snapshots on both sides, and report.')
    .argument('<vm-uuid...>', 'UUIDs of the VMs to back up (as in `vmadm list`)')
    .option('--config <path>', 'configuration file (default: configuration.json beside the installation, or $ZONECOPY_CONFIG)')
    .option('--groupName <group>', 'snapshot group: names are <group>-<name>, and rotation only touches this group (default: snapshotIdentifier, else "smartcopy")')
    .option('--name <name>', 'replaces the UTC timestamp part of the snapshot name')
    .addOption(new Option('--transferStrategy <strategy>', 'how streams reach the backup host (default: transferStrategy from the config, else ssh)').choices(['ssh', 'ssh_gzip', 'mbuffer', 'mbuffer_gzip']))
    .option('--localSnapLimit <n>', 'keep the newest N snapshots of the group on this host (default: localSnapshotLimit; unset: keep all)')
    .option('--remoteSnapLimit <n>', 'keep the newest N snapshots of the group on the backup host (default: remoteSnapshotLimit; unset: keep all)')
    .addOption(new Option('--remoteSnapshotLimit <n>', 'same as --remoteSnapLimit (smartcopy spelling)').hideHelp(false))
    .option('--no-holds', 'do not hold the newest common snapshot on both sides (holds keep it from being destroyed by hand or by other tools)')
    .option('--wait', 'if another zonecopy run is backing up the same VM, wait for it instead of exiting')
    .option('--dry-run', 'print every command that would change anything, and change nothing')
    .option('--verbose', 'print each step as it runs')
    .option('--json', 'print a machine-readable result on stdout')
    .addHelpText('after', '\nExit status: 0 all backups succeeded, 1 a backup failed, 2 usage or configuration error.')
    .action(async (uuids: string[], flags: BackupFlags) => {
      process.exitCode = await backupCommand(uuids, flags);
    });
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return 0;
      return EXIT_USAGE;
    }
    throw error;
  }
}
