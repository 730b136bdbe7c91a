import type { ConsistencyRecord } from '../backup/hook-run.js';
import type { TargetListing } from './across-targets.js';

/** One backup set `restore --list` shows: what `--snapshot` would restore, and how consistent it is. */
export interface ListedSet {
  snapshot: string;
  consistency: string;
  /** When the set was made (seconds since the epoch), to compare sets across targets; unknown if absent. */
  created?: number;
  record?: ConsistencyRecord;
}

export function renderSetList(uuid: string, sets: readonly ListedSet[]): string {
  if (sets.length === 0) return `VM ${uuid}: no complete backup set`;
  return [
    `VM ${uuid}: ${sets.length} complete backup set(s), newest first (restore one with --snapshot NAME)`,
    ...sets.map((s) => `  ${s.snapshot}  ${s.consistency}`),
  ].join('\n');
}

/** Every target's sets with a target column (restore one with --target NAME --snapshot NAME). */
export function renderTargetSetList(uuid: string, listed: readonly TargetListing[]): string {
  const width = Math.max(6, ...listed.map((l) => l.target.length));
  const rows = listed.flatMap((l) =>
    'error' in l
      ? [`  ${l.target.padEnd(width)}  (not listed: ${l.error})`]
      : l.sets.map((s) => `  ${l.target.padEnd(width)}  ${s.snapshot}  ${s.consistency}`),
  );
  const count = listed.reduce((n, l) => n + ('sets' in l ? l.sets.length : 0), 0);
  return [
    `VM ${uuid}: ${count} complete backup set(s) on ${listed.length} target(s), newest first (restore one with --target NAME --snapshot NAME)`,
    `  ${'TARGET'.padEnd(width)}  SET`,
    ...rows,
  ].join('\n');
}
