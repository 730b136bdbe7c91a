import type { BackupSettings } from '../backup/backup-vm.js';
import { openTarget, runSettings } from '../backup/open-targets.js';
import { backupVms, earlySpec } from '../backup/run-vms.js';
import { applyOverrides, ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Host } from '../host/host.js';
import { LocalHost } from '../host/local.js';
import { stderrLog, type Log } from '../log.js';
import { sendReportEmail, sendSummaryEmail } from '../report/email.js';
import { appendRunLog } from '../report/log-file.js';
import { renderText } from '../report/render.js';
import { showsProgress, startProgressTicker } from '../report/progress.js';
import { activeStreams } from '../transfer/progress.js';
import { summaryLines } from '../report/summary.js';
import { DRILL_DIRECTORY, readDrillRecord } from '../restore/drill-record.js';
import { runStatus, type VmBackupResult } from '../report/types.js';
import {
  checkSelector,
  imageFirsts,
  listVms,
  SelectionError,
  selectVms,
  type VmListing,
  type VmSelector,
} from '../smartos/select-vms.js';
import { selectTargets, type ResolvedTarget } from '../config/targets.js';
import { isValidSnapshotPart } from '../zfs/names.js';
import { defaultConfigPath } from './paths.js';
import { checkUuids, chooseTarget, UsageError } from './session.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from './exit-codes.js';
import { backupErrors, vmErrorLines } from './vm-errors.js';

export interface BackupFlags {
  config?: string;
  groupName?: string;
  name?: string;
  transferStrategy?: Config['transferStrategy'];
  localSnapLimit?: string;
  remoteSnapLimit?: string;
  remoteSnapshotLimit?: string;
  keepLocal?: string;
  keepRemote?: string;
  dryRun?: boolean;
  verbose?: boolean;
  json?: boolean;
  holds?: boolean;
  wait?: boolean;
  rollback?: boolean;
  target?: string;
  all?: boolean;
  filter?: string[];
  exclude?: string[];
}

export async function backupCommand(uuids: string[], flags: BackupFlags): Promise<number> {
  const log = stderrLog(Boolean(flags.verbose));
  let config: Config;
  let settings: BackupSettings;
  let targets: ResolvedTarget[];
  const selector: VmSelector = { uuids, all: flags.all, filters: flags.filter, exclude: flags.exclude };
  try {
    checkSelector(selector);
    checkUuids(uuids);
    config = applyOverrides(
      loadConfig(flags.config ?? defaultConfigPath()),
      {
        transferStrategy: flags.transferStrategy,
        localSnapshotLimit: flags.localSnapLimit,
        remoteSnapshotLimit: flags.remoteSnapLimit ?? flags.remoteSnapshotLimit,
        localRetention: flags.keepLocal,
        remoteRetention: flags.keepRemote,
      },
      {
        transferStrategy: '--transferStrategy',
        localSnapshotLimit: '--localSnapLimit',
        remoteSnapshotLimit: '--remoteSnapLimit',
        localRetention: '--keep-local',
        remoteRetention: '--keep-remote',
      },
    );
    targets = runTargets(config, flags);
    settings = backupSettings(config, flags, targets);
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError || error instanceof SelectionError) {
      log.info(`zonecopy: ${error.message}`);
      return EXIT_USAGE;
    }
    throw error;
  }

  const print = (line: string) => process.stdout.write(`${line}\n`);
  const local = new LocalHost(Boolean(flags.dryRun), flags.json ? (line) => log.info(line) : print);
  const say = flags.json ? (line: string) => log.info(line) : print;
  // one listing names the VMs, shows which share an image, and finds what --all and --filter pick
  let listed: VmListing[];
  try {
    // one named VM (the cron line's case) needs no listing: vmadm get finds it or says it is gone
    listed = uuids.length === 1 ? [] : await listVms(local, selector.filters);
  } catch (error) {
    if (!(error instanceof SelectionError)) throw error;
    log.info(`zonecopy: ${error.message}`);
    return selector.filters?.length ? EXIT_USAGE : EXIT_FAILED;
  }
  const selection = selectVms(selector, listed);
  for (const note of selection.notes) log.warn(note);
  // a selector that matches nothing fails the run: a cron line that backs up nothing must not look fine
  if (selection.uuids.length === 0) return EXIT_FAILED;
  const chosen = selection.uuids;
  const vms = Math.min(config.vmConcurrency, chosen.length);
  const targetOptions = {
    local,
    log,
    print: say,
    group: settings.group,
    holds: flags.holds,
    rollback: flags.rollback,
    vmConcurrency: vms,
  };
  // the first VM's `vmadm get` runs during the SSH handshakes (each takes about a second on a busy host)
  const firstSpec = earlySpec(local, chosen[0]);
  const opened = await Promise.all(targets.map((target) => openTarget(target, targetOptions)));
  const progress = showsProgress({
    json: flags.json,
    dryRun: flags.dryRun,
    isTTY: process.stderr.isTTY,
    term: process.env.TERM,
  })
    ? startProgressTicker(process.stderr, activeStreams)
    : undefined;
  let results: VmBackupResult[];
  try {
    results = await backupVms(chosen, {
      local,
      log,
      config,
      opened,
      targetOptions,
      settings,
      wait: flags.wait,
      concurrency: vms,
      waits: imageFirsts(chosen, listed),
      firstSpec,
    });
  } finally {
    progress?.stop();
    for (const o of opened) await o.close();
  }
  await report(results, selection.notes, config, local, log, Boolean(flags.json));
  for (const line of vmErrorLines('backup', results.map(backupErrors))) log.info(line);
  const remote = opened.find((o) => o.remote)?.remote;
  if (flags.json) {
    const maxRssKiB = process.resourceUsage().maxRSS;
    print(
      JSON.stringify(
        {
          results: results.map(jsonResult),
          notes: selection.notes,
          commands: { local: local.stats, remote: remote?.stats ?? null },
          maxRssKiB,
        },
        null,
        2,
      ),
    );
  } else {
    log.verbose(
      `commands run: local ${JSON.stringify(local.stats)}, backup host ${JSON.stringify(remote?.stats ?? {})}`,
    );
  }
  return results.every((r) => runStatus(r.errors, r.datasets) === 'success') ? EXIT_OK : EXIT_FAILED;
}

