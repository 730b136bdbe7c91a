import type { TargetBehind } from './types.js';

/** What staleTargets needs to know of one target of a run. */
export interface TargetCommon {
  name: string;
  /** The target's `staleAfter` in seconds; undefined: it is never flagged. */
  staleAfter?: number;
  /**
   * For each dataset of the VM, its newest snapshot in common with the target (`time` in seconds
   * since the epoch), or undefined where they have none.
   */
  newestCommon: ReadonlyArray<{ snapshot: string; time: number } | undefined>;
}

/**
 * The targets that are behind with one VM (pure): those whose oldest per-dataset newest common
 * snapshot is older than their staleAfter, since the VM can only be restored as far as its oldest
 * dataset. A dataset with nothing in common makes the target behind by any staleAfter.
 */
export function staleTargets(targets: readonly TargetCommon[], now: number): TargetBehind[] {
  return targets.flatMap((t) => {
    const { staleAfter } = t;
    if (staleAfter === undefined || t.newestCommon.length === 0) return [];
    const known = t.newestCommon.filter((c) => c !== undefined);
    if (known.length < t.newestCommon.length) return [{ target: t.name, ageSeconds: Infinity, staleAfter }];
    const oldest = known.reduce((a, b) => (b.time < a.time ? b : a));
    const ageSeconds = Math.max(0, now - oldest.time);
    return ageSeconds > staleAfter ? [{ target: t.name, snapshot: oldest.snapshot, ageSeconds, staleAfter }] : [];
  });
}

/** A duration in seconds as an operator writes it (`2d`, `36h`): the largest unit that divides it. */
export function formatDuration(seconds: number): string {
  const units: Array<[string, number]> = [
    ['w', 604800],
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
  ];
  const unit = units.find(([, size]) => seconds > 0 && seconds % size === 0);
  return unit ? `${seconds / unit[1]}${unit[0]}` : `${seconds}s`;
}
