import { backupVm, type BackupContext, type BackupSettings } from '../backup/backup-vm.js';
import { lockVm, type VmLock } from '../backup/lock.js';
import { applyOverrides, ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Host } from '../host/host.js';
import { LocalHost } from '../host/local.js';
import { UnreachableError, type RemoteHost } from '../host/remote.js';
import { stderrLog, type Log } from '../log.js';
import { sendReportEmail } from '../report/email.js';
import { appendRunLog } from '../report/log-file.js';
import { renderText } from '../report/render.js';
import { DRILL_DIRECTORY, readDrillRecord } from '../restore/drill-record.js';
import { runStatus, type VmBackupResult } from '../report/types.js';
import { vmadmGet, vmLabels, type VmSpecWithRaw } from '../smartos/vmadm.js';
import { selectTargets, type ResolvedTarget } from '../config/targets.js';
import type { Target } from '../target/target.js';
import { ZfsTarget } from '../target/zfs-target.js';
import { checkPrograms, programsNeeded } from '../backup/programs.js';
import { kernelName } from '../host/kernel.js';
import { createStrategy } from '../transfer/index.js';
import { parseSchedule, type Retention } from '../plan/retention.js';
import { parseDuration } from '../status/health.js';
import { retentionOf } from '../plan/rotation.js';
import { targetHoldPrefix } from '../zfs/holds.js';
import { isValidSnapshotPart } from '../zfs/names.js';
import { defaultConfigPath } from './paths.js';
import {
  backupHostLabel,
  checkUuids,
  chooseTarget,
  connectBackupHost,
  sshEndpoint,
  sshTarget,
  UsageError,
} from './session.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from './exit-codes.js';
import { tuning } from '../transfer/tuning.js';
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
}

