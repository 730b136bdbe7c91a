import type { DatasetState } from '../zfs/list.js';

/** Count-based rotation per dataset and group (smartcopy's model), as pure functions. */

/** `daily-…` is in group `daily`; `daily2-…` is not. */
export function inGroup(snapshot: string, group: string): boolean {
  return snapshot.length > group.length + 1 && snapshot.startsWith(`${group}-`);
}

/**
 * Which snapshots to destroy so that the newest `limit` of the group remain. `ordered` is oldest
 * first. `protect` (the newest snapshot common to both sides) is never chosen.
 */
export function snapshotsToRotate(
  ordered: readonly string[],
  group: string,
  limit: number | undefined,
  protect: ReadonlySet<string>,
): string[] {
  if (limit === undefined) return [];
  const members = ordered.filter((name) => inGroup(name, group));
  const excess = members.slice(0, Math.max(0, members.length - limit));
  return excess.filter((name) => !protect.has(name));
}

/**
 * Snapshots of `state` (named `on`) held by anyone but zonecopy's hold being released this run:
 * `zfs destroy` refuses them, so rotation never chooses them (another tool's hold means keep).
 */
export function heldByOthers(
  state: DatasetState | undefined,
  on: string,
  releasing: ReadonlySet<string> = new Set(),
): string[] {
  return (state?.snapshots ?? [])
    .filter((s) => s.userrefs - (releasing.has(`${on}@${s.name}`) ? 1 : 0) > 0)
    .map((s) => s.name);
}

/** The source side's rotation, the same for every target: the new snapshot and held ones stay. */
export function localRotation(
  dataset: string,
  state: DatasetState,
  input: { snapshot: string; group: string; localLimit?: number },
  releasing?: ReadonlySet<string>,
): string[] {
  const order = [...state.snapshots.map((s) => s.name), input.snapshot];
  const protect = new Set([input.snapshot, ...heldByOthers(state, dataset, releasing)]);
  return snapshotsToRotate(order, input.group, input.localLimit, protect);
}
