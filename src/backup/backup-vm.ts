import type { HooksConfig } from '../config/hooks-schema.js';
import type { Host } from '../host/host.js';
import type { Log } from '../log.js';
import { planSnapshots } from '../plan/backup-plan.js';
import type { SnapshotStep } from '../plan/steps.js';
import { snapshotTime, type Retention } from '../plan/retention.js';
import { heldProtection, thinGroup, thinningNow } from '../plan/rotation.js';
import { staleTargets, type TargetCommon } from '../report/stale.js';
import { runStatus, type DatasetResult, type TargetBehind, type VmBackupResult } from '../report/types.js';
import { imageUuidOf, imgadmGet, readZoneConfig, type VmSpec, type VmSpecWithRaw } from '../smartos/vmadm.js';
import type { Target, VmDetails, VmRun } from '../target/target.js';
import { snapshotArgv } from '../zfs/commands.js';
import { snapshotsHeldBy } from '../zfs/holds.js';
import type { DatasetState } from '../zfs/list.js';
import { splitSnapshot } from '../zfs/names.js';
import { emptyRecord, snapshotWithHooks } from './hook-run.js';
import { selectHooks } from './hooks.js';
import { headroomError, snapshotHeadroom } from './headroom.js';
import { observeLocal, type VmObservation } from './observe.js';
import { destroyThinned } from './thin.js';

export interface BackupSettings {
  group: string;
  /** Replaces the timestamp part of the snapshot name. */
  name?: string;
  /** This host's retention of the group; unset: nothing is thinned here. */
  localRetention?: Retention;
  /** A run that reaches no target still snapshots the VM and thins here (default true). */
  snapshotWhenTargetsDown?: boolean;
  /** Seconds by target name: a target whose newest common snapshot is older is flagged behind. */
  staleAfter?: ReadonlyMap<string, number>;
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
    if (ready.length === 0 && settings.snapshotWhenTargetsDown === false) return finish(result, context);
    for (const r of ready) r.warnings.forEach((w) => log.warn(named(r.target, w)));

