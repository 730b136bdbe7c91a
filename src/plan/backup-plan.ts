import type { SendSpec } from '../zfs/commands.js';
import { receivedRaw } from '../zfs/encryption.js';
import type { DatasetState, SnapshotInfo } from '../zfs/list.js';
import { parentOf, poolOf, splitSnapshot, targetDatasetName } from '../zfs/names.js';
import type { Retention } from './retention.js';
import { heldProtection, inGroup, thinGroup } from './rotation.js';
import { planResumes, type ResumeCheck } from './resume-plan.js';
import type { HoldStep, ProtectStep, SnapshotStep, Step, TransferStep } from './steps.js';
import { cloneOrigin, goesRaw, newestCommon, withRaw, type CloneOrigin } from './stream-choice.js';

export interface PlanInput {
  /** The VM's datasets, parents before children. */
  datasets: readonly string[];
  /** Name (after `@`) of the snapshot this run takes. */
  snapshot: string;
  group: string;
  basePath: string;
  /** Source state of the VM datasets and of the origins of its clones. */
  local: ReadonlyMap<string, DatasetState>;
  /** Backup-host state of the targets, their parents, origin targets and the base path. */
  remote: ReadonlyMap<string, DatasetState>;
  /** The backup host's retention of the group; unset: nothing is thinned there. */
  remoteRetention?: Retention;
  /** Seconds: ages count back from here (the run's snapshot time, rotation.ts thinningNow). */
  now?: number;
  spec?: { directory: string; files: Array<{ name: string; content: string }>; consistencyFile?: string };
  /** Hold the newest common snapshot on both sides with this tag; the sets say where it is now. */
  holds?: { tag: string; localHeld: ReadonlySet<string>; remoteHeld: ReadonlySet<string> };
  /** --rollback: discard changes made on the backup host since the common snapshot. */
  rollback?: boolean;
  /** What the source said of each target's receive_resume_token (resume-plan.ts), by target. */
  resumes?: ReadonlyMap<string, ResumeCheck>;
}

export interface Problem {
  dataset: string;
  message: string;
}

export interface BackupPlan {
  steps: Step[];
  /** Datasets that will not be transferred this run, and why. */
  problems: Problem[];
  warnings: string[];
  /** Local snapshots whose zonecopy hold this run moves off. */
  releasing: Set<string>;
  /** Local snapshots the streams start from or resume, and why: local thinning keeps them. */
  needsLocal: Map<string, string>;
}

/**
 * The backup host's part of a run, from observed state to steps, once the run's snapshot is
 * planned (planSnapshots): no I/O, so every rule here (guid matching, clone origins,
 * intermediate snapshots, rotation limits) is tested table-style.
 */
