import type { Config } from '../config/schema.js';
import { parseDuration } from '../status/health.js';
import type { BackupSettings } from './backup-vm.js';
import type { ResolvedTarget } from '../config/targets.js';
import type { LocalHost } from '../host/local.js';
import { kernelName } from '../host/kernel.js';
import { UnreachableError, type RemoteHost } from '../host/remote.js';
import type { Log } from '../log.js';
import { parseSchedule, type Retention } from '../plan/retention.js';
import { retentionOf } from '../plan/rotation.js';
import type { Target } from '../target/target.js';
import { ZfsTarget } from '../target/zfs-target.js';
import { createStrategy } from '../transfer/index.js';
import { DEFAULT_MAX_SESSIONS, tuning } from '../transfer/tuning.js';
import { targetHoldPrefix } from '../zfs/holds.js';
import { backupHostLabel, connectBackupHost, sshEndpoint, sshTarget } from '../cli/session.js';
import { checkPrograms, programsNeeded } from './programs.js';

/** How a run (one `backup`, or one cycle of `serve`) uses its targets. */
export interface TargetOptions {
  local: LocalHost;
  log: Log;
  print: (line: string) => void;
  /** Snapshot group: part of each target's hold tag. */
  group: string;
  /** false: --no-holds. */
  holds?: boolean;
  rollback?: boolean;
  /** VMs backed up side by side: each gets its share of the backup host's SSH sessions. */
  vmConcurrency?: number;
  /** A connection to this target's backup host kept by the caller (serve, across cycles): used, and left open by close(). */
  connection?: RemoteHost;
}

export interface OpenedTarget {
  name: string;
  /** Its configuration (its own keys over the top level's). */
  config: Config;
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
export function unreachable(opened: OpenedTarget, holdTag: string | undefined): Target {
  return {
    name: opened.name,
    label: opened.label,
    holdTag,
    prepare: () => Promise.reject(new Error(opened.error)),
  };
}

/** This target's hold tag on both sides, unless holds are off in its configuration or by --no-holds. */
export function holdTag(
  config: Config,
  options: Pick<TargetOptions, 'group' | 'holds'>,
  name: string,
): string | undefined {
  return config.holds && options.holds !== false ? `${targetHoldPrefix(name)}${options.group}` : undefined;
}

/** A target's retention from its configuration (its own keys over the top level's). */
function remoteRetention(config: Config): Retention | undefined {
  return retentionOf(
    config.remoteSnapshotLimit,
    config.remoteRetention === undefined ? undefined : parseSchedule(config.remoteRetention),
  );
}

/** Connects to a target and checks the programs it needs; a failure is that target's alone. */
export async function openTarget(resolved: ResolvedTarget, options: TargetOptions): Promise<OpenedTarget> {
  return { ...(await open(resolved, options)), config: resolved.config };
}

async function open(resolved: ResolvedTarget, options: TargetOptions): Promise<Omit<OpenedTarget, 'config'>> {
  const { local, log } = options;
  const { config, name } = resolved;
  const nothing = async () => undefined;
  if (resolved.type === 's3') {
    // the AWS SDK is loaded only by runs that use it (it is most of the bundle)
    const { ObjectTarget, S3Store } = await import('../s3/index.js');
    const { checkGpgRecipient } = await import('../s3/gpg.js');
    const { DryRunStore } = await import('../s3/dry-run-store.js');
    const s3 = config.s3!;
    // a dry run reads the bucket and prints what it would write
    const store = local.dryRun ? new DryRunStore(new S3Store(s3), options.print) : new S3Store(s3);
    const failed = (error: string): Omit<OpenedTarget, 'config'> => ({
      name,
      label: store.label,
      error,
      close: nothing,
    });
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
      { remoteRetention: remoteRetention(config), holdTag: holdTag(config, options, name) },
    );
    return { name, label: store.label, target, close: nothing };
  }
  let remote: RemoteHost;
  const shared = options.connection !== undefined;
  try {
    remote = options.connection ?? (await connectBackupHost(config, { dryRun: local.dryRun, print: options.print }));
  } catch (error) {
    const down = error instanceof UnreachableError;
    return { name, label: backupHostLabel(config), error: (error as Error).message, down, close: nothing };
  }
  // asked now, beside the program check, so the holds query never waits for it
  void kernelName(remote);
  const missing = await checkPrograms(programsNeeded(config, 'ssh'), local, remote);
  const closeRemote = () => (shared ? Promise.resolve() : remote.close());
  if (missing) return { name, label: remote.label, error: missing, remote, close: closeRemote };
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
      holdTag: holdTag(config, options, name),
      rollback: Boolean(options.rollback),
    },
    {
      local,
      remote,
      strategy,
      log,
      // a dry run prints its steps in plan order
      tuning: local.dryRun ? { transfers: 1, streams: 1, seriesLanes: 1 } : vmShare(config, options.vmConcurrency ?? 1),
    },
  );
  return {
    name,
    label: remote.label,
    target,
    remote,
    close: async () => {
      await strategy.close();
      await closeRemote();
    },
  };
}

/** One VM's share of the backup host's sessions when several VMs run side by side over its one connection. */
export function vmShare(config: Pick<Config, 'transferConcurrency' | 'sshMaxSessions'>, vms: number) {
  if (vms <= 1) return tuning(config);
  const sessions = Math.floor((config.sshMaxSessions ?? DEFAULT_MAX_SESSIONS) / vms);
  const transfers =
    config.transferConcurrency === undefined ? undefined : Math.max(1, Math.floor(config.transferConcurrency / vms));
  return tuning({ sshMaxSessions: sessions, transferConcurrency: transfers });
}

/** One run's (or one policy's) backup settings: the group, this host's retention, and each target's staleAfter. */
export function runSettings(
  config: Config,
  group: string,
  targets: readonly ResolvedTarget[],
  extra: { name?: string; agentCommand?: string[] } = {},
): BackupSettings {
  return {
    group,
    name: extra.name,
    localRetention: retentionOf(
      config.localSnapshotLimit,
      config.localRetention === undefined ? undefined : parseSchedule(config.localRetention),
    ),
    snapshotWhenTargetsDown: config.snapshotWhenTargetsDown,
    staleAfter: new Map(
      targets.flatMap((t) => (t.config.staleAfter ? [[t.name, parseDuration(t.config.staleAfter)] as const] : [])),
    ),
    hooks: config.hooks,
    agentCommand: extra.agentCommand,
  };
}
