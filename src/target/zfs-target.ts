import { executePlan } from '../backup/execute.js';
import type { ConsistencyRecord } from '../backup/hook-run.js';
import { observeRemote } from '../backup/observe.js';
import { checkResumes } from '../backup/resume.js';
import type { Host } from '../host/host.js';
import type { Log } from '../log.js';
import { planBackup, type BackupPlan } from '../plan/backup-plan.js';
import type { Retention } from '../plan/retention.js';
import { thinningNow } from '../plan/rotation.js';
import type { TransferStep } from '../plan/steps.js';
import type { DatasetResult } from '../report/types.js';
import type { TransferStrategy } from '../transfer/strategy.js';
import type { Tuning } from '../transfer/tuning.js';
import { snapshotsHeldBy } from '../zfs/holds.js';
import { splitSnapshot, targetDatasetName } from '../zfs/names.js';
import {
  datasetRow,
  preparedTarget,
  type DatasetTally,
  type PreparedTarget,
  type Target,
  type TargetOutcome,
  type VmRun,
} from './target.js';

export interface ZfsTargetSettings {
  basePath: string;
  specDirectory: string;
  remoteRetention?: Retention;
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
  readonly holdTag?: string;

  constructor(
    readonly name: string,
    private readonly settings: ZfsTargetSettings,
    private readonly context: ZfsTargetContext,
  ) {
    this.label = context.remote.label;
    this.holdTag = settings.holdTag;
  }

  async prepare(run: VmRun): Promise<PreparedTarget> {
    const { settings, context } = this;
    const { observed, snapshot } = run;
    const [remote, localHeld, details] = await Promise.all([
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
    const [resumes, remoteHeld] = await Promise.all([
      checkResumes(remote, context.local),
      settings.holdTag ? snapshotsHeldBy(context.remote, settings.holdTag, remote.values()) : undefined,
    ]);
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
      remoteRetention: settings.remoteRetention,
      now: thinningNow(snapshot, run.group, run.startedAt),
      spec: {
        directory: `${settings.specDirectory}/${run.uuid}`,
        files,
        consistencyFile: `${snapshot}.consistency`,
      },
      holds,
      rollback: settings.rollback,
      resumes,
    });
    const execute = async (consistency: ConsistencyRecord): Promise<TargetOutcome> => {
      const execution = await executePlan(plan.steps, {
        ...context,
        consistency,
        streams: { uuid: run.uuid, target: this.name },
      });
      return {
        datasets: datasetResults(observed.datasets, plan, execution.tallies, settings.basePath, snapshot),
        errors: execution.errors,
      };
    };
    return preparedTarget(plan, execute);
  }
}

function datasetResults(
  datasets: readonly string[],
  plan: BackupPlan,
  tallies: ReadonlyMap<string, DatasetTally>,
  basePath: string,
  snapshot: string,
): DatasetResult[] {
  const transfers = plan.steps.filter((s): s is TransferStep => s.kind === 'transfer');
  const vm = datasets.map((dataset) => {
    const target = targetDatasetName(basePath, dataset);
    const transfer = transfers.find((s) => s.vmDataset === dataset && !s.carriesImage);
    const tally = tallies.get(dataset);
    return datasetRow({
      dataset,
      target,
      snapshot,
      // a resumed stream names the row, the new snapshot's transfer after it counts in it too
      mode: tally?.mode ?? transfer?.mode ?? 'none',
      tally,
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
        mode: tallies.get(s.source)?.mode ?? s.mode,
        tally: tallies.get(s.source),
      }),
      image: true,
    }));
  return [...vm, ...images];
}