    const consistency = emptyRecord(spec.state);
    result.consistency = consistency;
    // every pool's snapshot inside one pair of hooks, once for all targets
    await snapshotWithHooks(hooks, { record: consistency, errors: result.errors }, { local, log }, async () => {
      for (const step of snapshots.steps) await takeSnapshot(step, local, log);
    });
    // what local thinning must keep: each target's newest common snapshot is held, or needed by its plan
    const releasing = new Map<string, number>();
    const needs = new Map<string, string>();
    const unknown = new Set<string>();
    for (const r of ready) {
      const outcome = await r.execute(consistency);
      result.errors.push(...outcome.errors.map((e) => named(r.target, e)));
      result.datasets.push(...outcome.datasets.map((d) => (many ? { ...d, targetName: r.target.name } : d)));
      // where a dataset failed, its hold stays where it was and the snapshots its streams start from stay
      const failed = new Set(outcome.datasets.filter((d) => d.result === 'failed').map((d) => d.dataset));
      for (const full of r.releasing)
        if (!failed.has(splitSnapshot(full).dataset)) releasing.set(full, (releasing.get(full) ?? 0) + 1);
      for (const [full, why] of r.needsLocal)
        if (failed.has(splitSnapshot(full).dataset)) needs.set(full, named(r.target, why));
      if (!r.target.holdTag) failed.forEach((d) => unknown.add(d));
    }
    const now = thinningNow(snapshot, settings.group, startedAt);
    const unreached = targets.filter((t) => !ready.some((r) => r.target === t));
    const blind = unreached.filter((t) => !t.holdTag);
    // a target that was not reached and holds no snapshot of a dataset here (never held, or released): not known
    for (const t of unreached.filter((u) => u.holdTag)) {
      const states = datasets.flatMap((d) => observed.local.get(d) ?? []);
      const held = await snapshotsHeldBy(local, t.holdTag!, states).catch(() => new Set<string>());
      for (const dataset of datasets)
        if (![...held].some((full) => splitSnapshot(full).dataset === dataset)) unknown.add(dataset);
    }
    if (blind.length > 0 && settings.localRetention) {
      log.warn(
        `nothing thinned here: ${blind.map((t) => t.name).join(', ')} was not reached and holds no snapshot here (holds off), so its newest common snapshot is not known`,
      );
    } else {
      await thinLocally(observed, settings, snapshot, {
        local,
        now,
        needs,
        // a dataset that failed at a target without holds: its newest common snapshot there is not known here
        thinnable: (dataset) => !unknown.has(dataset),
        releasing,
        rows: result.datasets,
        errors: result.errors,
      });
    }
    const behind = await targetsBehind(targets, settings, observed, { snapshot, now, rows: result.datasets, local });
    if (behind.length > 0) result.behind = behind;
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
 * This host's thinning, once for all targets, after each has sent what it could: never the new
 * snapshot, a snapshot held (each target's newest common one, another tool's), or one a target
 * still needs (needsLocal). One `zfs destroy` per dataset.
 */
async function thinLocally(
  observed: Pick<VmObservation, 'datasets' | 'local'>,
  settings: Pick<BackupSettings, 'group' | 'localRetention'>,
  snapshot: string,
  context: {
    local: Host;
    now: number;
    needs: ReadonlyMap<string, string>;
    thinnable: (dataset: string) => boolean;
    /** Holds the targets took off this run, by snapshot. */
    releasing: ReadonlyMap<string, number>;
    rows: DatasetResult[];
    errors: string[];
  },
): Promise<void> {
  for (const dataset of observed.datasets) {
    if (!context.thinnable(dataset)) continue;
    const state = observed.local.get(dataset)!;
    const protect = heldProtection(state, dataset, context.releasing);
    protect.set(snapshot, "this run's snapshot");
    for (const [full, why] of context.needs) {
      const { dataset: of, snapshot: name } = splitSnapshot(full);
      if (of === dataset) protect.set(name, why);
    }
    const thinning = thinGroup({
      on: dataset,
      snapshots: [...state.snapshots, { name: snapshot, creation: context.now }],
      group: settings.group,
      retention: settings.localRetention,
      protect,
      now: context.now,
    });
    if (!thinning) continue;
    try {
      await destroyThinned(context.local, dataset, { destroy: thinning.destroy, kept: thinning.keep });
      if (thinning.destroy.length === 0) continue;
      const row = context.rows.find((d) => d.dataset === dataset && !d.image);
      row?.rotatedLocal.push(...thinning.destroy.map((s) => `${dataset}@${s}`));
    } catch (error) {
      context.errors.push(`thinning on ${context.local.label} failed for ${dataset}: ${(error as Error).message}`);
    }
  }
}

/**
 * The targets whose newest common snapshot with this VM is older than their staleAfter: where a
 * dataset went, the run's snapshot; elsewhere the snapshot the target's hold marks here.
 */
async function targetsBehind(
  targets: readonly Target[],
  settings: Pick<BackupSettings, 'group' | 'staleAfter'>,
  observed: Pick<VmObservation, 'datasets' | 'local'>,
  run: { snapshot: string; now: number; rows: readonly DatasetResult[]; local: Host },
): Promise<TargetBehind[]> {
  const watched = targets.filter((t) => settings.staleAfter?.has(t.name));
  if (watched.length === 0) return [];
  const states = observed.datasets.flatMap((d) => observed.local.get(d) ?? []);
  const commons = await Promise.all(
    watched.map(async (t): Promise<TargetCommon> => {
      const sent = new Set(
        run.rows
          .filter((r) => !r.image && r.result === 'ok' && (r.targetName ?? targets[0]!.name) === t.name)
          .map((r) => r.dataset),
      );
      const missing = observed.datasets.some((d) => !sent.has(d));
      const held = t.holdTag && missing ? await snapshotsHeldBy(run.local, t.holdTag, states) : new Set<string>();
      const newestCommon = observed.datasets.map((dataset) => {
        if (sent.has(dataset)) return { snapshot: run.snapshot, time: run.now };
        const state = observed.local.get(dataset);
        const times = (state?.snapshots ?? [])
          .filter((s) => held.has(`${dataset}@${s.name}`))
          .map((s) => ({ snapshot: s.name, time: snapshotTime(s.name, settings.group, s.creation)! }));
        return times.sort((a, b) => b.time - a.time)[0];
      });
      return { name: t.name, staleAfter: settings.staleAfter!.get(t.name), newestCommon };
    }),
  );
  return staleTargets(commons, run.now);
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
