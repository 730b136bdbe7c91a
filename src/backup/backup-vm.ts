import type { HooksConfig } from '../config/hooks-schema.js';
import type { Host } from '../host/host.js';
import type { Log } from '../log.js';
import { planSnapshots } from '../plan/backup-plan.js';
import type { SnapshotStep } from '../plan/steps.js';
import { localRotation } from '../plan/rotation.js';
import { runStatus, type DatasetResult, type VmBackupResult } from '../report/types.js';
import { imageUuidOf, imgadmGet, readZoneConfig, type VmSpec, type VmSpecWithRaw } from '../smartos/vmadm.js';
import type { Target, VmDetails, VmRun } from '../target/target.js';
import { destroySnapshotsArgv, snapshotArgv } from '../zfs/commands.js';
import type { DatasetState } from '../zfs/list.js';
import { splitSnapshot } from '../zfs/names.js';
import { emptyRecord, snapshotWithHooks } from './hook-run.js';
import { selectHooks } from './hooks.js';
import { headroomError, snapshotHeadroom } from './headroom.js';
import { observeLocal, type VmObservation } from './observe.js';

export interface BackupSettings {
  group: string;
  /** Replaces the timestamp part of the snapshot name. */
  name?: string;
  localLimit?: number;
  /** `hooks` of the configuration. */
  hooks?: HooksConfig;
  /** argv that runs `zonecopy` (node and its script), for `zonecopy guest-agent`. */
  agentCommand?: string[];
}

export interface BackupContext {
  local: Host;
  /** Where this run sends the VM: each gets the same snapshot; one failing does not stop another. */
  targets: readonly Target[];
  log: Log;
  now: () => Date;
  /** This VM's `vmadm get`, when it was started early (during the SSH handshake). */
  spec?: Promise<VmSpecWithRaw>;
}

export function snapshotName(settings: Pick<BackupSettings, 'group' | 'name'>, now: Date): string {
  return `${settings.group}-${settings.name ?? now.toISOString()}`;
}

/**
 * Backs up one VM to every target: observe the VM and each target, plan, take one snapshot
 * (inside the hooks), let each target send, rotate and store, then rotate locally, and say
 * what happened.
 */
export async function backupVm(
  uuid: string,
  settings: BackupSettings,
  context: BackupContext,
): Promise<VmBackupResult> {
  const { local, targets, log } = context;
  const startedAt = context.now();
  const many = targets.length > 1;
  const result: VmBackupResult = {
    uuid,
    backupHost: targets.map((t) => t.label).join(', '),
    startedAt,
    finishedAt: startedAt,
    status: 'failed',
    datasets: [],
    errors: [],
    dryRun: local.dryRun,
  };
  // each target's errors say which target they are about when there are several
  const named = (target: Target, error: string) => (many ? `${target.name}: ${error}` : error);
  try {
    const observed = await observeLocal(uuid, local, context.spec);
    const { spec, discovery, datasets } = observed;
    result.alias = spec.alias;
    result.brand = spec.brand;
    discovery.warnings.forEach((w) => log.warn(w));
    if (discovery.excluded.length > 0)
      log.info(`${uuid}: excluded by smartcopy_exclude: ${discovery.excluded.join(', ')}`);
    const snapshot = snapshotName(settings, startedAt);
    result.snapshot = snapshot;
    checkHeadroom(uuid, spec, datasets, observed.local);
    const snapshots = planSnapshots({ datasets, local: observed.local, snapshot });
    if (snapshots.problems.length > 0) {
      result.errors.push(...snapshots.problems.map((p) => p.message));
      return finish(result, context);
    }
    const hooks = vmHooks(settings, spec, snapshot);
    const details = vmDetails(local, uuid, observed.local);
    details.catch(() => undefined); // its error, if any, is reported by the target that stores it
    const run: VmRun = { uuid, observed, snapshot, group: settings.group, startedAt, details };
    const prepared = await Promise.all(
      targets.map((target) =>
        target.prepare(run).then(
          (ready) => ({ target, ready }),
          (error: Error) => ({ target, error: named(target, error.message) }),
        ),
      ),
    );
    const ready = prepared.flatMap((p) => ('ready' in p ? [{ target: p.target, ...p.ready }] : []));
    for (const p of prepared) if ('error' in p) result.errors.push(p.error);
    if (ready.length === 0) return finish(result, context);
    for (const r of ready) r.warnings.forEach((w) => log.warn(named(r.target, w)));

    const consistency = emptyRecord(spec.state);
    result.consistency = consistency;
    // every pool's snapshot inside one pair of hooks, once for all targets
    await snapshotWithHooks(hooks, { record: consistency, errors: result.errors }, { local, log }, async () => {
      for (const step of snapshots.steps) await takeSnapshot(step, local, log);
    });
    for (const r of ready) {
      const outcome = await r.execute(consistency);
      result.errors.push(...outcome.errors.map((e) => named(r.target, e)));
      result.datasets.push(...outcome.datasets.map((d) => (many ? { ...d, targetName: r.target.name } : d)));
    }
    const allReady = ready.length === targets.length;
    await rotateLocally(observed, settings, snapshot, {
      local,
      log,
      // a target that was not reached may still need any of the older snapshots
      rotatable: (dataset) => allReady && !result.datasets.some((d) => d.dataset === dataset && d.result === 'failed'),
      releasing: new Set(ready.flatMap((r) => [...r.releasing])),
      rows: result.datasets,
      errors: result.errors,
    });
  } catch (error) {
    result.errors.push((error as Error).message);
  }
  return finish(result, context);
}

