import type { DatasetState } from '../zfs/list.js';

/**
 * A backup set: one snapshot name present on every dataset of the VM on the backup host, with
 * the VM spec stored for it. Pure: the caller lists the spec files and the targets.
 */
export function pickBackupSet(
  specSnapshots: readonly string[],
  targets: readonly string[],
  remote: ReadonlyMap<string, DatasetState>,
  wanted?: string,
): { snapshot: string } | { error: string } {
  const sets = completeBackupSets(specSnapshots, targets, remote);
  if (wanted !== undefined) {
    if (sets.includes(wanted)) return { snapshot: wanted };
    return {
      error: `no complete backup set ${wanted}: ${sets.length ? `complete sets are ${sets.join(', ')}` : 'there is no complete set'}`,
    };
  }
  if (sets.length === 0) {
    const missing = targets.filter((t) => !remote.get(t));
    return {
      error: `no complete backup set (every dataset at one snapshot, with its VM spec)${missing.length ? `; missing on the backup host: ${missing.join(', ')}` : ''}`,
    };
  }
  return { snapshot: sets[0]! };
}

/** Every complete backup set, newest first (by the root target's own order, createtxg). */
export function completeBackupSets(
  specSnapshots: readonly string[],
  targets: readonly string[],
  remote: ReadonlyMap<string, DatasetState>,
): string[] {
  const root = remote.get(targets[0]!);
  const complete = (name: string) => targets.every((t) => remote.get(t)?.snapshots.some((s) => s.name === name));
  const ordered = [...(root?.snapshots ?? [])]
    .reverse()
    .map((s) => s.name)
    .filter((n) => specSnapshots.includes(n));
  return ordered.filter(complete);
}