export function planBackup(observed: PlanInput): BackupPlan {
  // interrupted receives first: the rest is planned on the backup host as they leave it
  const resumes = planResumes(observed);
  const input: PlanInput = { ...observed, remote: resumes.remote };
  const warnings: string[] = [...resumes.warnings];
  const problems: Problem[] = [];
  const localReleasing = new Set<string>();
  const steps: Step[] = [...resumes.steps];

  const onTarget = new Set(input.remote.keys());
  const ensureParent = (target: string) => {
    const parent = parentOf(target);
    if (parent && !onTarget.has(parent)) {
      steps.push({ kind: 'create-parent', dataset: parent });
      for (let p: string | undefined = parent; p; p = parentOf(p)) onTarget.add(p);
    }
  };

  const encrypts = backupHostEncrypts(input.remote);
  const rotations: Step[] = [];
  const protect: ProtectStep = { kind: 'protect', targets: [] };
  const holds: HoldStep[] = input.holds
    ? (['hold', 'release'] as const).flatMap((kind) =>
        (['local', 'remote'] as const).map((side) => ({
          kind,
          side,
          tag: input.holds!.tag,
          snapshots: [],
          others: [],
        })),
      )
    : [];
  const holdStep = (kind: 'hold' | 'release', side: 'local' | 'remote') =>
    holds.find((h) => h.kind === kind && h.side === side)!;
  for (const dataset of input.datasets) {
    const local = input.local.get(dataset)!;
    const target = targetDatasetName(input.basePath, dataset);
    const remote = input.remote.get(target);
    const newest = `${dataset}@${input.snapshot}`;
    let transfer: TransferStep | undefined;
    let arriving = [input.snapshot];
    if (remote) {
      const result = planIncremental(dataset, local, remote, input);
      if ('problem' in result) {
        problems.push({ dataset, message: result.problem });
        continue;
      }
      const fromNewest = result.sends.length === 1 && !result.sends[0]!.intermediates;
      const raw = goesRaw(local, warnings, rawRefusal(existingTarget(remote, input.basePath), encrypts));
      transfer = {
        kind: 'transfer',
        vmDataset: dataset,
        source: dataset,
        target,
        mode: 'incremental',
        sends: result.sends.map((send) => withRaw(send, raw)),
        carriesImage: false,
        common: `${target}@${result.common}`,
        rollback: input.rollback,
        added: fromNewest ? local.written : undefined,
        ...(result.discard.length > 0 ? { discard: result.discard } : {}),
      };
      arriving = result.arriving;
    } else {
      const origin = local.origin
        ? planOrigin(dataset, local.origin, input, { onTarget, encrypts }, steps, ensureParent, warnings)
        : undefined;
      ensureParent(target);
      transfer = origin
        ? {
            kind: 'transfer',
            vmDataset: dataset,
            source: dataset,
            target,
            mode: 'incremental',
            sends: [
              withRaw(
                { from: local.origin, to: newest },
                goesRaw(local, warnings, rawRefusal(origin.target, encrypts)),
              ),
            ],
            cloneOrigin: origin.snapshot,
            carriesImage: false,
          }
        : {
            kind: 'transfer',
            vmDataset: dataset,
            source: dataset,
            target,
            mode: 'full',
            sends: [withRaw({ to: newest }, goesRaw(local, warnings, rawRefusal(undefined, encrypts)))],
            carriesImage: false,
          };
    }
    steps.push(transfer);
    onTarget.add(target);
    const releasing = new Set<string>();
    if (input.holds) {
      holdStep('hold', 'local').snapshots.push({ dataset, snapshot: newest });
      holdStep('hold', 'remote').snapshots.push({ dataset, snapshot: `${target}@${input.snapshot}` });
      for (const s of local.snapshots)
        if (input.holds.localHeld.has(`${dataset}@${s.name}`)) releasing.add(`${dataset}@${s.name}`);
      for (const s of remote?.snapshots ?? [])
        if (input.holds.remoteHeld.has(`${target}@${s.name}`)) releasing.add(`${target}@${s.name}`);
      for (const full of releasing) {
        const side = full.startsWith(`${dataset}@`) ? 'local' : 'remote';
        holdStep('release', side).snapshots.push({ dataset, snapshot: full });
        if (side === 'local') localReleasing.add(full);
      }
    }
    if (!remote?.guarded) protect.targets.push({ dataset, target, type: local.type });
    const discard = new Set(transfer.discard);
    const kept = remote && { ...remote, snapshots: remote.snapshots.filter((s) => !discard.has(s.name)) };
    rotations.push(...planRotation(dataset, target, kept, arriving, releasing, input));
  }
  for (const step of holds) {
    const sideDatasets =
      step.side === 'local' ? input.datasets : input.datasets.map((d) => targetDatasetName(input.basePath, d));
    const entered = new Set(step.snapshots.map((e) => splitSnapshot(e.snapshot).dataset));
    step.others = sideDatasets.filter((d) => !entered.has(d));
  }
  for (const origin of steps.filter((s): s is TransferStep => s.kind === 'transfer' && s.carriesImage)) {
    protect.targets.push({
      dataset: origin.source,
      target: origin.target,
      type: input.local.get(origin.source)?.type ?? 'volume',
    });
  }
  if (protect.targets.length > 0) steps.push(protect);
  steps.push(...holds.filter((h) => h.snapshots.length > 0), ...rotations);
  if (input.spec) steps.push({ kind: 'store-spec', ...input.spec });
  return { steps, problems, warnings, releasing: localReleasing, needsLocal: neededHere(steps) };
}

/** What the backup host's streams need on this host: incremental bases and the snapshots resumed. */
function neededHere(steps: readonly Step[]): Map<string, string> {
  const needs = new Map<string, string>();
  for (const step of steps) {
    if (step.kind === 'resume')
      needs.set(`${step.source}@${splitSnapshot(step.snapshot).snapshot}`, 'an interrupted receive resumes from it');
    if (step.kind !== 'transfer' || step.carriesImage) continue;
    const from = step.sends[0]?.from;
    if (from && splitSnapshot(from).dataset === step.source)
      needs.set(from, 'the newest common snapshot: the stream is incremental from it');
  }
  return needs;
}

