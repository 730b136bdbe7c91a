import type { SendSpec } from '../zfs/commands.js';

/**
 * What a backup host's part of a run will do, as data: the planner makes these, the executor runs
 * them, --dry-run prints them. The snapshot before them is the run loop's (backup/backup-vm.ts).
 */
export type Step =
  ResumeStep | AbortResumeStep | CreateParentStep | ProtectStep | TransferStep | HoldStep | RotateStep | StoreSpecStep;

/** One atomic `zfs snapshot a@s b@s …` for all selected datasets of one pool, taken once for every target. */
export interface SnapshotStep {
  kind: 'snapshot';
  pool: string;
  snapshots: string[];
}

/**
 * Finishes the stream an earlier run left in `target` (receive -s kept what arrived) with
 * `zfs send -t TOKEN | zfs receive -s`; the rest of the plan counts `snapshot` as on the target.
 */
export interface ResumeStep {
  kind: 'resume';
  /** The source dataset whose row counts it: the VM dataset, or the image a clone-origin target holds. */
  source: string;
  target: string;
  token: string;
  /** The target snapshot the resumed stream completes (full name). */
  snapshot: string;
  /** Bytes that had arrived before (from the token), for messages. */
  arrived?: number;
}

/**
 * Throws away an interrupted receive the source can no longer continue (`zfs receive -A`), so
 * the rest of the plan starts clean: an interrupted full receive leaves no target behind.
 */
export interface AbortResumeStep {
  kind: 'abort-resume';
  source: string;
  target: string;
}

/** A parent that must exist on the backup host before a dataset can be received below it. */
export interface CreateParentStep {
  kind: 'create-parent';
  dataset: string;
}

/**
 * Targets made read-only and never mounted by a boot or a pool import (canmount=noauto; volumes
 * have no canmount), so nothing on the backup host can change them and break the next
 * incremental. Set after the receive, not with `receive -o`: illumos's receive takes no property
 * but origin. Entries of datasets whose transfer failed are skipped.
 */
export interface ProtectStep {
  kind: 'protect';
  targets: Array<{ dataset: string; target: string; type: 'filesystem' | 'volume' }>;
}

export interface TransferStep {
  kind: 'transfer';
  /** The VM dataset whose report row this transfer counts in (for an image sent as a clone's origin: the clone). */
  vmDataset: string;
  source: string;
  target: string;
  mode: 'full' | 'incremental';
  /** Sent one after the other; each is its own stream. */
  sends: SendSpec[];
  /** For the first transfer of a clone: the target snapshot the received clone is cloned from (`receive -o origin=`). */
  cloneOrigin?: string;
  /** The stream is a clone's origin (an image, with its own report row), not one of the VM's datasets. */
  carriesImage: boolean;
  /** The common snapshot on the target: rolled back to first with --rollback, named in errors. */
  common?: string;
  rollback?: boolean;
  /** With --rollback: the target's snapshots after `common` (none of them on the source) that the rollback destroys. */
  discard?: string[];
  /**
   * Bytes the new snapshot adds, when the transfer is one incremental stream from the snapshot
   * right before it (the dataset's `written` as listed): small streams take another path.
   */
  added?: number;
}

/**
 * Moves zonecopy's hold to the newest common snapshot: `hold` puts the tag on the snapshots just
 * sent, `release` takes it off the previous ones. Entries of datasets whose transfer failed are
 * skipped, so the last good common snapshot stays held.
 */
export interface HoldStep {
  kind: 'hold' | 'release';
  side: 'local' | 'remote';
  tag: string;
  snapshots: Array<{ dataset: string; snapshot: string }>;
  /** This side's VM datasets without an entry here: a -r hold or release never reaches below one. */
  others: string[];
}

/** The backup host's thinning (the source side's is the run loop's, once for all targets). */
export interface RotateStep {
  kind: 'rotate';
  /** The VM dataset whose transfer must have succeeded first. */
  dataset: string;
  /** The target dataset on the backup host the snapshots are destroyed on. */
  on: string;
  destroy: string[];
  /** Every other snapshot of the group there, and why it stays (printed by --dry-run). */
  kept: Array<{ name: string; why: string }>;
}

export interface StoreSpecStep {
  kind: 'store-spec';
  directory: string;
  files: Array<{ name: string; content: string }>;
  /** Also store the run's consistency record (known only once the hooks ran) under this name. */
  consistencyFile?: string;
}
