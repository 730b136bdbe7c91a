import { Command, CommanderError, Option } from 'commander';
import { backupCommand, type BackupFlags } from './backup-command.js';
import { checkCommand, type CheckFlags } from './check-command.js';
import { ConfigError } from '../config/load.js';
import { HostKeyError } from '../host/known-hosts.js';
import { ConnectError } from '../host/remote.js';
import { EXIT_FAILED, EXIT_USAGE } from './exit-codes.js';
import { guestAgentCli } from './guest-agent-command.js';
import { UsageError } from './session.js';
import { releaseCommand, type ReleaseFlags } from './release-command.js';
import { restoreCommand, type RestoreFlags } from './restore-command.js';
import { statusCommand, type StatusFlags } from './status-command.js';
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
    .description(
      'Snapshot every dataset of each VM at one instant, send the snapshots to the backup host (or object storage), rotate old snapshots on both sides, and report.',
    )
    .argument('<vm-uuid...>', 'UUIDs of the VMs to back up (as in `vmadm list`)')
    .option(
      '--config <path>',
      'configuration file (default: configuration.json beside the installation, or $ZONECOPY_CONFIG)',
    )
    .option(
      '--groupName <group>',
      'snapshot group: names are <group>-<name>, and rotation only touches this group (default: snapshotIdentifier, else "smartcopy")',
    )
    .option('--name <name>', 'replaces the UTC timestamp part of the snapshot name')
    .addOption(
      new Option(
        '--transferStrategy <strategy>',
        'how streams reach the backup host (default: transferStrategy from the config, else ssh)',
      ).choices(['ssh', 'ssh_gzip', 'mbuffer', 'mbuffer_gzip']),
    )
    .option(
      '--localSnapLimit <n>',
      'keep the newest N snapshots of the group on this host (default: localSnapshotLimit; unset: keep all)',
    )
    .option(
      '--remoteSnapLimit <n>',
      'keep the newest N snapshots of the group on the backup host (default: remoteSnapshotLimit; unset: keep all)',
    )
    .addOption(
      new Option('--remoteSnapshotLimit <n>', 'same as --remoteSnapLimit (smartcopy spelling)').hideHelp(false),
    )
    .option(
      '--no-holds',
      'do not hold the newest common snapshot on both sides (holds keep it from being destroyed by hand or by other tools)',
    )
    .option(
      '--rollback',
      'if a dataset was changed on the backup host since its last snapshot, roll it back there before receiving (never done otherwise)',
    )
    .option('--target <target>', 'ssh (the backup host) or s3 (object storage); default: backupTarget from the config')
    .option('--wait', 'if another zonecopy run is backing up the same VM, wait for it instead of exiting')
    .option('--dry-run', 'print every command that would change anything, and change nothing')
    .option('--verbose', 'print each step as it runs')
    .option('--json', 'print a machine-readable result on stdout')
    .addHelpText('after', '\nExit status: 0 all backups succeeded, 1 a backup failed, 2 usage or configuration error.')
    .action(async (uuids: string[], flags: BackupFlags) => {
      process.exitCode = await backupCommand(uuids, flags);
    });
  program
    .command('restore')
    .description(
      'Restore a VM on this host from its backups: the newest complete backup set (or --snapshot), its image installed if missing, the VM recreated from its stored spec and every dataset received. The backup host is only read.',
    )
    .argument('<vm-uuid>', 'UUID of the backed-up VM')
    .option('--config <path>', 'configuration file')
    .option(
      '--snapshot <name>',
      'restore this backup set (a snapshot name such as daily-2026-01-01T02:00:00.000Z) instead of the newest',
    )
    .option('--target <target>', 'restore from ssh (the backup host) or s3 (object storage); default: backupTarget')
    .option(
      '--to-host <[user@]host[:port]>',
      'recreate the VM on that SmartOS host over SSH (same key and known_hosts as the backup host) instead of this one',
    )
    .option('--new-uuid', 'restore a copy under a new UUID beside the original')
    .option('--force', 'replace an existing VM with the same UUID')
    .option('--start', 'start the VM when restored')
    .option(
      '--list',
      'list the complete backup sets (newest first) with how consistent each is (application-consistent by its hooks, or crash-consistent), and change nothing',
    )
    .option('--dry-run', 'print what would change and change nothing')
    .option('--verbose', 'print each step')
    .option('--json', 'machine-readable result')
    .action(async (uuid: string, flags: RestoreFlags) => {
      process.exitCode = await restoreCommand(uuid, flags);
    });

  program
    .command('release')
    .description(
      "Release zonecopy's holds (tags zonecopy:<host>:<group>) on one VM's snapshots, so `vmadm delete` and `vmadm rollback-snapshot` can destroy them. The next backup holds its newest common snapshot again.",
    )
    .argument('<vm-uuid>', 'UUID of a VM on this host')
    .option('--config <path>', 'configuration file')
    .option('--remote', "also release them on the backup host (its copies of the VM's datasets)")
    .option('--dry-run', 'print what would be released and release nothing')
    .addHelpText(
      'after',
      '\nExit status: 0 released (or nothing to release), 1 failed, 2 usage or configuration error.',
    )
    .action(async (uuid: string, flags: ReleaseFlags) => {
      process.exitCode = await releaseCommand(uuid, flags);
    });

  program
    .command('status')
    .description(
      'Show, per VM and dataset, the snapshots of each group on both sides, the newest common snapshot and its age, pending resumable transfers and chain health.',
    )
    .argument('[vm-uuid...]', 'VMs to show (default: every VM on this host)')
    .option('--config <path>', 'configuration file')
    .option('--json', 'machine-readable output')
    .option('--target <target>', 'ssh (the backup host) or s3 (object storage); default: backupTarget from the config')
    .option('--verify', 'object storage: download every stored stream and check it against its recorded sha256')
    .addHelpText(
      'after',
      '\nExit status: 0 every chain healthy, 1 something needs attention, 2 usage or configuration error.',
    )
    .action(async (uuids: string[], flags: StatusFlags) => {
      process.exitCode = await statusCommand(uuids, flags);
    });

  program
    .command('check')
    .description('Monitoring check (Nagios style): one line, by the age of the newest complete backup of each VM.')
    .argument('[vm-uuid...]', 'VMs to check (default: every VM on this host)')
    .option('--config <path>', 'configuration file')
    .option('--warn <age>', "WARNING when a VM's newest backup is older than this (s, m, h, d, w)", '26h')
    .option('--crit <age>', 'CRITICAL when older than this', '50h')
    .option('--target <target>', 'ssh (the backup host) or s3 (object storage); default: backupTarget from the config')
    .addHelpText('after', '\nExit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.')
    .action(async (uuids: string[], flags: CheckFlags) => {
      process.exitCode = await checkCommand(uuids, flags);
    });
  program
    .command('guest-agent')
    .description(
      "Send one command (guest-fsfreeze-freeze, guest-fsfreeze-thaw, guest-fsfreeze-status, guest-ping) to a KVM guest's QEMU agent socket and print its answer; backups use it for hooks.guestAgent.",
    )
    .argument('<socket>', 'the agent socket as the global zone sees it, e.g. /zones/<uuid>/root/tmp/vm.qga')
    .argument('<command>', 'the agent command')
    .action(async (socket: string, command: string) => {
      process.exitCode = await guestAgentCli(socket, command);
    });
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (
        error.code === 'commander.helpDisplayed' ||
        error.code === 'commander.version' ||
        error.code === 'commander.help'
      )
        return 0;
      return EXIT_USAGE;
    }
    if (error instanceof ConfigError || error instanceof UsageError) {
      process.stderr.write(`zonecopy: ${error.message}\n`);
      return EXIT_USAGE;
    }
    if (error instanceof ConnectError || error instanceof HostKeyError) {
      process.stderr.write(`zonecopy: ${error.message}\n`);
      return EXIT_FAILED;
    }
    throw error;
  }
}
