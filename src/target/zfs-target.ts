import { executePlan } from '../backup/execute.js';
import type { ConsistencyRecord } from '../backup/hook-run.js';
import { observeRemote } from '../backup/observe.js';
import { settleInterruptedReceives, type ResumeOutcome } from '../backup/resume.js';
import type { Host } from '../host/host.js';
import type { Log } from '../log.js';
import { planBackup, type BackupPlan } from '../plan/backup-plan.js';
import type { TransferStep } from '../plan/steps.js';
import type { DatasetResult } from '../report/types.js';
import type { TransferStrategy } from '../transfer/strategy.js';
import type { Tuning } from '../transfer/tuning.js';
import { snapshotsHeldBy } from '../zfs/holds.js';
import { splitSnapshot, targetDatasetName } from '../zfs/names.js';
import {
  datasetRow,
  type DatasetTally,
  type PreparedTarget,
  type Target,
  type TargetOutcome,
  type VmRun,
} from './target.js';

export interface ZfsTargetSettings {
  basePath: string;
  specDirectory: string;
  remoteLimit?: number;
  /** Hold tag for the newest common snapshots (`zonecopy:<target>:<group>`); undefined with --no-holds. */
  holdTag?: string;
  rollback?: boolean;
}

export interface ZfsTargetContext {
  local: Host;
  remote: Host;
  strategy: TransferStrategy;
  log: Log;
  tuning?: Tuning;
}

/** A ZFS backup host over SSH: each dataset received under `basePath`, the VM spec beside it. */
export class ZfsTarget implements Target {
  readonly label: string;

  constructor(
    readonly name: string,
    private readonly settings: ZfsTargetSettings,
    private readonly context: ZfsTargetContext,
  ) {
    this.label = context.remote.label;
  }

  async prepare(run: VmRun): Promise<PreparedTarget> {
    const { settings, context } = this;
    const { observed, snapshot } = run;
    const [listed, localHeld, details] = await Promise.all([
      observeRemote(observed, context.remote, settings.basePath),
      settings.holdTag
        ? snapshotsHeldBy(
            context.local,
            settings.holdTag,
            observed.datasets.flatMap((d) => observed.local.get(d) ?? []),
          )
        : undefined,
      run.details,
    ]);
    let remote = listed;
    const resumed = await settleInterruptedReceives(remote, context);
    if (resumed.length > 0 && !context.remote.dryRun)
      remote = await observeRemote(observed, context.remote, settings.basePath);
    const remoteHeld = settings.holdTag
      ? await snapshotsHeldBy(context.remote, settings.holdTag, remote.values())
      : undefined;
    const holds =
      settings.holdTag && localHeld && remoteHeld ? { tag: settings.holdTag, localHeld, remoteHeld } : undefined;
    const files = [{ name: `${snapshot}.json`, content: observed.raw }];
    if (details.zoneConfig) files.push({ name: `${snapshot}.zonecfg.xml`, content: details.zoneConfig });
    if (details.images.length > 0)
      files.push({ name: `${snapshot}.images.json`, content: `${JSON.stringify(details.images, null, 2)}\n` });
    const plan = planBackup({
      datasets: observed.datasets,
      snapshot,
      group: run.group,
      basePath: settings.basePath,
      local: observed.local,
      remote,
      remoteLimit: settings.remoteLimit,
      spec: {
        directory: `${settings.specDirectory}/${run.uuid}`,
        files,
        consistencyFile: `${snapshot}.consistency`,
      },
      holds,
      rollback: settings.rollback,
    });
    const execute = async (consistency: ConsistencyRecord): Promise<TargetOutcome> => {
      const execution = await executePlan(plan.steps, { ...context, consistency });
      for (const r of resumed) {
        const dataset = observed.datasets.find((d) => targetDatasetName(settings.basePath, d) === r.target);
        const tally = dataset ? execution.tallies.get(dataset) : undefined;
        if (tally) {
          tally.bytes += r.bytes;
          tally.seconds += r.seconds;
        }
      }
      const resumedTargets = new Set(resumed.filter((r) => r.action === 'resumed').map((r) => r.target));
      return {
        datasets: datasetResults(
          observed.datasets,
          plan,
          execution.tallies,
          resumedTargets,
          settings.basePath,
          snapshot,
        ),
        errors: execution.errors,
      };
    };
    return {
      problems: plan.problems,
      warnings: plan.warnings,
      errors: resumed.flatMap((r: ResumeOutcome) => (r.error ? [r.error] : [])),
      releasing: plan.releasing,
      execute,
    };
  }
}

function datasetResults(
  datasets: readonly string[],
  plan: BackupPlan,
  tallies: ReadonlyMap<string, DatasetTally>,
  resumed: ReadonlySet<string>,
  basePath: string,
  snapshot: string,
): DatasetResult[] {
  const transfers = plan.steps.filter((s): s is TransferStep => s.kind === 'transfer');
  const vm = datasets.map((dataset) => {
    const target = targetDatasetName(basePath, dataset);
    const transfer = transfers.find((s) => s.vmDataset === dataset && !s.carriesImage);
    return datasetRow({
      dataset,
      target,
      snapshot,
      mode: resumed.has(target) ? 'resumed' : (transfer?.mode ?? 'none'),
      tally: tallies.get(dataset),
      problem: plan.problems.find((p) => p.dataset === dataset)?.message,
    });
  });
  const images = transfers
    .filter((s) => s.carriesImage)
    .map((s): DatasetResult => ({
      ...datasetRow({
        dataset: s.source,
        target: s.target,
        snapshot: splitSnapshot(s.sends[0]!.to).snapshot,
        mode: s.mode,
        tally: tallies.get(s.source),
      }),
      image: true,
    }));
  return [...vm, ...images];
}
