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