/** One pool's atomic snapshot, once for every target; a failure stops the run before anything is sent. */
async function takeSnapshot(step: SnapshotStep, local: Host, log: Log): Promise<void> {
  try {
    await local.run(snapshotArgv(step.snapshots), { mutates: true });
    log.verbose(`snapshot ${step.snapshots.join(' ')}`);
  } catch (error) {
    throw new Error(`snapshot of pool ${step.pool} failed, nothing was sent: ${(error as Error).message}`);
  }
}

function finish(result: VmBackupResult, context: Pick<BackupContext, 'now'>): VmBackupResult {
  result.finishedAt = context.now();
  result.status = runStatus(result.errors, result.datasets);
  return result;
}

/**
 * The source side's rotation, once for all targets, after every target has the new snapshot of
 * the dataset: until then an older one may be some target's last common snapshot.
 */
async function rotateLocally(
  observed: Pick<VmObservation, 'datasets' | 'local'>,
  settings: Pick<BackupSettings, 'group' | 'localLimit'>,
  snapshot: string,
  context: {
    local: Host;
    log: Log;
    rotatable: (dataset: string) => boolean;
    releasing: ReadonlySet<string>;
    rows: DatasetResult[];
    errors: string[];
  },
): Promise<void> {
  for (const dataset of observed.datasets) {
    if (!context.rotatable(dataset)) continue;
    const destroy = localRotation(
      dataset,
      observed.local.get(dataset)!,
      { snapshot, group: settings.group, localLimit: settings.localLimit },
      context.releasing,
    );
    if (destroy.length === 0) continue;
    try {
      await context.local.run(destroySnapshotsArgv(dataset, destroy), { mutates: true });
      const row = context.rows.find((d) => d.dataset === dataset && !d.image);
      row?.rotatedLocal.push(...destroy.map((s) => `${dataset}@${s}`));
    } catch (error) {
      context.errors.push(`rotation on ${context.local.label} failed for ${dataset}: ${(error as Error).message}`);
    }
  }
}

/** What each backup set stores besides the streams: the zone's configuration and its images' manifests. */
async function vmDetails(host: Host, uuid: string, local: ReadonlyMap<string, DatasetState>): Promise<VmDetails> {
  const [zoneConfig, images] = await Promise.all([readZoneConfig(host, uuid), imageManifests(host, local)]);
  return { ...(zoneConfig ? { zoneConfig } : {}), images };
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