export async function backupCommand(uuids: string[], flags: BackupFlags): Promise<number> {
  const log = stderrLog(Boolean(flags.verbose));
  let config: Config;
  let settings: BackupSettings;
  let targets: ResolvedTarget[];
  try {
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
    if (error instanceof UsageError || error instanceof ConfigError) {
      log.info(`zonecopy: ${error.message}`);
      return EXIT_USAGE;
    }
    throw error;
  }

  const print = (line: string) => process.stdout.write(`${line}\n`);
  const local = new LocalHost(Boolean(flags.dryRun), flags.json ? (line) => log.info(line) : print);
  const run: Run = {
    config,
    flags,
    local,
    log,
    print: flags.json ? (line: string) => log.info(line) : print,
  };
  // the first VM's `vmadm get` runs during the SSH handshakes (each takes about a second on a busy host)
  const firstSpec = uuids[0] ? vmadmGet(local, uuids[0]) : undefined;
  firstSpec?.catch(() => undefined); // its error, if any, is reported where the spec is used
  const opened = await Promise.all(targets.map((target) => openTarget(target, run)));
  const results: VmBackupResult[] = [];
  try {
    const usable = opened.filter((o) => o.target);
    // with snapshotWhenTargetsDown (the default) a run whose targets are all down still snapshots
    // and thins here; a target refused for its configuration (key, program, gpg) stops the run first
    const down = settings.snapshotWhenTargetsDown && opened.every((o) => o.down);
    if (usable.length === 0 && !down) {
      const why = opened.map((o) => (opened.length > 1 ? `${o.name}: ${o.error}` : o.error!));
      const labels = opened.map((o) => o.label).join(', ');
      results.push(...(await failedBeforeStart(uuids, why, labels, local, firstSpec)));
    } else {
      const all = opened.map((o, i) => o.target ?? unreachable(o, holdTag(targets[i]!.config, flags, o.name)));
      const labels = all.map((t) => t.label).join(', ');
      for (const [index, uuid] of uuids.entries()) {
        log.verbose(`backing up VM ${uuid} to ${labels}`);
        const context: BackupContext = {
          local,
          targets: all,
          log,
          now: () => new Date(),
          spec: index === 0 ? firstSpec : undefined,
        };
        results.push(
          await withVmLock(uuid, config, Boolean(flags.wait), labels, local, () => backupVm(uuid, settings, context)),
        );
      }
    }
  } finally {
    for (const o of opened) await o.close();
  }
  for (const result of results) await report(result, config, local, log, Boolean(flags.json));
  for (const line of vmErrorLines('backup', results.map(backupErrors))) log.info(line);
  const remote = opened.find((o) => o.remote)?.remote;
  if (flags.json) {
    const maxRssKiB = process.resourceUsage().maxRSS;
    print(
      JSON.stringify(
        {
          results: results.map(jsonResult),
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

interface Run {
  config: Config;
  flags: BackupFlags;
  local: LocalHost;
  log: Log;
  print: (line: string) => void;
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

interface OpenedTarget {
  name: string;
  label: string;
  target?: Target;
  error?: string;
  /** It could not be reached at all (as opposed to refused for its configuration). */
  down?: boolean;
  remote?: RemoteHost;
  close: () => Promise<void>;
}

/**
 * A target that could not be opened: each VM's run names it failed; local thinning keeps its
 * newest common snapshot by its hold, and thins nothing when it holds none.
 */
function unreachable(opened: OpenedTarget, holdTag: string | undefined): Target {
  return {
    name: opened.name,
    label: opened.label,
    holdTag,
    prepare: () => Promise.reject(new Error(opened.error)),
  };
}

/** This target's hold tag on both sides, unless holds are off in its configuration or by --no-holds. */
function holdTag(config: Config, flags: BackupFlags, name: string): string | undefined {
  const group = flags.groupName ?? config.snapshotIdentifier;
  return config.holds && flags.holds !== false ? `${targetHoldPrefix(name)}${group}` : undefined;
}

/** A target's retention from its configuration (its own keys over the top level's). */
function remoteRetention(config: Config): Retention | undefined {
  return retentionOf(
    config.remoteSnapshotLimit,
    config.remoteRetention === undefined ? undefined : parseSchedule(config.remoteRetention),
  );
}

/** Connects to a target and checks the programs it needs; a failure is that target's alone. */
async function openTarget(resolved: ResolvedTarget, run: Run): Promise<OpenedTarget> {
  const { local, log, flags } = run;
  const { config, name } = resolved;
  const nothing = async () => undefined;
  if (resolved.type === 's3') {
    // the AWS SDK is loaded only by runs that use it (it is most of the bundle)
    const { ObjectTarget, S3Store } = await import('../s3/index.js');
    const { checkGpgRecipient } = await import('../s3/gpg.js');
    const { DryRunStore } = await import('../s3/dry-run-store.js');
    const s3 = config.s3!;
    // a dry run reads the bucket and prints what it would write
    const store = local.dryRun ? new DryRunStore(new S3Store(s3), run.print) : new S3Store(s3);
    const failed = (error: string): OpenedTarget => ({ name, label: store.label, error, close: nothing });
    const missing = await checkPrograms(programsNeeded(config, 's3'), local, undefined);
    if (missing) return failed(missing);
    try {
      if (s3.gpgRecipient) await checkGpgRecipient(local, s3, s3.gpgRecipient);
    } catch (error) {
      return failed((error as Error).message);
    }
    const target = new ObjectTarget(
      name,
      { local, store, s3, log },
      { remoteRetention: remoteRetention(config), holdTag: holdTag(config, flags, name) },
    );
    return { name, label: store.label, target, close: nothing };
  }
  let remote: RemoteHost;
  try {
    remote = await connectBackupHost(config, { dryRun: local.dryRun, print: run.print });
  } catch (error) {
    const down = error instanceof UnreachableError;
    return { name, label: backupHostLabel(config), error: (error as Error).message, down, close: nothing };
  }
  // asked now, beside the program check, so the holds query never waits for it
  void kernelName(remote);
  const missing = await checkPrograms(programsNeeded(config, 'ssh'), local, remote);
  if (missing) return { name, label: remote.label, error: missing, remote, close: () => remote.close() };
  const strategy = createStrategy(config.transferStrategy, {
    local,
    remote,
    remoteAddress: sshTarget(config).destination,
    compress: config.compressionCmd,
    decompress: config.decompressionCmd,
    mbufferLocal: config.mBufferLocalPath,
    mbufferRemote: config.mBufferRemotePath,
    mbufferLocalSize: config.mBufferLocalBufferSize,
    mbufferRemoteSize: config.mBufferRemoteBufferSize,
    mbufferPorts: config.mBufferPortRange,
    mbufferTimeoutSeconds: config.mBufferTimeoutSeconds,
    bulk: config.sshBulkTransport,
    openssh: sshEndpoint(config),
  });
  const target = new ZfsTarget(
    name,
    {
      basePath: sshTarget(config).basePath,
      specDirectory: config.backupConfigurationDestinationPath,
      remoteRetention: remoteRetention(config),
      holdTag: holdTag(config, flags, name),
      rollback: Boolean(flags.rollback),
    },
    {
      local,
      remote,
      strategy,
      log,
      // a dry run prints its steps in plan order
      tuning: local.dryRun ? { transfers: 1, streams: 1, seriesLanes: 1 } : tuning(config),
    },
  );
  return {
    name,
    label: remote.label,
    target,
    remote,
    close: async () => {
      await strategy.close();
      await remote.close();
    },
  };
}

/** Every VM's result when the run stops before the first of them (no connection, a program missing), each named as vmadm knows it. */
async function failedBeforeStart(
  uuids: readonly string[],
  errors: string[],
  backupHost: string,
  local: Host,
  firstSpec?: Promise<VmSpecWithRaw>,
): Promise<VmBackupResult[]> {
  const now = new Date();
  const labels = await vmLabels(local, uuids, firstSpec ? new Map([[uuids[0]!, firstSpec]]) : undefined);
  return uuids.map((uuid) => ({
    uuid,
    ...labels.get(uuid),
    backupHost,
    startedAt: now,
    finishedAt: now,
    status: 'failed',
    datasets: [],
    errors: [...errors],
    dryRun: local.dryRun,
  }));
}

/** One run per VM at a time: a second one fails with the lock's message, or waits with --wait. */
async function withVmLock(
  uuid: string,
  config: Config,
  wait: boolean,
  backupHost: string,
  local: Host,
  run: () => Promise<VmBackupResult>,
): Promise<VmBackupResult> {
  let lock: VmLock;
  try {
    lock = await lockVm(config.lockDirectory, uuid, { wait });
  } catch (error) {
    const now = new Date();
    return {
      uuid,
      backupHost,
      startedAt: now,
      finishedAt: now,
      status: 'failed',
      datasets: [],
      errors: [(error as Error).message],
      dryRun: local.dryRun,
    };
  }
  try {
    return await run();
  } finally {
    lock.release();
  }
}

function backupSettings(config: Config, flags: BackupFlags, targets: readonly ResolvedTarget[]): BackupSettings {
  const group = flags.groupName ?? config.snapshotIdentifier;
  if (!isValidSnapshotPart(group))
    throw new UsageError(`--groupName ${JSON.stringify(group)}: use letters, digits and _ . : - only`);
  if (flags.name !== undefined && !isValidSnapshotPart(flags.name))
    throw new UsageError(`--name ${JSON.stringify(flags.name)}: use letters, digits and _ . : - only`);
  return {
    group,
    name: flags.name,
    localRetention: retentionOf(
      config.localSnapshotLimit,
      config.localRetention === undefined ? undefined : parseSchedule(config.localRetention),
    ),
    snapshotWhenTargetsDown: config.snapshotWhenTargetsDown,
    staleAfter: new Map(
      targets.flatMap((t) => (t.config.staleAfter ? [[t.name, parseDuration(t.config.staleAfter)] as const] : [])),
    ),
    hooks: config.hooks,
    // `zonecopy guest-agent …` as this very program, for the KVM freeze and thaw
    agentCommand: [process.execPath, process.argv[1]!],
  };
}

async function report(run: VmBackupResult, config: Config, local: Host, log: Log, json: boolean): Promise<void> {
  const drill = readDrillRecord(DRILL_DIRECTORY, run.uuid);
  const result = drill ? { ...run, lastDrill: drill } : run;
  if (!json) process.stdout.write(`${renderText(result)}\n`);
  if (local.dryRun) return;
  const logged = appendRunLog(config.logDirectory, result);
  if (typeof logged !== 'string') log.warn(`${logged.error}`);
  const mail = await sendReportEmail(config, result);
  if (!mail.sent) log.info(mail.note);
  else log.verbose(mail.note);
}

function jsonResult(result: VmBackupResult) {
  return { ...result, startedAt: result.startedAt.toISOString(), finishedAt: result.finishedAt.toISOString() };
}
