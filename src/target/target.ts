import type { ConsistencyRecord } from '../backup/hook-run.js';
import type { VmObservation } from '../backup/observe.js';
import type { Problem } from '../plan/backup-plan.js';
import type { DatasetResult } from '../report/types.js';

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
  /** Errors met while preparing that are not about one dataset (a resume that failed). */
  errors: string[];
  /** Local snapshots (full names) whose hold this target moves off this run: local rotation may take them. */
  releasing: ReadonlySet<string>;
  /** Sends, rotates and stores what was planned, once the snapshot exists. */
  execute(consistency: ConsistencyRecord): Promise<TargetOutcome>;
}

export interface TargetOutcome {
  /** One row per VM dataset (and per image sent as a clone's origin). */
  datasets: DatasetResult[];
  errors: string[];
}
