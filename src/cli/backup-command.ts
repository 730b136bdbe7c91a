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
import { vmadmGet, vmLabels, type VmSpecWithRaw } from '../smartos/vmadm.js';
import { checkPrograms, programsNeeded } from '../backup/programs.js';
import { createStrategy } from '../transfer/index.js';
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
  let target: 'ssh' | 's3';
  try {
    checkUuids(uuids);
    config = applyOverrides(
      loadConfig(flags.config ?? defaultConfigPath()),
      {
        transferStrategy: flags.transferStrategy,
        localSnapshotLimit: flags.localSnapLimit,
        remoteSnapshotLimit: flags.remoteSnapLimit ?? flags.remoteSnapshotLimit,
      },
      {
        transferStrategy: '--transferStrategy',
        localSnapshotLimit: '--localSnapLimit',
        remoteSnapshotLimit: '--remoteSnapLimit',
      },
    );
    target = chooseTarget(config, flags.target);
    settings = backupSettings(config, flags, target);
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError) {
      log.info(`zonecopy: ${error.message}`);
      return EXIT_USAGE;
    }
    throw error;
  }

  const print = (line: string) => process.stdout.write(`${line}\n`);
  const local = new LocalHost(Boolean(flags.dryRun), flags.json ? (line) => log.info(line) : print);
  const run = {
    config,
    settings,
    local,
    log,
    wait: Boolean(flags.wait),
    print: flags.json ? (line: string) => log.info(line) : print,
  };
  const { results, remote } =
    target === 's3' ? { ...(await backupToS3(uuids, run)), remote: undefined } : await backupToHost(uuids, run);
  for (const result of results) await report(result, config, local, log, Boolean(flags.json));
  for (const line of vmErrorLines('backup', results.map(backupErrors))) log.info(line);
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
  settings: BackupSettings;
  local: LocalHost;
  log: Log;
  wait: boolean;
  print: (line: string) => void;
}

async function backupToS3(uuids: readonly string[], run: Run): Promise<{ results: VmBackupResult[] }> {
  const { config, settings, local, log } = run;
  // the AWS SDK is loaded only by runs that use it (it is most of the bundle)
  const { backupVmToS3, S3Store } = await import('../s3/index.js');
  const { checkGpgRecipient } = await import('../s3/gpg.js');
  const store = new S3Store(config.s3!);
  const missing = await checkPrograms(programsNeeded(config, 's3'), local, undefined);
  if (missing) return { results: await failedBeforeStart(uuids, missing, store.label, local) };
  const results: VmBackupResult[] = [];
  const recipient = config.s3!.gpgRecipient;
  try {
    if (recipient) await checkGpgRecipient(local, config.s3!, recipient);
  } catch (error) {
    return { results: await failedBeforeStart(uuids, (error as Error).message, store.label, local) };
  }
  for (const uuid of uuids) {
    log.verbose(`backing up VM ${uuid} to ${store.label}`);
    results.push(
      await withVmLock(uuid, config, run.wait, store.label, local, () =>
        backupVmToS3(uuid, settings, { local, store, s3: config.s3!, log, now: () => new Date() }),
      ),
    );
  }
  return { results };
}

/** Every VM of the run over one SSH connection to the backup host. */
async function backupToHost(
  uuids: readonly string[],
  run: Run,
): Promise<{ results: VmBackupResult[]; remote?: RemoteHost }> {
  const { config, settings, local, log } = run;
  let remote: RemoteHost;
  // the first VM's `vmadm get` runs during the SSH handshake (each takes about a second on a busy host)
  const firstSpec = uuids[0] ? vmadmGet(local, uuids[0]) : undefined;
  firstSpec?.catch(() => undefined); // its error, if any, is reported where the spec is used
  try {
    remote = await connectBackupHost(config, { dryRun: local.dryRun, print: run.print });
  } catch (error) {
    return {
      results: await failedBeforeStart(uuids, (error as Error).message, backupHostLabel(config), local, firstSpec),
    };
  }
  const missing = await checkPrograms(programsNeeded(config, 'ssh'), local, remote);
  if (missing) {
    await remote.close();
    return { results: await failedBeforeStart(uuids, missing, remote.label, local, firstSpec), remote };
  }
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
  const results: VmBackupResult[] = [];
  try {
    for (const [index, uuid] of uuids.entries()) {
      log.verbose(`backing up VM ${uuid} to ${remote.label} with ${strategy.name}`);
      // a dry run prints its steps in plan order
      const context: BackupContext = {
        local,
        remote,
        strategy,
        log,
        now: () => new Date(),
        tuning: local.dryRun ? { transfers: 1, streams: 1, seriesLanes: 1 } : tuning(config),
        spec: index === 0 ? firstSpec : undefined,
      };
      results.push(
        await withVmLock(uuid, config, run.wait, remote.label, local, () => backupVm(uuid, settings, context)),
      );
    }
  } finally {
    await strategy.close();
    await remote.close();
  }
  return { results, remote };
}

/** Every VM's result when the run stops before the first of them (no connection, a program missing), each named as vmadm knows it. */
async function failedBeforeStart(
  uuids: readonly string[],
  error: string,
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
    errors: [error],
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

function backupSettings(config: Config, flags: BackupFlags, target: 'ssh' | 's3'): BackupSettings {
  const group = flags.groupName ?? config.snapshotIdentifier;
  if (!isValidSnapshotPart(group))
    throw new UsageError(`--groupName ${JSON.stringify(group)}: use letters, digits and _ . : - only`);
  if (flags.name !== undefined && !isValidSnapshotPart(flags.name))
    throw new UsageError(`--name ${JSON.stringify(flags.name)}: use letters, digits and _ . : - only`);
  return {
    group,
    name: flags.name,
    basePath: sshTarget(config, target).basePath,
    specDirectory: config.backupConfigurationDestinationPath,
    localLimit: config.localSnapshotLimit,
    remoteLimit: config.remoteSnapshotLimit,
    holdTag:
      target === 'ssh' && config.holds && flags.holds !== false
        ? `zonecopy:${config.backupDestination}:${group}`
        : undefined,
    rollback: Boolean(flags.rollback),
    hooks: config.hooks,
    // `zonecopy guest-agent …` as this very program, for the KVM freeze and thaw
    agentCommand: [process.execPath, process.argv[1]!],
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
