import type { ConsistencyRecord } from '../backup/hook-run.js';
import type { VmObservation } from '../backup/observe.js';
import type { Problem } from '../plan/backup-plan.js';
import type { DatasetResult, TransferMode } from '../report/types.js';

/**
 * Where backups go, behind one small interface (restic's backends): a ZFS backup host over SSH or
 * an object store. The run loop (backup/backup-vm.ts) observes the VM once, takes one snapshot,
 * and hands each target the same run; a target that fails never stops or rolls back another.
 */
export interface Target {
  /** The name in the configuration (`targets[].name`); part of this target's hold tag. */
  readonly name: string;
  /** Where it is, for reports: `root@bk1:22` or `s3://bucket/prefix`. */
  readonly label: string;
  /**
   * The tag it holds its newest common snapshot with on this host (`zonecopy:<name>:<group>`), so
   * local thinning keeps that snapshot even in a run that cannot reach it; undefined without holds.
   */
  readonly holdTag?: string;
  /** Observes what this target has of the VM and plans its part of the run; changes nothing. */
  prepare(run: VmRun): Promise<PreparedTarget>;
}

/** What every target of one VM's run shares: one observation, one snapshot, one spec. */
export interface VmRun {
  uuid: string;
  observed: Omit<VmObservation, 'remote'>;
  /** The snapshot this run takes (after `@`). */
  snapshot: string;
  group: string;
  startedAt: Date;
  /** Stored with each backup set; read while the targets are observed. */
  details: Promise<VmDetails>;
}

export interface VmDetails {
  /** The VM's `zonecfg` XML, when the zone has one. */
  zoneConfig?: string;
  /** imgadm's manifest of each image the VM's datasets are cloned from, for restores elsewhere. */
  images: Array<Record<string, unknown>>;
}

export interface PreparedTarget {
  /** Datasets this target will not receive this run, and why (the others still go). */
  problems: Problem[];
  warnings: string[];
  /** Local snapshots (full names) whose hold this target moves off this run: local rotation may take them. */
  releasing: ReadonlySet<string>;
  /**
   * Local snapshots (full names) this target needs whatever this run does, and why: its newest
   * common snapshot before the run (the base of its incrementals) and any it resumes from.
   */
  needsLocal: ReadonlyMap<string, string>;
  /** Sends, rotates and stores what was planned, once the snapshot exists. */
  execute(consistency: ConsistencyRecord): Promise<TargetOutcome>;
}

/** A target's plan as the run loop sees it: what it knows before the snapshot, and how to carry it out. */
export function preparedTarget(
  plan: Omit<PreparedTarget, 'execute'>,
  execute: PreparedTarget['execute'],
): PreparedTarget {
  const { problems, warnings, releasing, needsLocal } = plan;
  return { problems, warnings, releasing, needsLocal, execute };
}

export interface TargetOutcome {
  /** One row per VM dataset (and per image sent as a clone's origin). */
  datasets: DatasetResult[];
  errors: string[];
}

/**
 * What a target's executor counted for one VM dataset, or for an image sent as a clone's origin
 * (keyed by its source dataset): the report's row is built from it (datasetRow).
 */
export interface DatasetTally {
  bytes: number;
  seconds: number;
  error?: string;
  /** How the stream went, when the executor knows it better than the plan (an upload that succeeded). */
  mode?: TransferMode;
  /** What this target's rotation destroyed or deleted: snapshots or object keys, full names. */
  rotatedRemote: string[];
  /** Target snapshots after the common one that --rollback destroyed, full names. */
  discarded: string[];
}

export function emptyTally(): DatasetTally {
  return { bytes: 0, seconds: 0, rotatedRemote: [], discarded: [] };
}

/**
 * One report row, the same way for every target: a problem or an error fails it, a planned
 * stream makes it ok, nothing to send skips it. Local rotation is added later, once for all.
 */
export function datasetRow(row: {
  dataset: string;
  target: string;
  snapshot: string;
  mode: TransferMode;
  tally?: DatasetTally;
  problem?: string;
}): DatasetResult {
  const { tally } = row;
  const error = row.problem ?? tally?.error;
  return {
    dataset: row.dataset,
    target: row.target,
    snapshot: row.snapshot,
    mode: row.mode,
    bytes: tally?.bytes ?? 0,
    seconds: tally?.seconds ?? 0,
    result: error ? 'failed' : row.mode !== 'none' ? 'ok' : 'skipped',
    error,
    rotatedLocal: [],
    rotatedRemote: tally?.rotatedRemote ?? [],
    ...(tally?.discarded.length ? { discarded: tally.discarded } : {}),
  };
}
