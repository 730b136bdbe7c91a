import { Command, CommanderError, Option } from 'commander';
import { backupCommand } from './backup-command.js';
import { checkCommand } from './check-command.js';
import { drillCommand } from './drill-command.js';
import { ConfigError } from '../config/load.js';
import { CommandError } from '../host/host.js';
import { HostKeyError } from '../host/known-hosts.js';
import { ConnectError } from '../host/remote.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from './exit-codes.js';
import { guestAgentCli } from './guest-agent-command.js';
import { UsageError } from './session.js';
import { forgetTargetCommand } from './forget-target-command.js';
import { releaseCommand } from './release-command.js';
import { restoreCommand } from './restore-command.js';
import { serveCommand } from './serve-command.js';
import { statusCommand } from './status-command.js';
import { VERSION } from './version.js';

/** Where an action leaves its exit code. */
export interface Outcome {
  code: number;
}

// options several commands share, declared once so that their spelling and meaning cannot drift apart
const configOption = () =>
  new Option(
    '--config <path>',
    'configuration file (default: configuration.json beside the installation, or $ZONECOPY_CONFIG)',
  );
const targetOption = () =>
  new Option(
    '--target <target>',
    'a target\'s name from "targets", or ssh (the backup host) or s3 (object storage); default: backup and check use every target, release --remote every SSH one, the other commands the first (or backupTarget)',
  );
const dryRunOption = (description = 'print every command that would change anything, and change nothing') =>
  new Option('--dry-run', description);
const verboseOption = () => new Option('--verbose', 'print each step as it runs');
const jsonOption = () => new Option('--json', 'print a machine-readable result on stdout');
/** commander's way to take an option more than once. */
const collect = (value: string, previous: string[]) => [...previous, value];
const exitStatus = (codes: string) => `\nExit status: ${codes}.`;

