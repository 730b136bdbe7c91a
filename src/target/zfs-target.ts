import { executePlan, type DatasetOutcome } from '../backup/execute.js';
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
import type { PreparedTarget, Target, TargetOutcome, VmRun } from './target.js';

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
        const outcome = dataset ? execution.outcomes.get(dataset) : undefined;
        if (outcome) {
          outcome.bytes += r.bytes;
          outcome.seconds += r.seconds;
        }
      }
      const resumedTargets = new Set(resumed.filter((r) => r.action === 'resumed').map((r) => r.target));
      return {
        datasets: datasetResults(
          observed.datasets,
          plan,
          execution.outcomes,
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
  outcomes: ReadonlyMap<string, DatasetOutcome>,
  resumed: ReadonlySet<string>,
  basePath: string,
  snapshot: string,
): DatasetResult[] {
  const row = (
    dataset: string,
    target: string,
    sent: string,
    mode: DatasetResult['mode'],
    problem?: string,
  ): DatasetResult => {
    const outcome = outcomes.get(dataset);
    const error = problem ?? outcome?.error;
    return {
      dataset,
      target,
      snapshot: sent,
      mode,
      bytes: outcome?.bytes ?? 0,
      seconds: outcome?.seconds ?? 0,
      result: error ? 'failed' : mode !== 'none' ? 'ok' : 'skipped',
      error,
      rotatedLocal: [],
      rotatedRemote: outcome?.rotatedRemote ?? [],
      ...(outcome?.discarded.length ? { discarded: outcome.discarded } : {}),
    };
  };
  const transfers = plan.steps.filter((s): s is TransferStep => s.kind === 'transfer');
  const vm = datasets.map((dataset) => {
    const target = targetDatasetName(basePath, dataset);
    const transfer = transfers.find((s) => s.dataset === dataset && !s.isOrigin);
    const mode = resumed.has(target) ? 'resumed' : (transfer?.mode ?? 'none');
    return row(dataset, target, snapshot, mode, plan.problems.find((p) => p.dataset === dataset)?.message);
  });
  const images = transfers
    .filter((s) => s.isOrigin)
    .map((s) => ({ ...row(s.source, s.target, splitSnapshot(s.sends[0]!.to).snapshot, s.mode), image: true }));
  return [...vm, ...images];
}
