import type { Host } from '../host/host.js';
import type { Log } from '../log.js';
import { planBackup, type BackupPlan } from '../plan/backup-plan.js';
import type { TransferStep } from '../plan/steps.js';
import { runStatus, type DatasetResult, type VmBackupResult } from '../report/types.js';
import { imageUuidOf, imgadmGet, readZoneConfig, type VmSpec, type VmSpecWithRaw } from '../smartos/vmadm.js';
import type { TransferStrategy } from '../transfer/strategy.js';
import type { Tuning } from '../transfer/tuning.js';
import { snapshotsHeldBy } from '../zfs/holds.js';
import type { DatasetState } from '../zfs/list.js';
import { splitSnapshot, targetDatasetName } from '../zfs/names.js';
import type { HooksConfig } from '../config/hooks-schema.js';
import { executePlan, type DatasetOutcome } from './execute.js';
import { emptyRecord } from './hook-run.js';
import { selectHooks } from './hooks.js';
import { headroomError, snapshotHeadroom } from './headroom.js';
import { observeLocal, observeRemote } from './observe.js';
import { settleInterruptedReceives } from './resume.js';

export interface BackupSettings {
  group: string;
  /** Replaces the timestamp part of the snapshot name. */
  name?: string;
  basePath: string;
  specDirectory: string;
  localLimit?: number;
  remoteLimit?: number;
  /** Hold tag for the newest common snapshots; undefined with --no-holds. */
  holdTag?: string;
  rollback?: boolean;
  /** `hooks` of the configuration. */
  hooks?: HooksConfig;
  /** argv that runs `zonecopy` (node and its script), for `zonecopy guest-agent`. */
  agentCommand?: string[];
}

export interface BackupContext {
  local: Host;
  remote: Host;
  strategy: TransferStrategy;
  log: Log;
  now: () => Date;
  /** How many transfers run at once (transfer/tuning.ts). */
  tuning?: Tuning;
  /** This VM's `vmadm get`, when it was started early (during the SSH handshake). */
  spec?: Promise<VmSpecWithRaw>;
}

export function snapshotName(settings: Pick<BackupSettings, 'group' | 'name'>, now: Date): string {
  return `${settings.group}-${settings.name ?? now.toISOString()}`;
}

