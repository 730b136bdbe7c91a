import { newestCommon } from '../plan/stream-choice.js';
import type { SnapshotInfo } from '../zfs/list.js';

/**
 * What a target holds of one dataset, read by the target's own means (the backup host's ZFS
 * listing, the bucket's catalog); the health of the pair is then decided here, the same for every target.
 */
export interface StoredDataset {
  /** Where it is stored: the backup host's dataset, or the key prefix in the bucket. */
  target: string;
  /** Oldest first; `restorable` is false for one the target holds but cannot give back (a stream whose parent is gone). */
  snapshots: ReadonlyArray<{ name: string; guid: string; restorable: boolean }>;
  resumePending: boolean;
  /** True where a snapshot after the common one stops the next incremental (a ZFS receive refuses it; a bucket does not). */
  newerBlocksIncremental: boolean;
  /** What is wrong with stored bytes, one line each (object storage reads them; ZFS checks its own blocks). */
  problems?: ReadonlyArray<{ kind: 'broken' | 'corrupt'; text: string }>;
}

/** The state of one dataset's backup pair, from the local listing and what the target holds (pure). */
export interface DatasetHealth {
  dataset: string;
  target: string;
  /** Snapshot counts per group (the part of the name before the first `-`). */
  localGroups: Record<string, number>;
  remoteGroups: Record<string, number>;
  newestCommon?: { name: string; guid: string; creation: number; ageSeconds: number };
  resumePending: boolean;
  /**
   * ok: the next run can send incrementally; missing: nothing on the target yet;
   * diverged: the backup host has snapshots after the common one; no-common: names but no guid in common;
   * broken (object storage): a stored incremental's parent is missing; corrupt: stored bytes fail their sha256.
   */
  chain: 'ok' | 'missing' | 'diverged' | 'no-common' | 'broken' | 'corrupt';
  /** Object storage: what is wrong, one line per stream. */
  problems?: string[];
}

export function groupOf(snapshot: string): string {
  const dash = snapshot.indexOf('-');
  return dash > 0 ? snapshot.slice(0, dash) : snapshot;
}

export function countGroups(snapshots: ReadonlyArray<{ name: string }>): Record<string, number> {
  const groups: Record<string, number> = {};
  for (const s of snapshots) groups[groupOf(s.name)] = (groups[groupOf(s.name)] ?? 0) + 1;
  return groups;
}

export function datasetHealth(
  dataset: string,
  localSnaps: readonly SnapshotInfo[],
  stored: StoredDataset,
  now: number,
): DatasetHealth {
  const restorable = new Set(stored.snapshots.filter((s) => s.restorable).map((s) => s.guid));
  const common = newestCommon(localSnaps, restorable);
  const problems = stored.problems ?? [];
  return {
    dataset,
    target: stored.target,
    localGroups: countGroups(localSnaps),
    remoteGroups: countGroups(stored.snapshots),
    newestCommon: common
      ? {
          name: common.name,
          guid: common.guid,
          creation: common.creation,
          ageSeconds: Math.max(0, now - common.creation),
        }
      : undefined,
    resumePending: stored.resumePending,
    chain: chainOf(stored, common?.guid),
    ...(stored.problems ? { problems: problems.map((p) => p.text) } : {}),
  };
}

function chainOf(stored: StoredDataset, commonGuid: string | undefined): DatasetHealth['chain'] {
  const problems = stored.problems ?? [];
  if (problems.some((p) => p.kind === 'corrupt')) return 'corrupt';
  if (problems.length > 0) return 'broken';
  if (stored.snapshots.length === 0) return 'missing';
  if (commonGuid === undefined) return 'no-common';
  const newest = stored.snapshots[stored.snapshots.length - 1]!;
  return stored.newerBlocksIncremental && newest.guid !== commonGuid ? 'diverged' : 'ok';
}

/** The age of a VM's backup: its worst dataset's newest common snapshot (Infinity when one has none). */
export function vmBackupAge(datasets: readonly DatasetHealth[]): number {
  if (datasets.length === 0) return Infinity;
  return Math.max(...datasets.map((d) => d.newestCommon?.ageSeconds ?? Infinity));
}

export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([smhdw]?)$/.exec(text.trim());
  if (!match) throw new Error(`not a duration: ${JSON.stringify(text)} (use e.g. 90m, 26h, 2d)`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[match[2] as '' | 's' | 'm' | 'h' | 'd' | 'w'];
  return Number(match[1]) * unit;
}

export function formatAge(seconds: number): string {
  if (!Number.isFinite(seconds)) return 'never';
  if (seconds < 120) return `${Math.round(seconds)}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)}h`;
  return `${(seconds / 86400).toFixed(1)}d`;
}