/** One atomic snapshot step per pool; refused (nothing planned) when a dataset is missing or the name is taken. */
export function planSnapshots(input: Pick<PlanInput, 'datasets' | 'local' | 'snapshot'>): {
  steps: SnapshotStep[];
  problems: Problem[];
} {
  const steps: SnapshotStep[] = [];
  const problems: Problem[] = [];
  const byPool = new Map<string, string[]>();
  for (const dataset of input.datasets) {
    const state = input.local.get(dataset);
    if (!state) {
      problems.push({ dataset, message: `vmadm lists ${dataset}, but ZFS has no such dataset` });
      continue;
    }
    if (state.snapshots.some((s) => s.name === input.snapshot)) {
      problems.push({ dataset, message: `${dataset}@${input.snapshot} already exists; choose another --name` });
      continue;
    }
    const pool = poolOf(dataset);
    byPool.set(pool, [...(byPool.get(pool) ?? []), `${dataset}@${input.snapshot}`]);
  }
  if (problems.length > 0) return { steps: [], problems };
  for (const [pool, snapshots] of byPool) steps.push({ kind: 'snapshot', pool, snapshots });
  return { steps, problems };
}

type Incremental = { sends: SendSpec[]; arriving: string[]; common: string; discard: string[] } | { problem: string };

function planIncremental(dataset: string, local: DatasetState, remote: DatasetState, input: PlanInput): Incremental {
  const target = remote.name;
  if (remote.resumeToken) {
    return {
      problem: `${target} holds a partially received stream (receive_resume_token); it must be resumed or aborted (zfs receive -A ${target}) first`,
    };
  }
  const common = newestCommon(local.snapshots, new Set(remote.snapshots.map((s) => s.guid)));
  if (!common) {
    if (remote.snapshots.length === 0) {
      return {
        problem: `${target} exists on the backup host but has no snapshots; zonecopy will not overwrite it. Destroy or rename it, or choose another backupDestinationBasePath`,
      };
    }
    return {
      problem: `${dataset} and ${target} have no snapshot in common (compared by guid); zonecopy will not overwrite the backup. Rename or destroy ${target} to start a new full backup`,
    };
  }
  const commonTxg = remote.snapshots.find((r) => r.guid === common.guid)!.createtxg;
  const after = remote.snapshots.filter((s) => s.createtxg > commonTxg).map((s) => s.name);
  if (after.length > 0 && !input.rollback) {
    const names = after.map((s) => `${target}@${s}`).join(', ');
    return {
      problem:
        `${target} has snapshots newer than the last common snapshot ${common.name}, which the source does not have: ${names}. zonecopy will not destroy them unasked. ` +
        `Either run again with --rollback (destroys them and rolls ${target} back to ${common.name}), or destroy or rename them on the backup host (zfs destroy / zfs rename), or keep them by choosing another backupDestinationBasePath`,
    };
  }
  const later = local.snapshots.filter((s) => s.createtxg > common.createtxg);
  const from = `${dataset}@${common.name}`;
  const to = `${dataset}@${input.snapshot}`;
  if (later.every((s) => inGroup(s.name, input.group))) {
    return {
      sends: [{ from, to, intermediates: later.length > 0 }],
      arriving: [...later.map((s) => s.name), input.snapshot],
      common: common.name,
      discard: after,
    };
  }
  // Foreign snapshots in between (vmsnap-*, other groups) stay local: send the group's one by one.
  const chain: SnapshotInfo[] = later.filter((s) => inGroup(s.name, input.group));
  const sends: SendSpec[] = [];
  let previous = from;
  for (const name of [...chain.map((s) => s.name), input.snapshot]) {
    const next = `${dataset}@${name}`;
    sends.push({ from: previous, to: next });
    previous = next;
  }
  return { sends, arriving: [...chain.map((s) => s.name), input.snapshot], common: common.name, discard: after };
}

/**
 * Makes sure the origin snapshot of a clone exists on the backup host with the same guid, planning
 * its transfer first when it does not (stream-choice.ts has the rule). Returns the target origin
 * snapshot and the origin's target as it will be (whether the clone's stream can go raw depends on
 * it), or undefined when the clone has to be sent in full.
 */