/** Backs up one VM: discover, list both sides once, plan, execute, and say what happened. */
export async function backupVm(
  uuid: string,
  settings: BackupSettings,
  context: BackupContext,
): Promise<VmBackupResult> {
  const startedAt = context.now();
  const result: VmBackupResult = {
    uuid,
    backupHost: context.remote.label,
    startedAt,
    finishedAt: startedAt,
    status: 'failed',
    datasets: [],
    errors: [],
    dryRun: context.local.dryRun,
  };
  try {
    const observed = await observeLocal(uuid, context.local, context.spec);
    const { spec, raw, discovery, local, datasets } = observed;
    result.alias = spec.alias;
    result.brand = spec.brand;
    discovery.warnings.forEach((w) => context.log.warn(w));
    if (discovery.excluded.length > 0)
      context.log.info(`${uuid}: excluded by smartcopy_exclude: ${discovery.excluded.join(', ')}`);
    const snapshot = snapshotName(settings, startedAt);
    result.snapshot = snapshot;
    checkHeadroom(uuid, spec, datasets, local);
    const hooks = vmHooks(settings, spec, snapshot);
    const consistency = emptyRecord(spec.state);

    // independent reads, side by side with the backup host's listing, the longest of them
    const [listed, localHeld, zoneConfig, images] = await Promise.all([
      observeRemote(observed, context.remote, settings.basePath),
      settings.holdTag
        ? snapshotsHeldBy(
            context.local,
            settings.holdTag,
            datasets.flatMap((d) => local.get(d) ?? []),
          )
        : undefined,
      readZoneConfig(context.local, uuid),
      imageManifests(context.local, local),
    ]);
    let remote = listed;
    const resumed = await settleInterruptedReceives(remote, context);
    result.errors.push(...resumed.flatMap((r) => (r.error ? [r.error] : [])));
    if (resumed.length > 0 && !context.remote.dryRun)
      remote = await observeRemote(observed, context.remote, settings.basePath);
    const remoteHeld = settings.holdTag
      ? await snapshotsHeldBy(context.remote, settings.holdTag, remote.values())
      : undefined;
    const holds =
      settings.holdTag && localHeld && remoteHeld ? { tag: settings.holdTag, localHeld, remoteHeld } : undefined;
    const files = [{ name: `${snapshot}.json`, content: raw }];
    if (zoneConfig) files.push({ name: `${snapshot}.zonecfg.xml`, content: zoneConfig });
    if (images.length > 0)
      files.push({ name: `${snapshot}.images.json`, content: `${JSON.stringify(images, null, 2)}\n` });
    const plan = planBackup({
      datasets,
      snapshot,
      group: settings.group,
      basePath: settings.basePath,
      local,
      remote,
      localLimit: settings.localLimit,
      remoteLimit: settings.remoteLimit,
      spec: { directory: `${settings.specDirectory}/${uuid}`, files, consistencyFile: `${snapshot}.consistency` },
      holds,
      rollback: settings.rollback,
      hooks,
    });
    plan.warnings.forEach((w) => context.log.warn(w));
    if (plan.steps.length === 0) {
      result.errors.push(...plan.problems.map((p) => p.message));
    } else {
      result.consistency = consistency;
      const execution = await executePlan(plan.steps, { ...context, consistency });
      result.errors.push(...execution.errors);
      for (const r of resumed) {
        const dataset = datasets.find((d) => targetDatasetName(settings.basePath, d) === r.target);
        const outcome = dataset ? execution.outcomes.get(dataset) : undefined;
        if (outcome) {
          outcome.bytes += r.bytes;
          outcome.seconds += r.seconds;
        }
      }
      const resumedTargets = new Set(resumed.filter((r) => r.action === 'resumed').map((r) => r.target));
      result.datasets = datasetResults(datasets, plan, execution.outcomes, resumedTargets, settings.basePath, snapshot);
    }
  } catch (error) {
    result.errors.push((error as Error).message);
  }
  result.finishedAt = context.now();
  result.status = runStatus(result.errors, result.datasets);
  return result;
}

/** The VM's hooks from the configuration and its internal_metadata (both targets use this). */
export function vmHooks(
  settings: Pick<BackupSettings, 'group' | 'hooks' | 'agentCommand'>,
  spec: VmSpec,
  snapshot: string,
) {
  return selectHooks({
    config: settings.hooks,
    group: settings.group,
    spec,
    snapshot,
    agentCommand: settings.agentCommand ?? [process.execPath, process.argv[1]!],
  });
}

/**
 * Throws, before anything is snapshotted, when the VM's snapshots would not fit under its quota
 * (bhyve without flexible_disk_size), from the space columns of the SmartOS side's one listing. A
 * dataset ZFS lacks is left to the planner, whose refusal names it.
 */
export function checkHeadroom(
  uuid: string,
  spec: Pick<VmSpec, 'brand' | 'flexible_disk_size'>,
  datasets: readonly string[],
  listed: ReadonlyMap<string, DatasetState>,
): void {
  const space = datasets.flatMap((name) => {
    const state = listed.get(name);
    return state?.space ? [{ name, ...state.space }] : [];
  });
  const headroom = snapshotHeadroom(space);
  if (headroom.shortfall > 0)
    throw new Error(headroomError(uuid, spec.brand, headroom, space, spec.flexible_disk_size));
}

/** imgadm's record of each image the VM's datasets are cloned from, so restore can install it. */
export async function imageManifests(
  host: Host,
  local: ReadonlyMap<string, DatasetState>,
): Promise<Array<Record<string, unknown>>> {
  const images = new Set(
    [...local.values()]
      .flatMap((d) => (d.origin ? [imageUuidOf(splitSnapshot(d.origin).dataset)] : []))
      .filter((u): u is string => Boolean(u)),
  );
  const manifests = await Promise.all([...images].map((uuid) => imgadmGet(host, uuid)));
  return manifests.filter((m): m is NonNullable<typeof m> => Boolean(m));
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
      rotatedLocal: outcome?.rotatedLocal ?? [],
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
