import { loadConfig } from '../config/load.js';
import { LocalHost } from '../host/local.js';
import { backupHostTarget } from '../status/backup-host.js';
import { allVmUuids, collectStatus, type StatusTarget, type VmStatus } from '../status/collect.js';
import { formatAge } from '../status/health.js';
import { EXIT_FAILED, EXIT_OK } from './exit-codes.js';
import { defaultConfigPath } from './paths.js';
import { checkUuids, connectBackupHost, singleTarget, sshTarget, UsageError } from './session.js';
import { vmErrorLines } from './vm-errors.js';
import type { Config } from '../config/schema.js';
import { serviceStateFile, watchService } from '../status/watch.js';

export interface StatusFlags {
  config?: string;
  json?: boolean;
  target?: string;
  verify?: boolean;
  watch?: boolean;
  /** Seconds between redraws of --watch. */
  interval?: string;
}

/** Status of the VMs (all on this host when none are named) against the chosen target. */
export async function collectStatuses(
  config: Config,
  uuids: string[],
  options: { target?: string; verify?: boolean },
): Promise<VmStatus[]> {
  const { target, config: chosen } = singleTarget(config, options.target);
  if (options.verify && target === 'ssh')
    throw new UsageError(
      '--verify checks stored streams in object storage; on a backup host ZFS checks every block itself (zpool scrub)',
    );
  return targetStatuses(chosen, target, uuids, Boolean(options.verify));
}

/** Status of the VMs (all on this host when none are named) against one target, given its settings. */
export async function targetStatuses(
  config: Config,
  target: 'ssh' | 's3',
  uuids: readonly string[],
  verify = false,
): Promise<VmStatus[]> {
  const local = new LocalHost(false);
  const vms = uuids.length ? uuids : await allVmUuids(local);
  const opened = await openStatusTarget(config, target, verify);
  try {
    return await collectStatus(vms, local, opened.target, Date.now() / 1000);
  } finally {
    await opened.close();
  }
}

/** The chosen target as status reads it, and how to let go of it afterwards. */
async function openStatusTarget(
  config: Config,
  target: 'ssh' | 's3',
  verify: boolean,
): Promise<{ target: StatusTarget; close: () => Promise<void> }> {
  if (target === 's3') {
    // the AWS SDK is loaded only by runs that use it (it is most of the bundle)
    const { bucketTarget, S3Store } = await import('../s3/index.js');
    return { target: bucketTarget(new S3Store(config.s3!), config.s3!, verify), close: async () => {} };
  }
  const remote = await connectBackupHost(config, { dryRun: false });
  const { basePath } = sshTarget(config);
  return {
    target: backupHostTarget(remote, basePath, config.backupConfigurationDestinationPath),
    close: () => remote.close(),
  };
}

/** `zonecopy status [uuid…]`: per VM and dataset, both sides' snapshots, the newest common one, chain health. */
export async function statusCommand(uuids: string[], flags: StatusFlags): Promise<number> {
  checkUuids(uuids);
  if (flags.watch) return watchCommand(uuids, flags);
  if (flags.interval !== undefined) throw new UsageError('--interval goes with --watch');
  const config = loadConfig(flags.config ?? defaultConfigPath());
  const statuses = await collectStatuses(config, uuids, flags);
  if (flags.json) {
    process.stdout.write(
      `${JSON.stringify(
        statuses.map((s) => ({ ...s, ageSeconds: Number.isFinite(s.ageSeconds) ? s.ageSeconds : null })),
        null,
        2,
      )}\n`,
    );
  } else {
    for (const s of statuses) process.stdout.write(`${renderStatus(s)}\n\n`);
  }
  const failed = statuses.map((s) => ({ uuid: s.uuid, alias: s.alias, errors: s.error ? [s.error] : [] }));
  for (const line of vmErrorLines('status', failed)) process.stderr.write(`${line}\n`);
  const healthy = statuses.every((s) => !s.error && s.datasets.every((d) => d.chain === 'ok' && !d.resumePending));
  return healthy ? EXIT_OK : EXIT_FAILED;
}

/** `status --watch`: the service's live view until Ctrl-C; exit 1 when no service is running (or it stops). */
async function watchCommand(uuids: string[], flags: StatusFlags): Promise<number> {
  if (flags.json || flags.verify || flags.target)
    throw new UsageError(
      '--watch draws the running service from its state file; it takes no --json, --verify or --target',
    );
  const interval = Number(flags.interval ?? '2');
  if (!(interval >= 0.2 && interval <= 3600))
    throw new UsageError(`--interval ${JSON.stringify(flags.interval)}: seconds between redraws, from 0.2 to 3600`);
  const config = loadConfig(flags.config ?? defaultConfigPath());
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const ended = await watchService({
      file: serviceStateFile(config),
      intervalMs: interval * 1000,
      uuids,
      out: process.stdout,
      signal: stop.signal,
    });
    if (ended === undefined) return EXIT_OK;
    process.stderr.write(`zonecopy: ${ended}\n`);
    return EXIT_FAILED;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function groups(counts: Record<string, number>): string {
  return (
    Object.entries(counts)
      .map(([g, n]) => `${g}:${n}`)
      .join(' ') || '-'
  );
}

export function renderStatus(s: VmStatus): string {
  const head = `VM ${s.alias ?? '?'} (${s.uuid}) ${s.brand ?? ''}: last complete backup ${formatAge(s.ageSeconds)} ago`;
  if (s.error) return `${head}\n  error: ${s.error}`;
  const rows = [['dataset', 'local', 'backup host', 'newest common', 'age', 'chain', 'resume']];
  for (const d of s.datasets) {
    rows.push([
      d.dataset,
      groups(d.localGroups),
      groups(d.remoteGroups),
      d.newestCommon?.name ?? '-',
      formatAge(d.newestCommon?.ageSeconds ?? Infinity),
      d.chain,
      d.resumePending ? 'pending' : '-',
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const problems = s.datasets.flatMap((d) => d.problems ?? []).map((p) => `  ! ${p}`);
  const newest = s.newestSet ? [`  newest backup set ${s.newestSet.snapshot}: ${s.newestSet.consistency}`] : [];
  return [
    head,
    ...newest,
    ...rows.map(
      (r) =>
        `  ${r
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd()}`,
    ),
    ...problems,
  ].join('\n');
}