/** `zonecopy <command>`; `bin/backup <uuid>` is the smartcopy-compatible spelling of `zonecopy backup <uuid>`. */
export function buildProgram(outcome: Outcome = { code: EXIT_OK }): Command {
  // commander drops what an action returns: each command's exit code is kept for main to return
  // commander passes the Command itself after the options; dropped, so a command's own trailing parameter (release's hosts) keeps its default
  const returning =
    <A extends unknown[]>(command: (...args: A) => Promise<number>) =>
    async (...args: [...A, Command]) => {
      outcome.code = await command(...(args.slice(0, -1) as A));
    };
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
    .argument('[vm-uuid...]', 'UUIDs of the VMs to back up (as in `vmadm list`); or --all, or --filter')
    .option('--all', 'every VM on this host')
    .option(
      '--filter <key=value>',
      'the VMs vmadm lookup finds with this filter, e.g. tags.backup=daily or alias=~^web (repeat: all must match)',
      collect,
      [],
    )
    .option('--exclude <uuid-or-alias>', 'leave this VM out of --all or --filter (repeat for more)', collect, [])
    .addOption(configOption())
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
      '--keep-local <schedule>',
      'thinning schedule of the group on this host, e.g. 10,1d1w,1w1m,1m1y = the 10 newest, one per day for a week, one per week for a month, one per month for a year (units s, min, h, d, w, m = 30 days, y); with a count too, a snapshot either keeps stays (default: localRetention)',
    )
    .option(
      '--keep-remote <schedule>',
      'thinning schedule of the group on every target, e.g. 1d1m,1w1y (default: remoteRetention, per target or at the top)',
    )
    .option(
      '--no-holds',
      'do not hold the newest common snapshot on both sides (holds keep it from being destroyed by hand or by other tools)',
    )
    .option(
      '--rollback',
      'if a dataset was changed on the backup host since its last snapshot, roll it back there before receiving (never done otherwise)',
    )
    .addOption(targetOption())
    .option('--wait', 'if another zonecopy run is backing up the same VM, wait for it instead of exiting')
    .addOption(dryRunOption())
    .addOption(verboseOption())
    .addOption(jsonOption())
    .addHelpText('after', exitStatus('0 all backups succeeded, 1 a backup failed, 2 usage or configuration error'))
    .action(returning(backupCommand));
  program
    .command('restore')
    .description(
      'Restore a VM on this host from its backups: the newest complete backup set (or --snapshot), its image installed if missing, the VM recreated from its stored spec and every dataset received. The backup host is only read.',
    )
    .argument('<vm-uuid>', 'UUID of the backed-up VM')
    .addOption(configOption())
    .option(
      '--snapshot <name>',
      'restore this backup set (a snapshot name such as daily-2026-01-01T02:00:00.000Z) instead of the newest',
    )
    .addOption(targetOption())
    .option(
      '--to-host <[user@]host[:port]>',
      'recreate the VM on that SmartOS host over SSH (same key and known_hosts as the backup host) instead of this one',
    )
    .option('--new-uuid', 'restore a copy under a new UUID beside the original')
    .option(
      '--force',
      'replace an existing VM with the same UUID: the backup is received beside it first, then swapped in and the old copy removed; any failure puts the VM back as it was',
    )
    .option('--start', 'start the VM when restored')
    .option(
      '--dataset <name>',
      "restore only this dataset of the set, beside the VM (never over it), with --as: its name as --list shows it (zones/<uuid>/data), or relative to the VM's root dataset (data, disk0); its child datasets are not included",
    )
    .option(
      '--as <newname>',
      'with --dataset: the new dataset to receive it as (must not exist; its parent must), mounted read-only to copy files back; remove it with zfs destroy -r NEWNAME',
    )
    .option(
      '--list',
      'list the complete backup sets (newest first) with how consistent each is (application-consistent by its hooks, or crash-consistent) and their datasets with sizes, and change nothing',
    )
    .addOption(dryRunOption())
    .addOption(verboseOption())
    .addOption(jsonOption())
    .addHelpText('after', exitStatus('0 restored (or listed), 1 the restore failed, 2 usage or configuration error'))
    .action(returning(restoreCommand));

  program
    .command('drill')
    .description(
      "Restore drill: receive every dataset of the VM's newest complete backup set (or --snapshot) into a scratch dataset on this host (not as a VM), compare each snapshot's guid with the backup's and its files or volume bytes with the VM's own snapshot of that set here, record the result and the time it took (RTO) for `check` and the backup report, and destroy the copy.",
    )
    .argument('<vm-uuid>', 'UUID of the backed-up VM (it need not exist on this host)')
    .addOption(configOption())
    .addOption(targetOption())
    .option(
      '--scratch <dataset>',
      "receive below this dataset (default: <pool of the VM's root dataset>/zonecopy-drill, made if missing and kept; zones/zonecopy-drill when the VM is not here)",
    )
    .option(
      '--snapshot <name>',
      'restore this backup set (a snapshot name such as daily-2026-01-01T02:00:00.000Z) instead of the newest',
    )
    .addOption(dryRunOption('print what the drill would run, and change nothing'))
    .addOption(verboseOption())
    .addOption(jsonOption())
    .addHelpText(
      'after',
      exitStatus('0 the drill passed, 1 a dataset differed or the drill failed, 2 usage or configuration error'),
    )
    .action(returning(drillCommand));

  program
    .command('release')
    .description(
      "Release zonecopy's holds (tags zonecopy:<host>:<group>) on one VM's snapshots, so `vmadm delete` and `vmadm rollback-snapshot` can destroy them. The next backup holds its newest common snapshot again.",
    )
    .argument('<vm-uuid>', 'UUID of a VM on this host')
    .addOption(configOption())
    .option('--remote', "also release them on every SSH target's backup host (its copies of the VM's datasets)")
    .addOption(targetOption())
    .addOption(dryRunOption('print what would be released and release nothing'))
    .addHelpText('after', exitStatus('0 released (or nothing to release), 1 failed, 2 usage or configuration error'))
    .action(returning(releaseCommand));
  program
    .command('forget-target')
    .description(
      "Drop a target that is gone for good: release every hold it placed on this host's snapshots (tags zonecopy:<target>:<group>, any group, all pools). Remove the target from the configuration first; a target still configured is refused, since its next backup would hold again.",
    )
    .argument(
      '<target>',
      'the name the target had: its "targets" name (without "targets": its backupDestination, or s3)',
    )
    .addOption(configOption())
    .addOption(dryRunOption('print what would be released and release nothing'))
    .addHelpText(
      'after',
      exitStatus('0 released (or nothing to release), 1 failed, 2 usage or configuration error (or still configured)'),
    )
    .action(returning(forgetTargetCommand));

  program
    .command('status')
    .description(
      'Show, per VM and dataset, the snapshots of each group on both sides, the newest common snapshot and its age, pending resumable transfers and chain health.',
    )
    .argument('[vm-uuid...]', 'VMs to show (default: every VM on this host)')
    .addOption(configOption())
    .addOption(jsonOption())
    .addOption(targetOption())
    .option('--verify', 'object storage: download every stored stream and check it against its recorded sha256')
    .option(
      '--watch',
      "live view of the running service (zonecopy serve) from its state file: policies, each VM's last cycle and RPO lag, streams in flight with bytes, rate and ETA; until Ctrl-C",
    )
    .option('--interval <seconds>', 'seconds between redraws of --watch (default 2)')
    .addHelpText(
      'after',
      exitStatus(
        '0 every chain healthy, 1 something needs attention, 2 usage or configuration error; with --watch: 0 ended by Ctrl-C, 1 no service running',
      ),
    )
    .action(returning(statusCommand));

  program
    .command('check')
    .description(
      "Monitoring check (Nagios style): one line, by the age of the newest complete backup of each VM on each target; CRITICAL where a VM's newest common snapshot with a target is older than the target's staleAfter.",
    )
    .argument('[vm-uuid...]', 'VMs to check (default: every VM on this host)')
    .addOption(configOption())
    .option('--warn <age>', "WARNING when a VM's newest backup is older than this (s, m, h, d, w)", '26h')
    .option('--crit <age>', 'CRITICAL when older than this', '50h')
    .addOption(targetOption())
    .addHelpText('after', exitStatus('0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN'))
    .action(returning(checkCommand));
  program
    .command('serve')
    .description(
      'Run as a service (under SMF: svcadm enable zonecopy): back up the VMs of each policy in the configuration\'s "policies" on its cron schedule or every N seconds, over SSH connections kept open, never two cycles of one VM at once; keep a state file (serviceStateFile) and Prometheus metrics. SIGHUP reloads the configuration, SIGTERM stops after the running cycles.',
    )
    .addOption(configOption())
    .option(
      '--metrics-listen <host:port>',
      'serve Prometheus metrics on http://host:port/metrics (default: metricsListen from the config; none if unset)',
    )
    .option('--once', 'run every policy once now, then exit (0 every VM succeeded, 1 otherwise)')
    .addOption(verboseOption())
    .addHelpText(
      'after',
      exitStatus(
        '0 stopped by SIGTERM (or --once: all succeeded), 1 --once: a backup failed, 2 usage or configuration error',
      ),
    )
    .action(returning(serveCommand));
  program
    .command('guest-agent')
    .description(
      "Send one command (guest-fsfreeze-freeze, guest-fsfreeze-thaw, guest-fsfreeze-status, guest-ping) to a KVM guest's QEMU agent socket and print its answer; backups use it for hooks.guestAgent.",
    )
    .argument('<socket>', 'the agent socket as the global zone sees it, e.g. /zones/<uuid>/root/tmp/vm.qga')
    .argument('<command>', 'the agent command')
    .action(returning(guestAgentCli));
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  const outcome: Outcome = { code: EXIT_OK };
  const program = buildProgram(outcome);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return outcome.code;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (
        error.code === 'commander.helpDisplayed' ||
        error.code === 'commander.version' ||
        error.code === 'commander.help'
      )
        return EXIT_OK;
      return EXIT_USAGE;
    }
    if (error instanceof ConfigError || error instanceof UsageError) {
      process.stderr.write(`zonecopy: ${error.message}\n`);
      return EXIT_USAGE;
    }
    // a program that failed (vmadm missing or refusing) is said as it failed, not as zonecopy's own defect
    if (error instanceof ConnectError || error instanceof HostKeyError || error instanceof CommandError) {
      process.stderr.write(`zonecopy: ${error.message}\n`);
      return EXIT_FAILED;
    }
    throw error;
  }
}
