import type { ListedSet } from './list-sets.js';

/** What one target has of a VM: its complete sets, newest first, or why it could not say. */
export type TargetListing = { target: string; sets: ListedSet[] } | { target: string; error: string };

/** Lists every target's sets one after the other; a target that fails (unreachable, no backups) says why. */
export async function listAcrossTargets(
  targets: ReadonlyArray<{ name: string; listSets: () => Promise<ListedSet[]> }>,
): Promise<TargetListing[]> {
  const listed: TargetListing[] = [];
  for (const { name, listSets } of targets) {
    try {
      listed.push({ target: name, sets: await listSets() });
    } catch (error) {
      listed.push({ target: name, error: (error as Error).message });
    }
  }
  return listed;
}

export interface ChosenSet {
  target: string;
  snapshot: string;
  /** The targets that could not be listed, for a warning. */
  unreachable: Array<{ target: string; error: string }>;
}

/**
 * The newest complete set over all targets (or the set `wanted`, from the first target that has it).
 * One snapshot on several targets is one moment, so it counts as its newest recorded time on each
 * (an object store records when the run started, a backup host when the snapshot was taken); ties
 * go to the first configured target. Pure.
 */
export function pickAcrossTargets(listed: readonly TargetListing[], wanted?: string): ChosenSet | { error: string } {
  const unreachable = listed.flatMap((l) => ('error' in l ? [l] : []));
  const reached = listed.flatMap((l) => ('sets' in l ? [l] : []));
  const times = new Map<string, number>();
  for (const set of reached.flatMap((l) => l.sets))
    times.set(set.snapshot, Math.max(times.get(set.snapshot) ?? -Infinity, set.created ?? -Infinity));
  let best: { target: string; snapshot: string; time: number } | undefined;
  for (const { target, sets } of reached) {
    const candidates = wanted === undefined ? sets.slice(0, 1) : sets.filter((s) => s.snapshot === wanted);
    for (const { snapshot } of candidates) {
      const time = times.get(snapshot)!;
      if (!best || time > best.time) best = { target, snapshot, time };
    }
  }
  if (best) return { target: best.target, snapshot: best.snapshot, unreachable };
  const why = listed.map((l) =>
    'error' in l
      ? `${l.target}: ${l.error}`
      : `${l.target}: ${l.sets.length ? `complete sets are ${l.sets.map((s) => s.snapshot).join(', ')}` : 'no complete backup set'}`,
  );
  return {
    error: `no complete backup set${wanted === undefined ? '' : ` ${wanted}`} on any target (${why.join('; ')})`,
  };
}
