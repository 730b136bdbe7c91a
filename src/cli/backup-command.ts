import { backupVm, type BackupContext, type BackupSettings } from '../backup/backup-vm.js';
import { lockVm, type VmLock } from '../backup/lock.js';
import { applyOverrides, ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Host } from '../host/host.js';
import { LocalHost } from '../host/local.js';
import type { RemoteHost } from '../host/remote.js';
import { stderrLog, type Log } from '../log.js';
import { sendReportEmail } from '../report/email.js';
import { appendRunLog } from '../report/log-file.js';
import { renderText } from '../report/render.js';
import { runStatus, type VmBackupResult } from '../report/types.js';
import { createStrategy } from '../transfer/index.js';
import { isValidSnapshotPart } from '../zfs/names.js';
import { defaultConfigPath } from './paths.js';
import { backupHostLabel, checkUuids, connectBackupHost, UsageError } from './session.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from './exit-codes.js';

export interface BackupFlags {
  config?: string;
  groupName?: string;
  name?: string;
  transferStrategy?: Config['transferStrategy'];
  localSnapLimit?: string;
  remoteSnapLimit?: string;
  remoteSnapshotLimit?: string;
  dryRun?: boolean;
  verbose?: boolean;
  json?: boolean;
  holds?: boolean;
  wait?: boolean;
  rollback?: boolean;
}

export async function backupCommand(uuids: string[], flags: BackupFlags): Promise<number> {
  const log = stderrLog(Boolean(flags.verbose));
  let config: Config;
  let settings: BackupSettings;
  try {
    checkUuids(uuids);
    config = applyOverrides(loadConfig(flags.config ?? defaultConfigPath()), {
      transferStrategy: flags.transferStrategy,
      localSnapshotLimit: flags.localSnapLimit,
      remoteSnapshotLimit: flags.remoteSnapLimit ?? flags.remoteSnapshotLimit,
    }, { transferStrategy: '--transferStrategy', localSnapshotLimit: '--localSnapLimit', remoteSnapshotLimit: '--remoteSnapLimit' });
    settings = backupSettings(config, flags);
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError) {
      log.info(`zonecopy: ${error.message}`);
      return EXIT_USAGE;
    }
    throw error;
  }

  const print = (line: string) => process.stdout.write(`${line}\n`);
  const local = new LocalHost(Boolean(flags.dryRun), flags.json ? (line) => log.info(line) : print);
  let remote: RemoteHost | undefined;
  const results: VmBackupResult[] = [];
  try {
    remote = await connectBackupHost(config, { dryRun: Boolean(flags.dryRun), print: flags.json ? (line) => log.info(line) : print });
  } catch (error) {
    const now = new Date();
    for (const uuid of uuids) {
      results.push({
        uuid, backupHost: backupHostLabel(config),
        startedAt: now, finishedAt: now, status: 'failed', datasets: [], errors: [(error as Error).message], dryRun: Boolean(flags.dryRun),
      });
    }
  }
  if (remote) {
    const strategy = createStrategy(config.transferStrategy, {
      local,
      remote,
      remoteAddress: config.backupDestination,
      compress: config.compressionCmd,
      decompress: config.decompressionCmd,
      mbufferLocal: config.mBufferLocalPath,
      mbufferRemote: config.mBufferRemotePath,
      mbufferLocalSize: config.mBufferLocalBufferSize,
      mbufferRemoteSize: config.mBufferRemoteBufferSize,
      mbufferPorts: config.mBufferPortRange,
      mbufferTimeoutSeconds: config.mBufferTimeoutSeconds,
    });
    try {
      for (const uuid of uuids) {
        log.verbose(`backing up VM ${uuid} to ${remote.label} with ${strategy.name}`);
        results.push(await backupLocked(uuid, settings, config, Boolean(flags.wait), { local, remote, strategy, log, now: () => new Date() }));
      }
    } finally {
      await remote.close();
    }
  }
  for (const result of results) await report(result, config, local, log, Boolean(flags.json));
  if (flags.json) {
    const maxRssKiB = process.resourceUsage().maxRSS;
    print(JSON.stringify({ results: results.map(jsonResult), commands: { local: local.stats, remote: remote?.stats ?? null }, maxRssKiB }, null, 2));
  } else {
    log.verbose(`commands run: local ${JSON.stringify(local.stats)}, backup host ${JSON.stringify(remote?.stats ?? {})}`);
  }
  return results.every((r) => runStatus(r.errors, r.datasets) === 'success') ? EXIT_OK : EXIT_FAILED;
}

async function backupLocked(uuid: string, settings: BackupSettings, config: Config, wait: boolean, context: BackupContext): Promise<VmBackupResult> {
  let lock: VmLock;
  try {
    lock = await lockVm(config.lockDirectory, uuid, { wait });
  } catch (error) {
    const now = context.now();
    return { uuid, backupHost: context.remote.label, startedAt: now, finishedAt: now, status: 'failed', datasets: [], errors: [(error as Error).message], dryRun: context.local.dryRun };
  }
  try {
    return await backupVm(uuid, settings, context);
  } finally {
    lock.release();
  }
}

function backupSettings(config: Config, flags: BackupFlags): BackupSettings {
  const group = flags.groupName ?? config.snapshotIdentifier;
  if (!isValidSnapshotPart(group)) throw new UsageError(`--groupName ${JSON.stringify(group)}: use letters, digits and _ . : - only`);
  if (flags.name !== undefined && !isValidSnapshotPart(flags.name)) throw new UsageError(`--name ${JSON.stringify(flags.name)}: use letters, digits and _ . : - only`);
  return {
    group,
    name: flags.name,
    basePath: config.backupDestinationBasePath,
    specDirectory: config.backupConfigurationDestinationPath,
    localLimit: config.localSnapshotLimit,
    remoteLimit: config.remoteSnapshotLimit,
    holdTag: config.holds && flags.holds !== false ? `zonecopy:${config.backupDestination}:${group}` : undefined,
    rollback: Boolean(flags.rollback),
  };
}

async function report(result: VmBackupResult, config: Config, local: Host, log: Log, json: boolean): Promise<void> {
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