/** The targets of this run (`--target` picks one), each checked to have what its type needs. */
function runTargets(config: Config, flags: BackupFlags): ResolvedTarget[] {
  const chosen = selectTargets(config, flags.target);
  if ('error' in chosen) throw new UsageError(chosen.error);
  for (const target of chosen) {
    chooseTarget(target.config, target.type);
    // the command line's limit and strategy win over each target's own
    if (flags.remoteSnapLimit ?? flags.remoteSnapshotLimit)
      target.config = { ...target.config, remoteSnapshotLimit: config.remoteSnapshotLimit };
    if (flags.keepRemote) target.config = { ...target.config, remoteRetention: config.remoteRetention };
    if (flags.transferStrategy) target.config = { ...target.config, transferStrategy: config.transferStrategy };
  }
  return chosen;
}

export function backupSettings(config: Config, flags: BackupFlags, targets: readonly ResolvedTarget[]): BackupSettings {
  const group = flags.groupName ?? config.snapshotIdentifier;
  if (!isValidSnapshotPart(group))
    throw new UsageError(`--groupName ${JSON.stringify(group)}: use letters, digits and _ . : - only`);
  if (flags.name !== undefined && !isValidSnapshotPart(flags.name))
    throw new UsageError(`--name ${JSON.stringify(flags.name)}: use letters, digits and _ . : - only`);
  // `zonecopy guest-agent …` as this very program, for the KVM freeze and thaw
  return runSettings(config, group, targets, { name: flags.name, agentCommand: [process.execPath, process.argv[1]!] });
}

/**
 * Prints each VM's report and logs it; emails one report per VM, or for a run of several VMs one
 * email with a section per VM (unless emailPerVm).
 */
async function report(
  runs: readonly VmBackupResult[],
  notes: readonly string[],
  config: Config,
  local: Host,
  log: Log,
  json: boolean,
): Promise<void> {
  const results = runs.map((run) => {
    const drill = readDrillRecord(DRILL_DIRECTORY, run.uuid);
    return drill ? { ...run, lastDrill: drill } : run;
  });
  if (!json) for (const result of results) process.stdout.write(`${renderText(result)}\n`);
  if (!json && results.length > 1) process.stdout.write(`\n${summaryLines(results, notes).join('\n')}\n`);
  if (local.dryRun) return;
  for (const result of results) {
    const logged = appendRunLog(config.logDirectory, result);
    if (typeof logged !== 'string') log.warn(`${logged.error}`);
  }
  const mails = [];
  if (results.length > 1 && !config.emailPerVm) mails.push(await sendSummaryEmail(config, results, notes));
  else for (const result of results) mails.push(await sendReportEmail(config, result));
  for (const mail of mails) {
    if (!mail.sent) log.info(mail.note);
    else log.verbose(mail.note);
  }
}

function jsonResult(result: VmBackupResult) {
  return { ...result, startedAt: result.startedAt.toISOString(), finishedAt: result.finishedAt.toISOString() };
}
