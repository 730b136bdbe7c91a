import type { ConsistencyRecord } from '../backup/hook-run.js';
import type { DrillRecord } from '../restore/drill-record.js';

/** What one backup run did for one VM: the input of every report (email, log, --json). */

/** `resumed`: an interrupted stream of this dataset was finished this run (then the new snapshot went incrementally). */
export type TransferMode = 'full' | 'incremental' | 'resumed' | 'none';
/** How one dataset's row ended: `skipped` when there was nothing to send. */
export type DatasetStatus = 'ok' | 'failed' | 'skipped';

export interface DatasetResult {
  /** Source dataset, e.g. `zones/<uuid>-disk0`. */
  dataset: string;
  /** Target dataset on the backup host. */
  target: string;
  /** Snapshot name (the part after `@`) that this run created and sent. */
  snapshot: string;
  mode: TransferMode;
  /** Bytes of the send stream(s) that crossed to the backup host. */
  bytes: number;
  seconds: number;
  result: DatasetStatus;
  error?: string;
  /** Snapshots destroyed by rotation, full names. */
  rotatedLocal: string[];
  rotatedRemote: string[];
  /** Backup-host snapshots the source did not have, destroyed by --rollback, full names. */
  discarded?: string[];
  /** The row is an image sent as the origin of the VM's clones, not a dataset of the VM. */
  image?: boolean;
  /** The target (its name in the configuration) when the run has several. */
  targetName?: string;
}

export type RunStatus = 'success' | 'partial' | 'failed';

export interface VmBackupResult {
  uuid: string;
  alias?: string;
  brand?: string;
  /** Snapshot name (after `@`) taken for this VM's datasets, when it got that far. */
  snapshot?: string;
  backupHost: string;
  startedAt: Date;
  finishedAt: Date;
  status: RunStatus;
  datasets: DatasetResult[];
  /** Errors that are not about one dataset (discovery, snapshot, connection, spec upload). */
  errors: string[];
  dryRun: boolean;
  /** The hooks that ran around the snapshot and how consistent it is, once the run got that far. */
  consistency?: ConsistencyRecord;
  /** Targets whose newest common snapshot with this VM is older than their `staleAfter` (staleTargets). */
  behind?: TargetBehind[];
  /** The VM's last restore drill (`zonecopy drill`), for the report. */
  lastDrill?: DrillRecord;
}

/** A target that is behind with one VM: the oldest of its datasets' newest common snapshots, and its age. */
export interface TargetBehind {
  target: string;
  /** Undefined: some dataset has no snapshot in common with the target at all (ageSeconds is then Infinity). */
  snapshot?: string;
  ageSeconds: number;
  /** The target's `staleAfter`, in seconds. */
  staleAfter: number;
}

export function runStatus(errors: readonly string[], datasets: readonly DatasetResult[]): RunStatus {
  const failed = datasets.filter((d) => d.result === 'failed').length;
  const ok = datasets.filter((d) => d.result === 'ok').length;
  if (errors.length === 0 && failed === 0) return 'success';
  if (ok > 0) return 'partial';
  return 'failed';
}