function planOrigin(
  clone: string,
  origin: string,
  input: PlanInput,
  backupHost: { onTarget: Set<string>; encrypts: boolean },
  steps: Step[],
  ensureParent: (target: string) => void,
  warnings: string[],
): { snapshot: string; target: TargetKind } | undefined {
  const { onTarget, encrypts } = backupHost;
  const targetOf = (o: CloneOrigin) => targetDatasetName(input.basePath, o.dataset);
  return cloneOrigin(
    clone,
    origin,
    input.local,
    {
      holds: (o) => {
        const remote = input.remote.get(targetOf(o));
        const match = remote?.snapshots.find((s) => s.guid === o.guid);
        return remote && match
          ? { snapshot: `${targetOf(o)}@${match.name}`, target: existingTarget(remote, input.basePath) }
          : undefined;
      },
      planned: (o) => {
        const planned = steps.find((s): s is TransferStep => s.kind === 'transfer' && s.target === targetOf(o));
        return planned && { snapshot: `${planned.target}@${o.snapshot}`, target: plannedTarget(planned) };
      },
      refuses: (o) =>
        input.remote.has(targetOf(o)) || onTarget.has(targetOf(o))
          ? `${targetOf(o)} exists on the backup host without ${o.snapshot} (guid ${o.guid})`
          : undefined,
      sendFirst: (o) => {
        ensureParent(targetOf(o));
        const transfer: TransferStep = {
          kind: 'transfer',
          vmDataset: clone,
          source: o.dataset,
          target: targetOf(o),
          mode: 'full',
          sends: [withRaw({ to: origin }, goesRaw(o.state, warnings, rawRefusal(undefined, encrypts)))],
          carriesImage: true,
        };
        steps.push(transfer);
        onTarget.add(transfer.target);
        return { snapshot: `${transfer.target}@${o.snapshot}`, target: plannedTarget(transfer) };
      },
    },
    warnings,
  );
}

/** A target on the backup host, and whether it takes raw streams (it holds ciphertext received raw). */
interface TargetKind {
  name: string;
  raw: boolean;
}

function existingTarget(remote: DatasetState, basePath: string): TargetKind {
  return { name: remote.name, raw: receivedRaw(remote, basePath) };
}

/** A target this run creates holds ciphertext exactly when its stream goes raw. */
function plannedTarget(transfer: TransferStep): TargetKind {
  return { name: transfer.target, raw: transfer.sends.some((s) => s.raw) };
}

/** A backup host whose listing lacks `encryption` has a ZFS from before native encryption: no raw stream lands there. */
function backupHostEncrypts(remote: ReadonlyMap<string, DatasetState>): boolean {
  return [...remote.values()].every((state) => state.encrypted !== undefined);
}

/**
 * Why an encrypted dataset's stream cannot go raw to the backup host, if it cannot: a target
 * received decrypted before takes no raw incremental, and a backup host without encryption no raw
 * stream at all. It then goes decrypted, and the warning says how to start over raw.
 */
function rawRefusal(target: TargetKind | undefined, encrypts: boolean) {
  return (source: DatasetState): string | undefined => {
    const encrypted = `${source.name} is encrypted, but`;
    const keyNeeded = `goes decrypted, which needs its key loaded on the SmartOS host`;
    if (!encrypts) return `${encrypted} ZFS on the backup host has no encryption: it ${keyNeeded}`;
    if (target && !target.raw) {
      return (
        `${encrypted} ${target.name} on the backup host was received decrypted (before zonecopy sent encrypted datasets raw) and cannot take a raw stream: it still ${keyNeeded}. ` +
        `To keep only ciphertext on the backup host, rename or destroy ${target.name} there (zfs rename, zfs destroy); the next run then sends it again in full, raw`
      );
    }
    return undefined;
  };
}

/**
 * The backup host's thinning after the transfer: never the new snapshot (the newest common one
 * from then on) or a snapshot anyone but ourselves holds (after our release). Times come from
 * the names, else from `creation` on whichever side lists the snapshot.
 */
function planRotation(
  dataset: string,
  target: string,
  remote: DatasetState | undefined,
  arriving: string[],
  releasing: ReadonlySet<string>,
  input: PlanInput,
): Step[] {
  const source = input.local.get(dataset);
  const created = (name: string) => source?.snapshots.find((s) => s.name === name)?.creation;
  const snapshots = [
    ...(remote?.snapshots ?? []),
    ...arriving.map((name) => ({ name, creation: name === input.snapshot ? input.now : created(name) })),
  ];
  const protect = heldProtection(remote, target, releasing);
  protect.set(input.snapshot, "this run's snapshot: the newest common one");
  const thinning = thinGroup({
    on: target,
    snapshots,
    group: input.group,
    retention: input.remoteRetention,
    protect,
    now: input.now ?? 0,
  });
  return thinning ? [{ kind: 'rotate', dataset, on: target, destroy: thinning.destroy, kept: thinning.keep }] : [];
}
